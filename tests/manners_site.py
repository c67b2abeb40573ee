"""A small site that remembers who asked for what, and when: for the crawling-manners tests.

``/`` links to ``/p/0`` ... ``/p/{n-1}`` and ``/private/secret.html``. Its
robots.txt keeps ``/private/`` from ``mybot`` only, and asks ``mybot`` for a
``Crawl-delay``. ``/p/...`` answers 429 to its first ``busy`` requests.
"""

from __future__ import annotations

import threading
import time

from aiohttp import web

from tests.threaded_site import ThreadedSite


class MannersSite(ThreadedSite):
    def __init__(self, pages: int = 6, crawl_delay_s: float = 0.4, busy: int = 0) -> None:
        self.pages, self.crawl_delay_s, self.busy = pages, crawl_delay_s, busy
        self.requests: list[tuple[float, str, str]] = []  # (monotonic time, path, User-Agent)
        self._lock = threading.Lock()
        super().__init__()

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

    def _routes(self, app: web.Application) -> None:
        app.router.add_get("/{tail:.*}", self._handle)
