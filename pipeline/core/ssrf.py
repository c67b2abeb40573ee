"""The SSRF guard: a crawl must not be steered into the machine's own network.

The seeds a user typed are trusted. Any other host a link or a redirect leads
to is checked on the address it resolves to, at connect time, on every hop:
loopback, private, link-local, multicast, reserved and unspecified addresses
are refused. Checking the resolved address (not the name) is what defeats a
DNS name pointing at 127.0.0.1, and the resolver sees decimal or hex spellings
(``http://2130706433/``) exactly as the connection would.

The policy travels in a ContextVar: one aiohttp session serves every job on a
worker, and each request's task carries its own job's policy into the resolver.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from pipeline.core.errors import FetchError
from pipeline.core.pins import literal_address, parse_pins

__all__ = ["AddressPolicy", "GuardedResolver", "PinnedResolver", "is_public", "literal_address", "parse_pins"]


def is_public(address: str) -> bool:
    """True for an address a crawl may connect to without ``--allow-private``."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class AddressPolicy:
    """Which hosts may resolve to non-public addresses, for one job's requests."""

    trusted_hosts: frozenset[str] = frozenset()  # hostnames (no port) the user typed
    allow_private: bool = False

    def permits(self, host: str, address: str) -> bool:
        return self.allow_private or host.lower().strip("[]") in self.trusted_hosts or is_public(address)

    def check_literal(self, host: str) -> None:
        """Refuse an IP-literal host up front: aiohttp connects to those without resolving.

        "Literal" includes every spelling the C library accepts for IPv4 -
        decimal ``2130706433``, hex ``0x7f000001``, octal, short ``127.1``.
        """
        address = literal_address(host)
        if address is not None and not self.permits(host.strip("[]"), address):
            raise FetchError("ssrf_blocked", f"{host} is not a public address ({address})")


UNRESTRICTED = AddressPolicy(allow_private=True)
current_policy: ContextVar[AddressPolicy] = ContextVar("current_policy", default=UNRESTRICTED)
# The proxy the current request goes through (its host name, lowercase), set by ``fetch._hop`` for that request only.
current_proxy_host: ContextVar[str | None] = ContextVar("current_proxy_host", default=None)


class GuardedResolver(AbstractResolver):
    """A resolver that drops addresses the current job's policy forbids.

    The one name it does not check is ``current_proxy_host``: set by the fetch
    only while a request goes through that proxy, whose own address (often on
    the local network) is the way out, not a target. A direct request to the
    same name is checked like any other. Through a proxy the target's name is
    resolved by the proxy, so for those requests only literal addresses are
    checked (``check_literal``).
    """

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if host.lower() == current_proxy_host.get():
            return results
        policy = current_policy.get()
        allowed = [r for r in results if policy.permits(host, r["host"])]
        if not allowed:
            addresses = ", ".join(sorted({r["host"] for r in results}))
            raise FetchError("ssrf_blocked", f"{host} resolves to a non-public address ({addresses})")
        return allowed

    async def close(self) -> None:
        await self._inner.close()

    def __getattr__(self, name: str) -> Any:  # pragma: no cover - forward anything else
        return getattr(self._inner, name)


class PinnedResolver(AbstractResolver):
    """Answer pinned names from a fixed table and pass every other name to ``inner`` (but ``.invalid``)."""

    def __init__(self, pins: Mapping[str, str], inner: AbstractResolver | None = None) -> None:
        self._pins = {name.lower(): address for name, address in pins.items()}
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        name = host.lower().rstrip(".")
        address = self._pins.get(name)
        if address is None:
            if name == "invalid" or name.endswith(".invalid"):
                # RFC 6761 section 6.4: never resolves, and resolvers say so at once, without asking DNS.
                raise OSError(socket.EAI_NONAME, f"{host} does not exist (.invalid never resolves, RFC 6761)")
            return await self._inner.resolve(host, port, family)
        pinned_family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=pinned_family,
                proto=0,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
        ]

    async def close(self) -> None:
        await self._inner.close()
