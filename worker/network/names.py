"""The names of one worker's network objects, derived from the worker so that two workers on one
machine never share one, and so that a restarted worker finds what its previous run left."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

IFNAME_MAX = 15  # Linux's limit on an interface name


@dataclass(frozen=True)
class NetworkNames:
    tag: str  # 6 hex digits naming this worker's objects
    bridge: str
    worker: str  # the worker, as the iptables rules' comment names it

    @classmethod
    def for_worker(cls, worker_id: str, work_dir: str, bridge: str = "") -> NetworkNames:
        # The work dir too: two workers of one host share its host name as their default id.
        tag = hashlib.sha256(f"{worker_id}\0{work_dir}".encode()).hexdigest()[:6]
        return cls(tag=tag, bridge=bridge or f"stkb{tag}", worker=worker_id)

    def veth(self, index: int) -> str:
        """The host end of the veth of the container at address `index` of the subnet."""
        return f"{self.veth_prefix}{index:x}"

    @property
    def veth_prefix(self) -> str:
        return f"stkv{self.tag}"  # 10 characters: room for the 5 hex digits of a /12's index

    def chain(self, role: str) -> str:
        return f"STOKER-{self.tag}-{role}"

    @property
    def comment(self) -> str:
        worker = re.sub(r"[^A-Za-z0-9._:@-]", "_", self.worker)  # nothing iptables-restore would parse
        return f"stoker worker {worker} ({self.tag})"[:250]

    @property
    def nft_table(self) -> str:
        return f"stoker_{self.tag}"


def mac_for(address_index: int, tag: str) -> str:
    """A locally administered MAC address for the container at `address_index`."""
    raw = bytes.fromhex(tag[:4]) + address_index.to_bytes(3, "big")
    return "02:" + ":".join(f"{b:02x}" for b in raw)
