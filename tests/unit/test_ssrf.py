"""The SSRF guard's address rules, without sockets."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.core.errors import ConfigError, FetchError
from pipeline.core.ssrf import (
    AddressPolicy,
    GuardedResolver,
    PinnedResolver,
    current_policy,
    current_proxy_host,
    is_public,
    literal_address,
    parse_pins,
)

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


def test_pins_parse_like_curl_resolve_and_bad_entries_say_the_expected_form() -> None:
    assert parse_pins(" Docs.Example.org.=10.0.0.5 , v6.test=[::1],") == {
        "docs.example.org": "10.0.0.5",
        "v6.test": "::1",
    }
    assert parse_pins(None) == {} == parse_pins("")
    for bad in ["docs.example.org", "=10.0.0.5", "docs.example.org=not-an-ip", "127.0.0.1=10.0.0.5"]:
        with pytest.raises(ConfigError, match="NAME=ADDRESS"):
            parse_pins(bad)


PINS = {"internal.test": "127.0.0.2", "public.test": "8.8.8.8"}


def _resolve(host: str, policy: AddressPolicy, through_proxy: str | None = None) -> list[str]:
    async def run() -> list[str]:  # aiohttp's default resolver wants a running loop
        resolver = GuardedResolver(PinnedResolver(PINS))
        token, proxy_token = current_policy.set(policy), current_proxy_host.set(through_proxy)
        try:
            return [result["host"] for result in await resolver.resolve(host, 80)]
        finally:
            current_proxy_host.reset(proxy_token)
            current_policy.reset(token)

    return asyncio.run(run())


def test_the_proxy_a_request_goes_through_may_be_on_a_private_address() -> None:
    assert _resolve("internal.test", AddressPolicy(), through_proxy="internal.test") == ["127.0.0.2"]


def test_the_proxys_name_is_checked_like_any_other_when_a_request_goes_direct_to_it() -> None:
    with pytest.raises(FetchError, match="non-public address"):
        _resolve("internal.test", AddressPolicy(), through_proxy=None)
    with pytest.raises(FetchError, match="non-public address"):
        _resolve("internal.test", AddressPolicy(), through_proxy="proxy.elsewhere")


def test_a_name_pinned_to_loopback_is_refused_by_the_guard_unless_trusted() -> None:
    with pytest.raises(FetchError, match="non-public address"):
        _resolve("INTERNAL.test", AddressPolicy())
    assert _resolve("internal.test", AddressPolicy(trusted_hosts=frozenset({"internal.test"}))) == ["127.0.0.2"]
    assert _resolve("internal.test", AddressPolicy(allow_private=True)) == ["127.0.0.2"]
    assert _resolve("public.test", AddressPolicy()) == ["8.8.8.8"]
