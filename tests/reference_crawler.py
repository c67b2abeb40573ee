"""An independent, deliberately simple breadth-first crawler: the oracle the crawl-job tests compare against.

It imports nothing from ``pipeline`` -- a second implementation sharing the first one's
helpers would share its bugs. It is synchronous and stdlib-only, and slow on purpose:
obviously correct beats fast here. The crawl jobs must match these semantics exactly.

URL normalisation (``normalize``)
    Only http and https URLs exist for the crawler; anything else (mailto:, javascript:,
    data:, ftp:, unparsable ports, no host) is dropped. Scheme and host are lower-cased;
    the default port (80 for http, 443 for https) is dropped, any other port kept; the
    fragment is dropped; a non-ASCII host is IDNA-encoded (Python's ``idna`` codec); in path
    and query, percent-encoding is normalised as RFC 3986 6.2.2 says (escapes of unreserved
    characters decoded, other escapes' hex upper-cased, a ``%`` not starting an escape written
    ``%25``, non-ASCII characters and the ones a URL cannot hold written as UTF-8 escapes);
    then ``.`` and ``..`` path segments are removed (RFC 3986 5.2.4); an empty path becomes
    ``/``; the query otherwise keeps its order (an empty ``?`` vanishes); user info is left as
    it is. (pipeline requotes with yarl, which also decodes some reserved characters' escapes,
    such as ``%3B`` in a path; the test sites use no such spelling.)

Links and images
    ``<a href>``, ``<area href>`` and the URL of ``<meta http-equiv="refresh" content="N; url=U">``
    (appended after the page's other links) are links; ``<img>`` values are images; nothing else (no
    ``<link>``, ``<source>``, ``<picture>``, CSS or scripts). An ``<img>`` is looked at in this order,
    skipping ``data:`` values: ``srcset``, ``data-srcset``, ``data-lazy-srcset`` (chosen candidate),
    ``src``, then ``data-src``, ``data-lazy-src``, ``data-original``, ``data-lazy`` (lazy loading).
    Values are stripped of surrounding whitespace; empty values are ignored. They resolve
    against the page's final URL after redirects, or against the first ``<base href>``
    in the document (itself resolved against the final URL), then are normalised. From
    an ``<img>`` exactly one URL is taken: the chosen ``srcset`` candidate, else ``src``. Candidates are
    split on commas, each is ``URL [descriptor]``; if any candidate has a ``w``
    descriptor the largest width wins, otherwise the largest ``x`` density (no
    descriptor means 1x); ties go to the first. Only text/html responses (per
    Content-Type) are parsed; only 2xx bodies are parsed.

Scope
    The exact host names of the seeds plus ``allowed_hosts`` (ports are ignored: a host
    is in scope on any port). Out-of-scope links and images are ignored: not counted
    anywhere, never fetched. Seeds are always in scope.

Breadth-first order and limits
    Seeds have depth 0; the links of a page at depth d have depth d + 1 and are not
    admitted at all when d + 1 > max_depth. Pages are processed in admission order
    (FIFO), links in document order. Each normalised URL is admitted once. max_pages caps
    the number of admitted URLs (ok + failed + other): once reached, nothing more is
    admitted. Every admitted URL gets exactly one outcome.

Fetching
    A robots-disallowed URL (``obey_robots``) is not fetched and fails with ``robots``.
    robots.txt is fetched once per origin (scheme, host, port), following up to five
    redirects, and does not count as a page; 2xx -> its rules (urllib.robotparser: plain
    prefix matching, no ``*``/``$`` wildcards, which the demo site does not use; the ``*``
    group), 4xx -> everything allowed, 5xx or unreachable -> everything disallowed (RFC 9309).
    Redirects (301, 302, 303, 307, 308 with a Location) are followed by hand, at most
    MAX_REDIRECTS hops. Each Location is resolved against the URL that sent it and
    normalised, then checked in this order: not http(s) or out of scope -> ``out_of_scope``;
    already in this chain -> ``redirect_loop``; one hop more than MAX_REDIRECTS ->
    ``too_many_redirects``; robots-disallowed -> ``robots``. The outcome is
    attributed to the ORIGINAL URL; the intermediate and final URLs are not marked seen
    (``/go/1`` and ``/page/7.html`` are two pages if both are linked). Outcomes: 2xx
    text/html -> ``pages_ok``; other 2xx -> ``other_ok``; any other status ->
    ``http_{status}``; a timeout -> ``timeout``; a connection error -> ``connection_error``.
    Images are collected from ok pages, never fetched.
"""

from __future__ import annotations

import urllib.error
import urllib.request
import urllib.robotparser
from collections import deque
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit, urlunsplit

MAX_REDIRECTS = 10
USER_AGENT = "reference-crawler/1.0"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECT_CODES = {301, 302, 303, 307, 308}


@dataclass
class ReferenceResult:
    pages_ok: set[str] = field(default_factory=set)
    pages_failed: dict[str, str] = field(default_factory=dict)
    other_ok: set[str] = field(default_factory=set)
    images: set[str] = field(default_factory=set)
    depth: dict[str, int] = field(default_factory=dict)

    @property
    def admitted(self) -> int:
        return len(self.pages_ok) + len(self.pages_failed) + len(self.other_ok)

    def failures(self) -> dict[str, int]:
        """Failure reason -> count, the shape of the crawl document's "failures"."""
        counts: dict[str, int] = {}
        for reason in self.pages_failed.values():
            counts[reason] = counts.get(reason, 0) + 1
        return dict(sorted(counts.items()))


def remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4, literally."""
    output: list[str] = []
    while path:
        if path.startswith("../"):
            path = path[3:]
        elif path.startswith("./"):
            path = path[2:]
        elif path.startswith("/./"):
            path = "/" + path[3:]
        elif path == "/.":
            path = "/"
        elif path.startswith("/../"):
            path = "/" + path[4:]
            if output:
                output.pop()
        elif path == "/..":
            path = "/"
            if output:
                output.pop()
        elif path in (".", ".."):
            path = ""
        else:
            start = 1 if path.startswith("/") else 0
            end = path.find("/", start)
            end = len(path) if end == -1 else end
            output.append(path[:end])
            path = path[end:]
    return "".join(output)


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = frozenset("0123456789abcdefABCDEF")
_RAW_IN_PATH = _UNRESERVED | frozenset("!$&'()*+,;=:@/")
_RAW_IN_QUERY = _RAW_IN_PATH | {"?"}


def normalize_escapes(text: str, raw: frozenset[str]) -> str:
    """RFC 3986 6.2.2 percent-encoding normalisation of a path or query (see the module docstring)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "%" and i + 2 < len(text) and text[i + 1] in _HEX and text[i + 2] in _HEX:
            decoded = chr(int(text[i + 1 : i + 3], 16))
            out.append(decoded if decoded in _UNRESERVED else "%" + text[i + 1 : i + 3].upper())
            i += 3
            continue
        out.append(char if char in raw else "".join(f"%{byte:02X}" for byte in char.encode("utf-8")))
        i += 1
    return "".join(out)


def normalize(url: str) -> str | None:
    """The canonical form of an absolute URL, or None if it is not a crawlable http(s) URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    path = remove_dot_segments(normalize_escapes(parts.path, _RAW_IN_PATH)) or "/"
    return urlunsplit(SplitResult(scheme, netloc, path, normalize_escapes(parts.query, _RAW_IN_QUERY), ""))


def resolve(base: str, href: str) -> str | None:
    href = href.strip()
    return normalize(urljoin(base, href)) if href else None


def pick_srcset(srcset: str) -> str | None:
    """The largest candidate: by w descriptor if any candidate has one, else by x (default 1x)."""
    widths: list[tuple[float, str]] = []
    densities: list[tuple[float, str]] = []
    for candidate in srcset.split(","):
        tokens = candidate.split()
        if not tokens:
            continue
        descriptor = tokens[1] if len(tokens) > 1 else "1x"
        try:
            value = float(descriptor[:-1])
        except ValueError:
            continue
        if descriptor.endswith("w"):
            widths.append((value, tokens[0]))
        elif descriptor.endswith("x"):
            densities.append((value, tokens[0]))
    pool = widths or densities
    if not pool:
        return None
    best = max(value for value, _ in pool)
    return next(url for value, url in pool if value == best)


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.links: list[str] = []
        self.images: list[str] = []
        self.refresh: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values: dict[str, str] = {}
        for name, value in attrs:
            values.setdefault(name, value or "")  # a repeated attribute: the first one counts, as in browsers
        if tag == "base" and self.base is None and values.get("href", "").strip():
            self.base = values["href"]
        elif tag in ("a", "area") and "href" in values:
            self.links.append(values["href"])
        elif tag == "meta" and values.get("http-equiv", "").strip().lower() == "refresh":
            content = values.get("content", "")
            at = content.lower().find("url")
            if at >= 0:
                target = content[at + 3 :].lstrip(" =").strip().strip("'\"").split()
                if target:
                    self.refresh.append(target[0].strip("'\""))
        elif tag == "img":
            # One image per <img> (srcset, src and the lazy attributes are one picture).
            candidates = [pick_srcset(values.get(a, "")) for a in ("srcset", "data-srcset", "data-lazy-srcset")]
            candidates.append(values.get("src", "").strip())
            candidates += [
                values.get(a, "").strip() for a in ("data-src", "data-lazy-src", "data-original", "data-lazy")
            ]
            chosen = next((c for c in candidates if c and not c.startswith("data:")), None)
            if chosen:
                self.images.append(chosen)


def parse_page(html: str, final_url: str) -> tuple[list[str], list[str]]:
    """(links, images) of a page, resolved and normalised, in document order (out-of-scope included)."""
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    base = urljoin(final_url, parser.base.strip()) if parser.base else final_url
    links = [url for href in parser.links + parser.refresh if (url := resolve(base, href))]
    images = [url for src in parser.images if (url := resolve(base, src))]
    return links, images


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # every 3xx surfaces as an HTTPError; the crawler follows it by hand


@dataclass
class _Response:
    status: int
    content_type: str
    charset: str
    location: str | None
    body: bytes


class _Fetcher:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        # No ProxyHandler settings from the environment: the crawl must go straight to the site.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())
        self.robots: dict[str, urllib.robotparser.RobotFileParser | bool] = {}

    def get(self, url: str) -> _Response:
        """One request, no redirects followed; raises TimeoutError or OSError."""
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
        try:
            response = self.opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as error:
            response = error
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise TimeoutError from error
            raise ConnectionError(str(error.reason)) from error
        with response:
            body = response.read()
            headers = response.headers
            return _Response(
                status=response.getcode(),
                content_type=headers.get_content_type() if headers.get("Content-Type") else "",
                charset=headers.get_content_charset() or "utf-8",
                location=headers.get("Location"),
                body=body,
            )

    def allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self.robots:
            self.robots[origin] = self._robots(origin)
        rules = self.robots[origin]
        return rules if isinstance(rules, bool) else rules.can_fetch("*", url)

    def _robots(self, origin: str) -> urllib.robotparser.RobotFileParser | bool:
        url = origin + "/robots.txt"
        try:
            response = self.get(url)
            for _ in range(5):  # RFC 9309: follow at least five redirects
                if response.status not in _REDIRECT_CODES or not response.location:
                    break
                url = urljoin(url, response.location.strip())
                response = self.get(url)
        except OSError:
            return False
        if 400 <= response.status < 500:
            return True
        if not 200 <= response.status < 300:
            return False
        parser = urllib.robotparser.RobotFileParser()
        parser.parse(response.body.decode("utf-8", "replace").splitlines())
        return parser


def _host(url: str) -> str:
    return urlsplit(url).hostname or ""


def reference_crawl(
    seeds: list[str],
    *,
    max_pages: int | None = None,
    max_depth: int | None = None,
    allowed_hosts: set[str] | None = None,
    obey_robots: bool = True,
    timeout: float = 5.0,
) -> ReferenceResult:
    """Crawl breadth-first from ``seeds`` with the semantics of the module docstring."""
    result = ReferenceResult()
    fetcher = _Fetcher(timeout)
    normalised = [url for seed in seeds if (url := normalize(seed))]
    scope = {_host(url) for url in normalised} | {host.lower() for host in allowed_hosts or ()}
    queue: deque[str] = deque()

    def admit(url: str, depth: int) -> None:
        if url in result.depth or _host(url) not in scope:
            return
        if (max_depth is not None and depth > max_depth) or (max_pages is not None and len(result.depth) >= max_pages):
            return
        result.depth[url] = depth
        queue.append(url)

    for url in normalised:
        admit(url, 0)
    while queue:
        url = queue.popleft()
        outcome = _fetch_following(fetcher, url, scope, obey_robots)
        if isinstance(outcome, str):
            result.pages_failed[url] = outcome
            continue
        final_url, response = outcome
        if response.content_type != "text/html":
            result.other_ok.add(url)
            continue
        result.pages_ok.add(url)
        try:
            html = response.body.decode(response.charset, "replace")
        except LookupError:  # an unknown charset label
            html = response.body.decode("utf-8", "replace")
        links, images = parse_page(html, final_url)
        result.images.update(image for image in images if _host(image) in scope)
        for link in links:
            admit(link, result.depth[url] + 1)
    return result


def _fetch_following(fetcher: _Fetcher, url: str, scope: set[str], obey_robots: bool) -> str | tuple[str, _Response]:
    """(final URL, 2xx response), or a failure reason."""
    chain = [url]
    while True:
        current = chain[-1]
        if obey_robots and not fetcher.allowed(current):
            return "robots"
        try:
            response = fetcher.get(current)
        except TimeoutError:
            return "timeout"
        except OSError:
            return "connection_error"
        if response.status in _REDIRECT_CODES and response.location:
            target = normalize(urljoin(current, response.location.strip()))
            if target is None or _host(target) not in scope:
                return "out_of_scope"
            if target in chain:
                return "redirect_loop"
            if len(chain) > MAX_REDIRECTS:
                return "too_many_redirects"
            chain.append(target)
            continue
        if not 200 <= response.status < 300:
            return f"http_{response.status}"
        return current, response
