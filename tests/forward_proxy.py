"""A forward HTTP proxy for the proxy tests: every request it gets goes to one upstream server.

A client sends it absolute-form requests (``GET http://demo.test/page/1.html``);
it forwards each to ``upstream`` with the request's own Host header (so the
demo site writes its links for the name the client asked for), without
following redirects, and counts what it forwarded by host and path, and keeps the credentials it was given.
"""

from __future__ import annotations

import collections
import threading

import aiohttp
from aiohttp import web

from tests.threaded_site import ThreadedSite

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authorization", "proxy-connection", "te", "trailer",
                        "transfer-encoding", "upgrade", "content-length", "content-encoding"})  # fmt: skip


class ForwardProxy(ThreadedSite):
    def __init__(self, upstream: str, require: str | None = None) -> None:
        """``require``: a ``Proxy-Authorization`` value without which it answers 407."""
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.require = require
        self._lock = threading.Lock()
        self._hits: collections.Counter[str] = collections.Counter()
        self.credentials: set[str] = set()  # every Proxy-Authorization header seen
        self._session: aiohttp.ClientSession | None = None

    @property
    def hits(self) -> collections.Counter[str]:
        """``host/path`` -> requests forwarded."""
        with self._lock:
            return collections.Counter(self._hits)

    def _routes(self, app: web.Application) -> None:
        app.router.add_route("GET", "/{tail:.*}", self._forward)
        app.on_cleanup.append(self._close)

    async def _close(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self._hits[f"{request.host}{request.path}"] += 1
            if "Proxy-Authorization" in request.headers:
                self.credentials.add(request.headers["Proxy-Authorization"])
        if self.require is not None and request.headers.get("Proxy-Authorization") != self.require:
            return web.Response(status=407, headers={"Proxy-Authenticate": 'Basic realm="test"'})
        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=True)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        async with self._session.get(self.upstream + request.path_qs, headers=headers, allow_redirects=False) as got:
            body = await got.read()
            answer = {k: v for k, v in got.headers.items() if k.lower() not in HOP_BY_HOP}
            return web.Response(status=got.status, body=body, headers=answer)
