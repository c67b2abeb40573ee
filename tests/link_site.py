"""A loopback site serving a fixed set of pages, counting requests by the path the server decodes.

``pages`` maps a decoded path (``/café``) to (content type, body); any other path is a 404.
``delay_s(path)`` (optional) is how long that path takes to answer.
``hits`` counts requests per decoded path (what a server sees as "the same resource"),
``raw_hits`` per path as sent on the wire.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable, Mapping
from types import TracebackType

from aiohttp import web


class LinkSite:
    def __init__(
        self,
        pages: Mapping[str, tuple[str, bytes]],
        host: str = "127.0.0.1",
        delay_s: Callable[[str], float] | None = None,
    ) -> None:
        self.pages, self.host, self.delay_s = dict(pages), host, delay_s
        self.hits: collections.Counter[str] = collections.Counter()
        self.raw_hits: collections.Counter[str] = collections.Counter()
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def _any(self, request: web.Request) -> web.StreamResponse:
        self.hits[request.path] += 1
        self.raw_hits[request.raw_path] += 1
        if request.path == "/robots.txt":
            return web.Response(status=404)
        if self.delay_s is not None and (delay := self.delay_s(request.path)) > 0:
            await asyncio.sleep(delay)
        page = self.pages.get(request.path)
        if page is None:
            return web.Response(status=404, text="no such page")
        content_type, body = page
        return web.Response(body=body, content_type=content_type)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._any)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, self.host, 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> LinkSite:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
