"""The SSRF guard's address rules, without sockets."""

from __future__ import annotations

import pytest

from pipeline.core.errors import FetchError
from pipeline.core.ssrf import AddressPolicy, is_public, literal_address

NON_PUBLIC = ["127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.0.1", "172.31.255.254", "192.168.1.1",
              "169.254.169.254", "0.0.0.0", "100.64.0.1", "224.0.0.1", "255.255.255.255", "::1", "::",
              "fc00::1", "fd12:3456::1", "fe80::1", "ff02::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1",
              "192.0.2.1", "198.18.0.1"]  # fmt: skip
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", NON_PUBLIC)
def test_loopback_private_link_local_and_reserved_addresses_are_not_public(address: str) -> None:
    assert not is_public(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_global_unicast_addresses_are_public(address: str) -> None:
    assert is_public(address)


SPELLINGS = [
    ("127.0.0.1", "127.0.0.1"),
    ("2130706433", "127.0.0.1"),
    ("0x7f000001", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"),
    ("127.1", "127.0.0.1"),
    ("[::1]", "::1"),
    ("::ffff:127.0.0.2", "::ffff:7f00:2"),
]


@pytest.mark.parametrize(("host", "address"), SPELLINGS)
def test_every_spelling_of_an_ip_literal_is_recognised(host: str, address: str) -> None:
    assert literal_address(host) == address


@pytest.mark.parametrize("host", ["example.org", "localhost", "cafe.example", "deadbeef.example", "a.b"])
def test_names_are_not_literals(host: str) -> None:
    assert literal_address(host) is None


def test_a_literal_loopback_host_is_refused_unless_trusted_or_private_is_allowed() -> None:
    with pytest.raises(FetchError) as refused:
        AddressPolicy().check_literal("2130706433")
    assert refused.value.reason == "ssrf_blocked"
    AddressPolicy(trusted_hosts=frozenset({"127.0.0.1"})).check_literal("127.0.0.1")
    AddressPolicy(allow_private=True).check_literal("10.0.0.1")


def test_a_trusted_name_may_resolve_anywhere_and_others_only_to_public_addresses() -> None:
    policy = AddressPolicy(trusted_hosts=frozenset({"intranet.local"}))
    assert policy.permits("intranet.local", "10.0.0.5")
    assert not policy.permits("evil.example", "10.0.0.5")
    assert policy.permits("evil.example", "8.8.8.8")
