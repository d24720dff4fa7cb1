"""The worker's bridge: one per worker, the gateway of its containers' subnet.

Each container's veth joins it as an isolated port (isolated ports exchange no frames with each
other, only with the bridge itself), and an nftables bridge table drops any frame from a
container's port that does not carry the MAC and IPv4 address the worker gave it (ARP included),
and any unicast frame to a port that is not for that port's MAC (unknown unicast is flooded): a
container that is root in its namespace could otherwise change its address or MAC, or listen
promiscuously, and take or read another container's traffic. IPv6 is off on the bridge, so a
container reaches the host over IPv4 only, where the firewall (firewall.py) applies.
"""

from __future__ import annotations

import ipaddress
import json

from worker.network.commands import NetworkError, run, write_sysctl
from worker.network.names import NetworkNames


def bridge_table(names: NetworkNames) -> str:
    """nft -f input: the bridge table (created empty of ports)."""
    table = names.nft_table
    return f"""table bridge {table} {{
  set ports {{ type ifname . ether_addr . ipv4_addr; }}
  set macs {{ type ifname . ether_addr; }}
  chain ports_in {{
    type filter hook prerouting priority filter; policy accept;
    iifname != "{names.veth_prefix}*" accept
    ether type ip iifname . ether saddr . ip saddr @ports accept
    ether type arp iifname . ether saddr . arp saddr ip @ports accept
    drop
  }}
  chain forwarded_out {{
    type filter hook forward priority filter; policy accept;
    oifname != "{names.veth_prefix}*" accept
    ether daddr ff:ff:ff:ff:ff:ff accept
    oifname . ether daddr @macs accept
    drop
  }}
  chain host_out {{
    type filter hook output priority filter; policy accept;
    oifname != "{names.veth_prefix}*" accept
    ether daddr ff:ff:ff:ff:ff:ff accept
    oifname . ether daddr @macs accept
    drop
  }}
}}
"""


def port_elements(names: NetworkNames, veth: str, mac: str, address: ipaddress.IPv4Address, verb: str) -> str:
    """nft -f input adding (verb "add") or deleting ("delete") a container's port."""
    table = f"bridge {names.nft_table}"
    return (
        f'{verb} element {table} ports {{ "{veth}" . {mac} . {address} }}\n'
        f'{verb} element {table} macs {{ "{veth}" . {mac} }}\n'
    )


async def links() -> list[dict[str, object]]:
    listing = await run(["ip", "-json", "link", "show"])
    result: list[dict[str, object]] = json.loads(listing or "[]")
    return result


async def check_subnet_free(names: NetworkNames, subnet: ipaddress.IPv4Network) -> None:
    """Refuse a subnet another interface (another worker's bridge, the LAN) already uses."""
    listing = json.loads(await run(["ip", "-json", "-4", "addr", "show"]) or "[]")
    for link in listing:
        if link.get("ifname") == names.bridge:
            continue
        for info in link.get("addr_info", []):
            theirs = ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False)
            if theirs.overlaps(subnet):
                raise NetworkError(
                    f"--container-subnet {subnet} overlaps {theirs} of interface {link.get('ifname')}: "
                    "give this worker another subnet"
                )


async def remove(names: NetworkNames) -> None:
    """Remove the bridge, the veths and the bridge table of this worker, whichever run made them."""
    batch = []
    for link in await links():
        name = str(link.get("ifname", ""))
        if name == names.bridge or name.startswith(names.veth_prefix):
            batch.append(f"link del dev {name}")
    if batch:
        await run(["ip", "-force", "-batch", "-"], "\n".join(batch) + "\n", check=False)
    await run(["nft", "delete", "table", "bridge", names.nft_table], check=False)


async def create(
    names: NetworkNames, subnet: ipaddress.IPv4Network, gateway: ipaddress.IPv4Address, *, owner: str
) -> None:
    """The bridge, with `owner` (who made it, subnets.Owner) as its interface alias."""
    await run(
        ["ip", "-batch", "-"],
        f"link add {names.bridge} type bridge\n"
        f'link set {names.bridge} alias "{owner}"\n'
        # No IPv6 on the bridge before it is up: not even a link-local address for containers to reach.
        f"link set {names.bridge} addrgenmode none\n"
        f"addr add {gateway}/{subnet.prefixlen} dev {names.bridge}\n",
    )
    write_sysctl(f"net/ipv6/conf/{names.bridge}/disable_ipv6", "1", if_present=True)  # absent: no IPv6 at all
    # A loopback-only host service (the scheduler) is reached through the gateway (DNAT to
    # 127.0.0.1): that needs loopback destinations routable from this bridge, and from it alone.
    write_sysctl(f"net/ipv4/conf/{names.bridge}/route_localnet", "1")
    await run(["ip", "link", "set", names.bridge, "up"])
    await run(["nft", "-f", "-"], bridge_table(names))
