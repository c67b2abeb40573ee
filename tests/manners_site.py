"""A small site that remembers who asked for what, and when: for the crawling-manners tests.

``/`` links to ``/p/0`` ... ``/p/{n-1}`` and ``/private/secret.html``. Its
robots.txt keeps ``/private/`` from ``mybot`` only, and asks ``mybot`` for a
``Crawl-delay``. ``/p/...`` answers 429 to its first ``busy`` requests.
"""

from __future__ import annotations

import asyncio
import threading
import time
from types import TracebackType

from aiohttp import web


class MannersSite:
    def __init__(self, pages: int = 6, crawl_delay_s: float = 0.4, busy: int = 0) -> None:
        self.pages, self.crawl_delay_s, self.busy = pages, crawl_delay_s, busy
        self.requests: list[tuple[float, str, str]] = []  # (monotonic time, path, User-Agent)
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def paths(self) -> list[str]:
        with self._lock:
            return [path for _, path, _ in self.requests]

    def agents(self) -> set[str]:
        with self._lock:
            return {agent for _, path, agent in self.requests if path != "/robots.txt"}

    def starts(self, prefix: str = "/") -> list[float]:
        """When requests for paths under ``prefix`` arrived (robots.txt never counts)."""
        with self._lock:
            return [at for at, path, _ in self.requests if path.startswith(prefix) and path != "/robots.txt"]

    async def _handle(self, request: web.Request) -> web.Response:
        with self._lock:
            self.requests.append((time.monotonic(), request.path, request.headers.get("User-Agent", "")))
            page_requests = sum(1 for _, path, _ in self.requests if path.startswith("/p/"))
        if request.path == "/robots.txt":
            mybot = f"User-agent: mybot\nDisallow: /private/\nCrawl-delay: {self.crawl_delay_s}\n"
            rules = mybot + "\nUser-agent: *\nDisallow:\n"
            return web.Response(text=rules)
        if request.path.startswith("/p/") and page_requests <= self.busy:
            return web.Response(status=429, text="slow down", headers={"Retry-After": "0"})
        links = "".join(f'<a href="/p/{i}">page {i}</a> ' for i in range(self.pages))
        body = f'<html><body>{links}<a href="/private/secret.html">secret</a></body></html>'
        return web.Response(text=body if request.path == "/" else "<html><body>a page</body></html>",
                            content_type="text/html")  # fmt: skip

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> MannersSite:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the manners site did not start")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
