"""A tiny site whose pages answer slowly and which measures its own concurrency.

For politeness and cancellation tests: `/` links to `/p/0` ... `/p/{n-1}`; each
page waits `delay_s` before answering. The server records the most requests it
ever had in flight at once, and every path it was asked for.
"""

from __future__ import annotations

import asyncio
import collections
import threading

from aiohttp import web

from tests.threaded_site import ThreadedSite


class SlowSite(ThreadedSite):
    def __init__(self, pages: int = 40, delay_s: float = 0.3, host: str = "127.0.0.1") -> None:
        self.pages, self.delay_s, self.host = pages, delay_s, host
        self.hits: collections.Counter[str] = collections.Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        super().__init__(host)

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

    def _routes(self, app: web.Application) -> None:
        app.router.add_get("/", self._page)
        app.router.add_get("/p/{n}", self._page)
