"""Container networking: a bridge per worker, a veth and an address per container's network
namespace, NAT outward, a firewall between containers and the host (container_network.py)."""

from worker.network.commands import NetworkError
from worker.network.container_network import Attachment, ContainerNetwork, NetworkConfig

__all__ = ["Attachment", "ContainerNetwork", "NetworkConfig", "NetworkError"]
