"""``PIPELINE_RESOLVE`` pins and IP-literal hosts: the parts of the SSRF guard that need no network library.

The settings parse pins when they load, so this module imports nothing heavier
than ``ipaddress`` (the guard itself, ``pipeline.core.ssrf``, needs aiohttp).
"""

from __future__ import annotations

import functools
import ipaddress
import socket

from pipeline.core.errors import ConfigError


@functools.lru_cache(maxsize=4096)
def literal_address(host: str) -> str | None:
    """The address an IP-literal host denotes, in canonical form; None for a name.

    Cached: it runs on every request's every hop, a crawl asks about the same
    few hosts thousands of times, and a name costs ``ip_address`` a raised ValueError.
    """
    bare = host.strip("[]").split("%", 1)[0]
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    if bare and all(c in "0123456789abcdefxABCDEFX." for c in bare) and any(c.isdigit() for c in bare):
        try:
            return socket.inet_ntoa(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def parse_pins(text: str | None) -> dict[str, str]:
    """``"name=address,name2=address2"`` -> {name: address}, like curl's ``--resolve``.

    Pins let a crawl reach a host by a name DNS does not (yet) give, e.g. a
    staging server under its production name. They change what a name
    resolves to, never the policy: a pinned name is still checked on the
    address it is pinned to.
    """
    pins: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in (text or "").split(","))):
        name, sep, address = entry.partition("=")
        name, address = name.strip().lower().rstrip("."), address.strip().strip("[]")
        try:
            canonical = str(ipaddress.ip_address(address))
        except ValueError:
            canonical = ""
        if not sep or not name or not canonical or literal_address(name) is not None:
            raise ConfigError(f"PIPELINE_RESOLVE entry {entry!r} is not NAME=ADDRESS (e.g. docs.example.org=10.0.0.5)")
        pins[name] = canonical
    return pins
