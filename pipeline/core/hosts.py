"""Whether a host name or a domain could exist at all: checked at submit, before anything is created.

A URL whose host cannot be valid (``http://exa mple.org/``, ``http://-x-.org/``)
would otherwise become a job whose every fetch fails the same way.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
WEB_SCHEMES = ("http", "https")


def valid_domain(name: str) -> bool:
    """A DNS name (letters in any script, IDNA-encoded first): labels of letters, digits and inner hyphens."""
    name = name.rstrip(".").lower()
    if not name or len(name) > 253:
        return False
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return all(_LABEL.match(label) for label in ascii_name.split("."))


def valid_host(host: str) -> bool:
    """A DNS name or an IP address (IPv6 in brackets or bare)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return valid_domain(host)


def web_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be fetched over HTTP at all (scheme, host), or None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port out of range or not a number
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme.lower() not in WEB_SCHEMES:
        return f"unsupported scheme {parts.scheme!r} (http and https are)"
    netloc_host = parts.netloc.rpartition("@")[2].rsplit(":", 1)[0] if parts.netloc else ""
    if not host or not valid_host(host) or " " in netloc_host:
        return f"{netloc_host or '(none)'!s} is not a valid host name"
    return None
