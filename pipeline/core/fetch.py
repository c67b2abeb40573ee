"""Getting an item's bytes: HTTP(S) with aiohttp, or a local file.

``fetch_url`` runs on the worker's event loop with the worker's one session.
Every way a fetch can go wrong ends as a ``FetchError`` whose reason goes into
the report: ``http_404``, ``http_500``, ``timeout``, ``too_large``,
``dns_error``, ``connection_error``, ``proxy_error``, ``tls_error``, ``unsupported_scheme``, ``invalid_url``,
``not_found``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import stat
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

import aiohttp
from yarl import URL

from pipeline.core.bodies import LARGE_BYTES, current_hold
from pipeline.core.errors import FetchError
from pipeline.core.limits import FetchLimits
from pipeline.core.proxies import proxy_host, redacted
from pipeline.core.ssrf import current_policy, current_proxy_host
from pipeline.core.urls import normalize

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Fetched:
    data: bytes
    content_type: str
    final_url: str
    attempts: int
    seconds: float
    charset: str | None = None
    redirects: int = 0


def _retry_after(header: str | None, cap: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), capped."""
    if not header:
        return None
    try:
        return min(cap, max(0.0, float(header)))
    except ValueError:
        pass
    try:
        return min(cap, max(0.0, parsedate_to_datetime(header).timestamp() - time.time()))
    except (TypeError, ValueError):
        return None


def _backoff(limits: FetchLimits, attempt: int) -> float:
    base = limits.backoff_s * (2**attempt)
    return float(min(limits.max_backoff_s, base * (0.5 + random.random())))


def check_url(url: str) -> URL:
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        raise FetchError("invalid_url", f"not a valid URL: {url!r}") from None
    if parsed.scheme not in ("http", "https"):
        raise FetchError("unsupported_scheme", f"only http and https are fetched, not {parsed.scheme!r}")
    if not parsed.host:
        raise FetchError("invalid_url", f"no host in {url!r}")
    return parsed


async def _read_capped(response: aiohttp.ClientResponse, cap: int, truncate: bool = False) -> bytes:
    """The body, decompressed, up to ``cap`` bytes: past it ``too_large``, or (``truncate``) the first ``cap``.

    A body past ``LARGE_BYTES`` first reserves room in the worker's body budget
    (``pipeline.core.bodies``), if the request carries a hold; its owner releases it.
    It reserves its Content-Length only when that is what it will hold: a
    compressed body's header gives the compressed size (a 1.6 MB gzip body can
    inflate to 31 MiB), so it, like one with no length, reserves the cap once it
    has grown past ``LARGE_BYTES`` (small compressed pages reserve nothing).
    """
    declared = response.content_length
    if declared is not None and declared > cap and not truncate:
        raise FetchError("too_large", f"Content-Length {declared} exceeds the cap of {cap} bytes")
    encoded = response.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity")
    size = cap if declared is None or encoded else min(declared, cap)  # what the body may grow to here
    hold = current_hold.get()
    if hold is not None and not encoded and declared is not None and declared > LARGE_BYTES:
        await hold.take_at_least(size)  # room for what it says it holds, before reading it
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body += chunk  # decompressed bytes: a gzip bomb hits the cap too
        if hold is not None and len(body) > LARGE_BYTES and (not hold.taken or len(body) > hold.nbytes):
            await hold.take_at_least(size)  # no length declared, or more than an earlier attempt's
        if len(body) > cap:
            if truncate:
                del body[cap:]
                break
            raise FetchError("too_large", f"body exceeds the cap of {cap} bytes")
    return bytes(body)


# A hook called with every URL a request is about to reach: the first one and
# each redirect target. It raises FetchError to refuse (scope, robots) and
# returns an async context manager held while that hop's request runs (the
# cluster-wide politeness slot), or None.
# A job's own User-Agent for the requests made in this context (None: the session's default).
current_user_agent: ContextVar[str | None] = ContextVar("current_user_agent", default=None)
HopGate = Callable[[str, int], Awaitable[AbstractAsyncContextManager[None] | None]]
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})


class _HTTPStatus(Exception):
    def __init__(self, status: int, retry_after: float | None) -> None:
        self.status, self.retry_after = status, retry_after


async def _hop(
    session: aiohttp.ClientSession, url: str, target: URL, limits: FetchLimits
) -> tuple[str | None, bytes, str, str | None]:
    """One request without following redirects: (redirect target or None, body, type, charset).

    ``target`` is ``url`` as ``check_url`` parsed it: parsed once per hop, not again here or by aiohttp.
    """
    proxy = limits.proxies.for_url(target) if limits.proxies is not None else None
    if proxy is None:
        return await _request(session, url, target, limits, None)
    # The proxy's own name is let through the SSRF guard for this request only (pipeline.core.ssrf).
    via_host = proxy_host(proxy)
    token = current_proxy_host.set(via_host)
    try:
        return await _request(session, url, target, limits, proxy)
    except (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError, aiohttp.ClientConnectorDNSError) as exc:
        if isinstance(exc, aiohttp.ClientConnectorDNSError) and exc.host != via_host:
            raise  # the site's name (an HTTPS tunnel's target is resolved by the proxy, so this is rare)
        raise _proxy_trouble(url, proxy, exc) from None
    finally:
        current_proxy_host.reset(token)


@functools.lru_cache(maxsize=16)
def _client_timeout(total: float, connect: float) -> aiohttp.ClientTimeout:
    """One (immutable) timeout object per setting, not one per request."""
    return aiohttp.ClientTimeout(total=total, connect=connect)


async def _request(
    session: aiohttp.ClientSession, url: str, target: URL, limits: FetchLimits, proxy: str | None
) -> tuple[str | None, bytes, str, str | None]:
    timeout = _client_timeout(limits.timeout_s, limits.connect_timeout_s)
    agent = current_user_agent.get()
    headers = {"User-Agent": agent} if agent else None
    async with session.get(target, timeout=timeout, allow_redirects=False, headers=headers, proxy=proxy) as response:
        if response.status == 407 and proxy is not None:
            raise _ProxyTrouble(_proxy_wants_credentials(url, proxy), retry=False)
        if response.status in REDIRECT_STATUS and "Location" in response.headers:
            return urljoin(url, response.headers["Location"]), b"", "", None
        if response.status >= 400:
            retry_after = _retry_after(response.headers.get("Retry-After"), limits.max_backoff_s)
            raise _HTTPStatus(response.status, retry_after)
        data = await _read_capped(response, limits.max_body_bytes, limits.truncate_body)
        return None, data, response.content_type, response.charset


async def _follow(
    session: aiohttp.ClientSession, url: str, first: URL, limits: FetchLimits, gate: HopGate | None
) -> tuple[bytes, str, str, str | None, int]:
    """Follow redirects by hand, so every hop is checked before it is requested.

    ``first`` is ``url`` as ``check_url`` parsed it. Returns (body, type, final URL, charset, redirects).
    """
    policy = current_policy.get()
    seen: set[str] = set()
    hop_url, parsed = url, first
    for hop in range(limits.max_redirects + 1):
        if hop_url in seen:
            raise FetchError("redirect_loop", f"{url} redirects in a loop through {hop_url}")
        seen.add(hop_url)
        slot = await gate(hop_url, hop) if gate is not None else None  # scope and robots first
        policy.check_literal(parsed.raw_host or "")
        async with slot if slot is not None else contextlib.nullcontext():
            target, data, content_type, charset = await _hop(session, hop_url, parsed, limits)
        if target is None:
            return data, content_type, hop_url, charset, hop
        hop_url = normalize(target) or target
        parsed = check_url(hop_url)
    raise FetchError("too_many_redirects", f"{url} redirected more than {limits.max_redirects} times")


class _ProxyTrouble(Exception):
    """The proxy, not the site, failed a hop: ``error`` says so; ``retry`` if asking again may help."""

    def __init__(self, error: FetchError, retry: bool) -> None:
        self.error, self.retry = error, retry


def _proxy_wants_credentials(url: str, proxy: str) -> FetchError:
    return FetchError("proxy_error", f"{url}: {redacted(proxy)} wants valid credentials (HTTP 407): put them in the "
                                     "proxy URL, http://user:password@host:port")  # fmt: skip


def _proxy_trouble(url: str, proxy: str, exc: aiohttp.ClientError) -> _ProxyTrouble:
    """What the proxy of this hop did wrong, named without its credentials; a refused tunnel (4xx) is final."""
    via = redacted(proxy)
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        if exc.status == 407:
            return _ProxyTrouble(_proxy_wants_credentials(url, proxy), retry=False)
        refused = FetchError("proxy_error", f"{url}: {via} answered HTTP {exc.status} to the tunnel request")
        return _ProxyTrouble(refused, retry=exc.status >= 500)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return _ProxyTrouble(FetchError("proxy_error", f"{url}: cannot resolve the proxy {via}"), retry=True)
    detail = exc.os_error if isinstance(exc, aiohttp.ClientConnectorError) else exc
    return _ProxyTrouble(FetchError("proxy_error", f"{url}: cannot reach {via}: {detail or exc}"), retry=True)


async def fetch_url(
    session: aiohttp.ClientSession, url: str, limits: FetchLimits, gate: HopGate | None = None
) -> Fetched:
    """GET ``url`` following redirects, with retries on 5xx/429/timeouts/connection errors.

    Raises only FetchError. The address policy for this request is the one in
    ``pipeline.core.ssrf.current_policy`` (unrestricted unless a crawl sets it).
    """
    first = check_url(url)
    started = time.perf_counter()
    attempts = 0
    while True:
        attempts += 1
        wait: float | None = None
        try:
            data, content_type, final_url, charset, redirects = await _follow(session, url, first, limits, gate)
            return Fetched(data, content_type, final_url, attempts, time.perf_counter() - started, charset, redirects)
        except _HTTPStatus as exc:
            error = FetchError(f"http_{exc.status}", f"{url} answered HTTP {exc.status}")
            if exc.status not in RETRYABLE_STATUS:
                raise error from None
            wait = exc.retry_after
        except TimeoutError:
            error = FetchError("timeout", f"{url} did not answer within {limits.timeout_s:g} s")
        except _ProxyTrouble as trouble:
            if not trouble.retry:
                raise trouble.error from None
            error = trouble.error
        except aiohttp.InvalidURL:  # its text is the URL aiohttp could not use: the page's, or the proxy's
            raise FetchError("invalid_url", f"{url} is not a URL that can be requested") from None
        except aiohttp.ClientConnectorCertificateError as exc:  # asking again changes nothing
            raise FetchError("tls_error", f"{url}: certificate refused ({exc.certificate_error}); for a private CA, "
                                          "SSL_CERT_FILE names a bundle with it") from None  # fmt: skip
        except aiohttp.ClientSSLError as exc:
            error = FetchError("tls_error", f"{url}: TLS failed: {exc}")
        except (aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as exc:
            error = FetchError("bad_response", f"{url}: {exc}")
        except aiohttp.ClientConnectorDNSError as exc:
            error = FetchError("dns_error", f"{url}: cannot resolve {exc.host}: {exc.os_error or exc}")
        except aiohttp.ClientConnectorError as exc:
            error = FetchError("connection_error", f"{url}: {exc.os_error or exc}")
        except aiohttp.ClientError as exc:
            error = FetchError("connection_error", f"{url}: {exc}")
        if attempts > limits.retries:
            raise error
        await asyncio.sleep(wait if wait is not None else _backoff(limits, attempts - 1))


def read_file(path: str, max_bytes: int) -> bytes:
    """Read a local source (in a pool child, thousands a second for small images).

    Plain os calls: one open, one fstat, one read for a regular file. The
    pathlib version (is_dir, open, a buffered reader) made 9 system calls and
    cost a 16x16 PNG 19 us of its ~200; this makes 4.

    Only regular files are read. The open is non-blocking, so a named pipe (or a
    device) in a source folder cannot wedge the pool child that opens it: it is
    refused as ``not_a_file`` before a byte is read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError(path)
            if not stat.S_ISREG(info.st_mode):
                raise FetchError("not_a_file", f"{path} is {_file_kind(info.st_mode)}, not a regular file")
            size = info.st_size
            if size > max_bytes:
                raise FetchError("too_large", f"{path} is {size} bytes; the cap is {max_bytes}")
            data = _read_capped_fd(fd, size, True, max_bytes)
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise FetchError("not_found", f"no such file: {path}") from None
    except IsADirectoryError:
        raise FetchError("not_found", f"{path} is a directory") from None
    except PermissionError:
        raise FetchError("permission_denied", f"cannot read {path}") from None
    except OSError as exc:
        raise FetchError("read_error", f"{path}: {exc.strerror}") from None
    if len(data) > max_bytes:  # grew since the stat, or a size the stat cannot tell
        raise FetchError("too_large", f"{path} is over the cap of {max_bytes} bytes")
    return data


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _read_capped_fd(fd: int, size: int, regular: bool, max_bytes: int) -> bytes:
    """The file's bytes, up to ``max_bytes + 1``: one read when a regular file holds what its stat said.

    Asks for what the file holds (+1 to notice growth), never for the whole cap:
    read(max_bytes) would allocate 50 MB for every file (measured: ~100 page
    faults each). Anything else (a file that grew or shrank, /proc) is read in
    chunks until its end or past the cap.
    """
    data = os.read(fd, size + 1 if size else _CHUNK)
    if regular and len(data) == size:  # a regular file reads short only at its end
        return data
    parts, total = [data], len(data)
    while data and total <= max_bytes:
        data = os.read(fd, _CHUNK)
        parts.append(data)
        total += len(data)
    return b"".join(parts)
