"""A tiny site whose pages answer slowly and which measures its own concurrency.

For politeness and cancellation tests: `/` links to `/p/0` ... `/p/{n-1}`; each
page waits `delay_s` before answering. The server records the most requests it
ever had in flight at once, and every path it was asked for.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from types import TracebackType

from aiohttp import web


class SlowSite:
    def __init__(self, pages: int = 40, delay_s: float = 0.3, host: str = "127.0.0.1") -> None:
        self.pages, self.delay_s, self.host = pages, delay_s, host
        self.hits: collections.Counter[str] = collections.Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def _page(self, request: web.Request) -> web.Response:
        with self._lock:
            self.hits[request.path] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if request.path == "/":
                links = "".join(f'<a href="/p/{i}">page {i}</a> ' for i in range(self.pages))
                return web.Response(text=f"<html><body>{links}</body></html>", content_type="text/html")
            await asyncio.sleep(self.delay_s)
            return web.Response(text="<html><body><p>slow but steady</p></body></html>", content_type="text/html")
        finally:
            with self._lock:
                self.in_flight -= 1

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/p/{n}", self._page)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, self.host, 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> SlowSite:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
