"""Container networking: each container's network namespace gets an address of its own.

One bridge per worker (bridge.py), named after the worker so that two workers of one machine
never share one; each container's veth joins it as an isolated port, with its MAC and address
pinned (no spoofing). NAT outward, and a firewall between containers and the host (firewall.py):
a container reaches the outside world, the scheduler and this machine's ingresses, no other
container, none of the host's other services. Addresses go round the subnet (addresses.py).

How the worker uses it (container_network.py):

    dns_plan = read_plan()                    # its name servers: the host's (dns.py)
    network = ContainerNetwork(NetworkConfig(worker_id, work_dir, subnet, bridge, advertise_host,
                                             host_services=(scheduler, *ingresses),
                                             dns_forward=str(dns_plan.forward_to or "")))
    await network.start()                     # at worker start; removes a killed run's leftovers
    env[SCHEDULER] = network.container_address(scheduler)   # the scheduler as containers see it
    attachment = await network.attach(pid, block_network=spec.block_network)
    address = await network.advertise(attachment, port)     # what the scheduler is told
    resolv_conf = dns_plan.resolv_conf(network.gateway)  # the container's /etc/resolv.conf (dns.py)
    await network.detach(attachment)          # when the container is gone
    await network.stop()                      # at worker stop: bridge, veths, rules removed

`pid` is a process already in the container's own network namespace; the container binds its
Exchange server on 0.0.0.0 (its namespace has nothing else) and the ingress connects to
`address` directly: the container's bridge address when the advertise host is loopback (every
ingress is on this machine), else the advertise host and a port DNATed to the container
(publish()). With block_network the veth is there all the same, but the host's firewall drops
everything from the container except replies to connections opened to it: the ingress and the
scheduler reach its server, and it reaches nothing, the scheduler included.
"""

from worker.network.commands import NetworkError
from worker.network.container_network import Attachment, ContainerNetwork, NetworkConfig
from worker.network.dns import DnsPlan, read_plan

__all__ = ["Attachment", "ContainerNetwork", "DnsPlan", "NetworkConfig", "NetworkError", "read_plan"]
