"""Which address each container gets on its worker's subnet (worker/network/addresses.py), the
names of a worker's network objects, and the name servers its containers are given."""

from __future__ import annotations

import ipaddress
import threading

import pytest

from worker.network.addresses import AddressPool, Subnet
from worker.network.commands import NetworkError
from worker.network.dns import plan
from worker.network.names import NetworkNames, mac_for


def test_addresses_skip_the_network_the_gateway_and_broadcast() -> None:
    pool = AddressPool(Subnet.parse("10.1.2.0/29"))
    assert pool.subnet.gateway == ipaddress.IPv4Address("10.1.2.1")
    taken = [str(pool.take()) for _ in range(5)]
    assert taken == ["10.1.2.2", "10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.6"]
    with pytest.raises(NetworkError, match=r"no free container address left in 10.1.2.0/29 \(5 in use\)"):
        pool.take()


def test_a_released_address_comes_back_only_after_the_subnet_went_round() -> None:
    pool = AddressPool(Subnet.parse("10.1.2.0/29"))
    first, second = pool.take(), pool.take()
    pool.release(first)
    # Not `first` again at once: an ingress may still hold a channel to its old container.
    assert [str(pool.take()) for _ in range(3)] == ["10.1.2.4", "10.1.2.5", "10.1.2.6"]
    assert pool.take() == first  # round again: the only free one
    pool.release(second)
    assert pool.take() == second
    assert pool.in_use() == 5


def test_concurrent_takers_never_share_an_address() -> None:
    pool = AddressPool(Subnet.parse("10.8.0.0/20"))
    results: list[list[ipaddress.IPv4Address]] = [[] for _ in range(8)]

    def take(into: list[ipaddress.IPv4Address]) -> None:
        for _ in range(400):
            address = pool.take()
            into.append(address)
            if len(into) % 3 == 0:
                pool.release(into.pop(0))

    threads = [threading.Thread(target=take, args=(r,)) for r in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    held = [address for r in results for address in r]
    assert len(held) == len(set(held)) == pool.in_use()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("10.88.0.1/16", "has host bits set"),
        ("fd00::/64", "is not an IPv4 network"),
        ("10.0.0.0/8", "too large"),
        ("10.0.0.0/30", "too small"),
        ("bridge", "is not an IPv4 network"),
    ],
)
def test_a_bad_subnet_is_refused_saying_why(text: str, why: str) -> None:
    with pytest.raises(NetworkError, match=why):
        Subnet.parse(text)


def test_names_differ_per_worker_and_fit_linux_limits() -> None:
    one = NetworkNames.for_worker("host", "/var/lib/a")
    two = NetworkNames.for_worker("host", "/var/lib/b")  # two workers of one host: same default id
    assert one.bridge != two.bridge and one.veth_prefix != two.veth_prefix
    assert one == NetworkNames.for_worker("host", "/var/lib/a")  # a restarted worker finds its own
    last_index = Subnet.parse("10.0.0.0/12").last_index
    assert len(one.veth(last_index)) <= 15 and len(one.bridge) <= 15
    assert len(one.chain("BLOCK")) <= 28
    assert mac_for(last_index, one.tag) != mac_for(2, one.tag)
    assert len(mac_for(2, one.tag).split(":")) == 6 and mac_for(2, one.tag).startswith("02:")
    odd = NetworkNames.for_worker('w "x"; -j ACCEPT', "/d")
    assert odd.comment == f"stoker worker w__x___-j_ACCEPT ({odd.tag})"  # nothing iptables-restore parses


def test_a_containers_resolv_conf_drops_the_hosts_loopback_resolvers() -> None:
    host = "# written by resolved\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 10.0.0.2\nsearch corp.example\n"
    kept = plan(host)
    assert kept.forward_to is None
    gateway = ipaddress.IPv4Address("10.88.0.1")
    assert kept.resolv_conf(gateway) == "# written by resolved\nnameserver 10.0.0.2\nsearch corp.example\n"


def test_a_host_with_only_loopback_resolvers_has_its_containers_ask_the_gateway() -> None:
    forwarded = plan("nameserver ::1\nnameserver 127.0.0.53\nnameserver 127.0.0.1\noptions edns0\n")
    assert forwarded.forward_to == ipaddress.IPv4Address("127.0.0.53")  # the first IPv4 one
    assert forwarded.resolv_conf(ipaddress.IPv4Address("10.88.0.1")) == "nameserver 10.88.0.1\noptions edns0\n"
    assert plan("").resolv_conf(ipaddress.IPv4Address("10.88.0.1")) == ""
