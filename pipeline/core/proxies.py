"""Which proxy, if any, a request goes through: the ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY`` convention.

Read once, when a worker starts (``Settings.proxies``), and asked per request
(``for_url``): aiohttp's own ``trust_env`` would re-read the environment and
``~/.netrc`` on every request (seen in a profile), so the session runs
without it and the fetch passes the proxy itself.

Never through a proxy: loopback (``localhost``, ``127.0.0.0/8``, ``::1``: a
proxy elsewhere cannot reach this machine's own servers, such as the demo
site) and names pinned with ``PIPELINE_RESOLVE`` (a pin says where the name
is; the proxy would resolve it on its own). ``NO_PROXY`` is a comma-separated
list of host names (each also matching its subdomains; a leading dot or
``*.`` changes nothing), ``host:port``, IP addresses, CIDR blocks, or ``*``
for every host, as curl and requests read it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pipeline.core.errors import ConfigError

if TYPE_CHECKING:  # settings import this module, and every CLI command reads settings: no yarl at import
    from yarl import URL

PROXY_SCHEMES = ("http", "https")
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain")


def check_proxy_url(value: str) -> str:
    """``value`` if it is a usable proxy URL (``http://[user:password@]host[:port]``); never echoes a password."""
    value = value.strip()
    if "://" not in value:
        raise ConfigError("must be a proxy URL like http://proxy.example:3128 (no scheme: add http://)")
    try:
        parts = urlsplit(value)
    except ValueError:  # a bracketed host that is no IPv6 address, say
        raise ConfigError("must be a proxy URL like http://proxy.example:3128 (this one does not parse)") from None
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ConfigError("the proxy's port must be a number from 1 to 65535")
    if parts.scheme not in PROXY_SCHEMES or not parts.hostname:
        got = f"{parts.scheme}://{parts.hostname or ''}"
        raise ConfigError(f"must be a proxy URL like http://proxy.example:3128 (http or https; got {got})")
    from yarl import URL  # what aiohttp will parse it with, on every request: refuse here what it would refuse there

    try:
        host = URL(value).raw_host or ""
    except (ValueError, UnicodeError):
        host = ""
    if not host or any(c.isspace() or c in '<>\\^`{|}"' for c in host):
        raise ConfigError(f"the proxy's host is not a valid host name (in {redacted(value)})")
    return value


def redacted(proxy: str) -> str:
    """The proxy URL for logs and messages: its user name and password left out."""
    parts = urlsplit(proxy)
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc += f":{parts.port}"
    return f"{parts.scheme}://{netloc}"


def proxy_host(proxy: str) -> str:
    """The proxy's host name, lowercase, as the resolver is asked for it."""
    return (urlsplit(proxy).hostname or "").lower()


def _no_proxy_entries(value: str | None) -> tuple[str, ...]:
    return tuple(entry.strip().lower() for entry in (value or "").split(",") if entry.strip())


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _matches(entry: str, host: str, port: int | None) -> bool:
    """One NO_PROXY entry against a request's host (lowercase, no brackets) and port."""
    if entry == "*":
        return True
    if entry.startswith("[") and "]" in entry:  # [::1]:8080
        name, _, rest = entry[1:].partition("]")
        entry_port = rest.removeprefix(":") or None
    elif entry.count(":") == 1:  # host:port (a bare IPv6 address has several colons)
        name, entry_port = entry.split(":")
    else:
        name, entry_port = entry, None
    if entry_port is not None and (not entry_port.isdigit() or int(entry_port) != port):
        return False
    if "/" in name:
        try:
            return ipaddress.ip_address(host) in ipaddress.ip_network(name, strict=False)
        except ValueError:
            return False
    name = name.removeprefix("*").lstrip(".")
    return bool(name) and (host == name or host.endswith("." + name))


@dataclass(frozen=True)
class Proxies:
    """The proxy for each scheme, and the hosts reached directly."""

    http: str | None = field(default=None, repr=False)  # may hold a password: see ``describe``
    https: str | None = field(default=None, repr=False)
    no_proxy: tuple[str, ...] = ()
    pinned: frozenset[str] = field(default_factory=frozenset)  # PIPELINE_RESOLVE names, lowercase

    @classmethod
    def from_settings(
        cls, http: str | None, https: str | None, no_proxy: str | None, pinned: frozenset[str] = frozenset()
    ) -> Proxies | None:
        """None when no proxy is set (every request goes direct)."""
        http, https = (http or "").strip() or None, (https or "").strip() or None
        if not http and not https:
            return None
        return cls(http, https, _no_proxy_entries(no_proxy), frozenset(p.lower() for p in pinned))

    def for_url(self, url: URL) -> str | None:
        """The proxy ``url`` goes through, or None to go direct."""
        proxy = self.https if url.scheme == "https" else self.http if url.scheme == "http" else None
        if proxy is None:
            return None
        host = (url.raw_host or "").lower().strip("[]").rstrip(".")
        if not host or _is_loopback(host) or host in self.pinned:
            return None
        if any(_matches(entry, host, url.port) for entry in self.no_proxy):
            return None
        return proxy

    def describe(self) -> str:
        """For the worker's start-up log: where requests go, without credentials."""
        schemes = (("http", self.http), ("https", self.https))
        parts = [f"{scheme}:// through {redacted(proxy)}" for scheme, proxy in schemes if proxy]
        direct = ", ".join(self.no_proxy) or "none"
        return "; ".join(parts) + f"; direct: loopback, pinned names, NO_PROXY ({direct})"
