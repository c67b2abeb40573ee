"""URL normalisation and crawl scope.

Two spellings of one page must become one string, or the seen-set fetches it
twice: scheme and host are lowercased, default ports dropped, the fragment
dropped, ``.``/``..`` segments resolved, an empty path becomes ``/``. The
query is kept as written (its order can matter to the server).
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize(url: str, base: str | None = None) -> str | None:
    """The canonical form of ``url`` (resolved against ``base``), or None if not http(s)."""
    try:
        joined = urljoin(base, url.strip()) if base else url.strip()
        parts = urlsplit(joined)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = parts.path or "/"
    if "." in path:
        trailing = path.endswith(("/", "/.", "/.."))
        path = posixpath.normpath(path)
        path = "/" + path.lstrip("/")  # normpath keeps a leading '//' as is
        if trailing and not path.endswith("/"):
            path += "/"
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def host_of(url: str) -> str:
    """``host[:port]`` as it appears in a normalised URL: the unit of politeness limits."""
    return urlsplit(url).netloc


def url_id(url: str, kind: str = "p") -> str:
    """A stable item id for a URL of a kind (``p`` page, ``i`` image)."""
    return kind + hashlib.sha1(url.encode(), usedforsecurity=False).hexdigest()[:16]


@dataclass(frozen=True)
class Scope:
    """Which hosts a crawl may follow links to.

    ``hosts`` are the seeds' host names, matched exactly on any port (as
    Scrapy's ``allowed_domains`` do); ``domains`` (``--allow-domain``) match
    themselves and their subdomains.
    """

    hosts: frozenset[str]
    domains: frozenset[str] = frozenset()

    @classmethod
    def of(cls, seeds: Iterable[str], allow_domains: Iterable[str] = ()) -> Scope:
        return cls(
            frozenset((urlsplit(seed).hostname or "").lower() for seed in seeds),
            frozenset(d.lower().strip(".") for d in allow_domains if d.strip(".")),
        )

    def allows(self, url: str) -> bool:
        hostname = (urlsplit(url).hostname or "").lower()
        if hostname in self.hosts:
            return True
        return any(hostname == d or hostname.endswith("." + d) for d in self.domains)

    def to_json(self) -> dict[str, list[str]]:
        return {"hosts": sorted(self.hosts), "domains": sorted(self.domains)}

    @classmethod
    def from_json(cls, raw: dict[str, list[str]]) -> Scope:
        return cls(frozenset(raw.get("hosts", [])), frozenset(raw.get("domains", [])))
