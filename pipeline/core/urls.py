"""URL normalisation and crawl scope.

Two spellings of one resource must become one string, or the seen-set fetches it
twice: scheme and host are lowercased, the host IDNA-encoded as browsers do
(``Bücher.example`` is ``xn--bcher-kva.example``), default ports dropped, the
fragment dropped, ``.``/``..`` segments resolved, an empty path becomes ``/``;
the query keeps its order (it can matter to the server). Percent-encoding is
normalised the way the fetch itself will send it: aiohttp requotes every URL
through yarl, so path and query are requoted by yarl here too (escapes of
unreserved characters decoded, ``/a%7eb`` is ``/a~b``; other escapes' hex in
upper case; non-ASCII as UTF-8 escapes, ``/€`` is ``/%E2%82%AC``; characters a
URL cannot hold escaped). Two links are one item exactly when they are one request.

Speed: a crawl normalises every link of every page in a pool child, and most
of them are the same site-wide menu links again. So the canonical form of an
absolute URL is cached (bounded), and the common link shapes (absolute
``http(s)://``, ``//host``, ``/path``, ``#frag``, a plain relative path, with
leading ``./`` or ``../``) are joined to the page's URL with string operations
that give exactly what ``urljoin`` would, and canonicalised the same way when
host, path and query hold only characters no normalisation changes (``_PLAIN``:
no escapes, nothing to escape); anything unusual takes the original ``urljoin`` +
``urlsplit`` + yarl road (``_slow_canonical``), which remains the definition.
``Scope.allows`` reads the host of a normalised URL with one regular expression.
The unit tests (``test_parse_fast_paths``) check that both roads agree on many
odd spellings.
"""

from __future__ import annotations

import functools
import hashlib
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urljoin, urlparse, urlsplit, urlunparse, urlunsplit

from yarl import URL

_DEFAULT_PORTS = {"http": 80, "https": 443}

# Bounds of the canonical-form cache: entries, and the longest URL worth caching (a
# longer one is computed each time, so the cache's memory stays bounded: ~10 MB typical).
CANONICAL_CACHE_SIZE = 32768
CANONICAL_CACHE_MAX_LEN = 512

# A path and query yarl leaves as they are: no escape to normalise, nothing to escape.
_PLAIN_CHARS = r"A-Za-z0-9\-._~!$&'()*+,;=:@/?"
_PLAIN = re.compile(f"[{_PLAIN_CHARS}]*", re.ASCII)
# What the string fast road reads: scheme://host[:port], a plain ASCII host name (no userinfo, no IPv6
# brackets, no escapes) and digit port; then a plain path and query; then any fragment without tabs or newlines.
_FAST_URL = re.compile(
    rf"([A-Za-z]{{4,5}})://([A-Za-z0-9._-]+)(?::([0-9]*))?([/?][{_PLAIN_CHARS}]*)?(?:#[^\t\n\r]*)?", re.ASCII
)
# A base URL whose parts can be read without urlparse: lowercase http(s), a plain ASCII netloc,
# no ';params', no characters urllib deletes.
_SIMPLE_BASE = re.compile(
    r"(https?)://([A-Za-z0-9._~%!$&'()*+,=:-]+)(/[^?#;\t\n\r]*)?(?:\?([^#\t\n\r]*))?(?:#[^\t\n\r]*)?", re.ASCII
)
# The host of a normalised URL, if it is a plain ASCII name: what Scope.allows needs.
_CANONICAL_HOST = re.compile(r"https?://([A-Za-z0-9._-]+)(?::[0-9]*)?/", re.ASCII)


def _resolve_dots(path: str) -> str:
    """``.``/``..`` segments resolved, a trailing slash kept: the path rule of the module docstring.

    ``path`` starts with '/'. Without a ``/.`` or ``//`` in it ``normpath`` would give it back
    as it is, so most paths (``/page/7.html``) skip it.
    """
    if "." in path and ("/." in path or "//" in path):
        trailing = path.endswith(("/", "/.", "/.."))
        path = posixpath.normpath(path)
        path = "/" + path.lstrip("/")  # normpath keeps a leading '//' as is
        if trailing and not path.endswith("/"):
            path += "/"
    return path


def _idna_host(host: str) -> str | None:
    """A lowercased host name as a connection will use it: non-ASCII names IDNA-encoded by yarl
    (UTS #46, as browsers), None if they cannot be."""
    if host.isascii():
        return host
    try:
        return URL.build(scheme="http", host=host).raw_host
    except (ValueError, UnicodeError):
        return None


def _requote(path: str, query: str) -> tuple[str, str]:
    """``path`` and ``query`` requoted as aiohttp will send them (yarl's requoting), dots left alone.

    As a relative reference (``.`` + path) yarl requotes without resolving dot
    segments; ``_resolve_dots`` does that after, on the decoded escapes.
    """
    if _PLAIN.fullmatch(path) and _PLAIN.fullmatch(query):
        return path, query
    try:
        relative = URL("." + path + ("?" + query if query else ""))
    except ValueError:
        return path, query
    return relative.raw_path[1:], relative.raw_query_string


def _slow_canonical(joined: str) -> str | None:
    """The canonical form of an absolute URL by ``urlsplit`` and yarl: the definition the fast road must match."""
    try:
        parts = urlsplit(joined)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = _idna_host((parts.hostname or "").lower().rstrip("."))
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path, query = _requote(parts.path, parts.query)
    return urlunsplit((scheme, netloc, _resolve_dots(path or "/"), query, ""))


def _fast_canonical(joined: str) -> str | None:
    """``_slow_canonical`` by string operations for the usual ``http(s)://host[:port]/...`` shape.

    One regular expression reads the whole URL; it falls back to ``_slow_canonical``
    for whatever it does not model (IPv6, userinfo, non-ASCII hosts, escapes, odd
    schemes or characters: tabs and newlines, which ``urlsplit`` deletes anywhere).
    """
    match = _FAST_URL.fullmatch(joined)
    if match is None:
        return _slow_canonical(joined)
    scheme, host, port_text, rest = match.group(1, 2, 3, 4)
    scheme = scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        return _slow_canonical(joined)
    host = host.lower().rstrip(".")
    port = int(port_text) if port_text else None  # ':' with no digits means no port, as in urlsplit
    if not host or (port is not None and port > 65535):
        return None
    path, _, query = (rest or "").partition("?")
    netloc_text = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = _resolve_dots(path or "/")
    return f"{scheme}://{netloc_text}{path}?{query}" if query else f"{scheme}://{netloc_text}{path}"


@functools.lru_cache(maxsize=CANONICAL_CACHE_SIZE)
def _cached_canonical(joined: str) -> str | None:
    return _fast_canonical(joined)


def _canonical(joined: str) -> str | None:
    """The canonical form of an absolute URL: cached, as site-wide links recur on every page."""
    return _cached_canonical(joined) if len(joined) <= CANONICAL_CACHE_MAX_LEN else _fast_canonical(joined)


class _Base(NamedTuple):
    """What ``urljoin`` reads from a base URL, taken once per page rather than once per link."""

    prefix: str  # 'scheme://netloc': what a '/path' joins onto
    scheme: str
    directory: str | None  # the path up to its last '/', if a plain relative path may join onto it
    itself: str  # urljoin(base, '#'): what a '#fragment' resolves to, before canonicalisation


def _base_parts_slow(url: str) -> tuple[str, str, str, str] | None:
    """Scheme, netloc, path and ``urljoin(url, '#')`` as ``urljoin`` sees them; None if it would raise."""
    try:
        parts = urlparse(url)
    except ValueError:
        return None
    return parts.scheme, parts.netloc, parts.path, urlunparse(parts._replace(fragment=""))


def _base_parts(url: str) -> tuple[str, str, str, str] | None:
    """``_base_parts_slow`` by one regular expression for a plain ``http(s)://host/path?query`` URL."""
    match = _SIMPLE_BASE.fullmatch(url)
    if match is None:
        return _base_parts_slow(url)
    scheme, netloc, path, query = match.group(1, 2, 3, 4)
    path = path or ""
    itself = f"{scheme}://{netloc}{path}?{query}" if query else f"{scheme}://{netloc}{path}"
    return scheme, netloc, path, itself


@functools.lru_cache(maxsize=64)
def _base(url: str) -> _Base | None:
    """``url`` taken apart as a base, or None when the fast roads must not be used for it."""
    parts = _base_parts(url)
    if parts is None:
        return None
    scheme, netloc, path, itself = parts
    if scheme not in _DEFAULT_PORTS or not netloc:
        return None
    path = path or "/"
    directory = path[: path.rfind("/") + 1]
    plain = directory.startswith("/") and "//" not in directory and "/." not in directory
    return _Base(f"{scheme}://{netloc}", scheme, directory if plain else None, itself)


def _fast_join(href: str, base: _Base) -> str | None:
    """``urljoin(base, href)`` up to what canonicalisation erases, or None if not a shape modelled here.

    ``href`` is stripped, not empty, and free of the ``_unmodelled`` characters. An
    absolute URL with a host is left as written: ``urljoin`` only takes it
    apart and puts it back. ``/path`` and a plain relative path (no ``.`` or
    empty segments, no scheme) are concatenated, which is what ``urljoin``'s
    segment merge comes to when it has nothing to remove; leading ``./`` and
    ``../`` segments of a relative path drop out or take a directory off.
    """
    first = href[0]
    if first in "hH" and href[:8].lower().startswith(("http://", "https://")):
        start = href.find("//") + 2  # urlparse lowercases the scheme; so does canonicalisation
        return href if start < len(href) and href[start] not in "/?#" else None
    if first == "/":
        if href.startswith("//"):
            return base.scheme + ":" + href if len(href) > 2 and href[2] not in "/?#" else None
        return base.prefix + href if "/." not in href else None
    if first == "#":
        return base.itself
    directory = base.directory
    if directory is None or first <= " " or first == "?":
        return None
    path = href.partition("#")[0].partition("?")[0]
    if ":" in path or "//" in path:
        return None
    rest = href
    while rest.startswith(("./", "../")):  # leading '.' and '..' segments: the merge drops or pops them
        if rest[1] == "/":
            rest = rest[2:]
        else:
            rest = rest[3:]
            directory = directory[: directory.rfind("/", 0, -1) + 1] or "/"  # never above the root
    if not rest or rest[0] in "./?#" or "/." in path[len(href) - len(rest) :]:
        return None
    return base.prefix + directory + rest


def _unmodelled(href: str) -> bool:
    """Whether ``urljoin`` does what ``_fast_join`` does not model: it deletes tab and newlines
    anywhere, and ``urlparse`` splits ``;params`` off a path."""
    return "\t" in href or "\n" in href or "\r" in href or ";" in href  # four scans beat one regex


def _join(href: str, base: str, parts: _Base | None) -> str | None:
    """``urljoin(base, href)`` (``href`` stripped), by a fast road if one applies; None if urljoin raises."""
    if not href:
        return base  # urljoin(base, '') is the base itself
    if parts is not None and not _unmodelled(href):
        joined = _fast_join(href, parts)
        if joined is not None:
            return joined
    try:
        return urljoin(base, href)
    except ValueError:
        return None


def normalize(url: str, base: str | None = None) -> str | None:
    """The canonical form of ``url`` (resolved against ``base``), or None if not http(s)."""
    joined = _join(url.strip(), base, _base(base)) if base else url.strip()
    return None if joined is None else _canonical(joined)


def normalize_all(urls: Iterable[str], base: str) -> list[str | None]:
    """``[normalize(url, base) for url in urls]``: a page's links, with the base taken apart once.

    The loop is ``normalize`` inlined: a heavy page has hundreds of links.
    """
    parts = _base(base) if base else None
    if parts is None:
        return [normalize(url, base) for url in urls]
    fast_join, canonical, longest = _fast_join, _cached_canonical, CANONICAL_CACHE_MAX_LEN
    out: list[str | None] = []
    for url in urls:
        href = url.strip()
        joined = None
        if href and not ("\t" in href or "\n" in href or "\r" in href or ";" in href):  # _unmodelled
            joined = fast_join(href, parts)
        if joined is None:
            joined = _join(href, base, None)
            if joined is None:
                out.append(None)
                continue
        out.append(canonical(joined) if len(joined) <= longest else _fast_canonical(joined))
    return out


def host_of(url: str) -> str:
    """``host[:port]`` as it appears in a normalised URL: the unit of politeness limits."""
    return urlsplit(url).netloc


def url_id(url: str, kind: str = "p") -> str:
    """A stable item id for a URL of a kind (``p`` page, ``i`` image)."""
    return kind + hashlib.sha1(url.encode(), usedforsecurity=False).hexdigest()[:16]


def hostname_of(url: str) -> str:
    """The lowercased host name of ``url`` (no port, no brackets), as ``urlsplit(url).hostname``.

    A normalised URL (``scheme://host[:port]/...``) is read with one regular
    expression; anything else goes through ``urlsplit``.
    """
    match = _CANONICAL_HOST.match(url)
    if match is not None:
        return match.group(1).lower()
    return (urlsplit(url).hostname or "").lower()


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
        domains = (_idna_host(d.lower().strip(".")) for d in allow_domains if d.strip("."))
        return cls(
            frozenset(hostname_of(normalize(seed) or seed) for seed in seeds),
            frozenset(d for d in domains if d),
        )

    def allows(self, url: str) -> bool:
        hostname = hostname_of(url)
        if hostname in self.hosts:
            return True
        return any(hostname == d or hostname.endswith("." + d) for d in self.domains)

    def to_json(self) -> dict[str, list[str]]:
        return {"hosts": sorted(self.hosts), "domains": sorted(self.domains)}

    @classmethod
    def from_json(cls, raw: dict[str, list[str]]) -> Scope:
        return cls(frozenset(raw.get("hosts", [])), frozenset(raw.get("domains", [])))
