"""Which address of the worker's subnet each container gets.

Addresses go round the subnet (the next free one after the last handed out) instead of reusing
the lowest free one: an ingress may still hold a channel to a container that just exited, and
conntrack entries outlive it; a new container at the same address a moment later would receive
what was meant for the old one. An address comes back only after the whole subnet went round.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass

from worker.network.commands import NetworkError


@dataclass(frozen=True)
class Subnet:
    network: ipaddress.IPv4Network

    @classmethod
    def parse(cls, text: str) -> Subnet:
        try:
            network = ipaddress.IPv4Network(text, strict=True)
        except ValueError as exc:
            raise NetworkError(f"--container-subnet {text!r} is not an IPv4 network like 10.88.0.0/16: {exc}") from None
        if network.prefixlen < 12:
            raise NetworkError(f"--container-subnet {text!r} is too large: at least /12 (about a million containers)")
        if network.prefixlen > 29:
            raise NetworkError(f"--container-subnet {text!r} is too small: at most /29 (a gateway and containers)")
        return cls(network)

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        """The bridge's own address: the first of the subnet."""
        return self.network.network_address + 1

    @property
    def first_index(self) -> int:
        return 2  # 0 is the network, 1 the gateway

    @property
    def last_index(self) -> int:
        return self.network.num_addresses - 2  # the last is broadcast

    def address(self, index: int) -> ipaddress.IPv4Address:
        return self.network.network_address + index

    def index(self, address: ipaddress.IPv4Address) -> int:
        return int(address) - int(self.network.network_address)


class AddressPool:
    """The subnet's free container addresses; safe to use from any thread or task."""

    def __init__(self, subnet: Subnet) -> None:
        self.subnet = subnet
        self._taken: set[int] = set()
        self._last = subnet.first_index - 1
        self._lock = threading.Lock()

    def take(self) -> ipaddress.IPv4Address:
        first, last = self.subnet.first_index, self.subnet.last_index
        size = last - first + 1
        with self._lock:
            for step in range(1, size + 1):
                index = first + (self._last - first + step) % size
                if index not in self._taken:
                    self._taken.add(index)
                    self._last = index
                    return self.subnet.address(index)
        raise NetworkError(f"no free container address left in {self.subnet.network} ({size} in use)")

    def release(self, address: ipaddress.IPv4Address) -> None:
        with self._lock:
            self._taken.discard(self.subnet.index(address))

    def in_use(self) -> int:
        with self._lock:
            return len(self._taken)
