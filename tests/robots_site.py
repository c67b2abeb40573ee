"""A tiny site whose robots.txt misbehaves on purpose: 503, too slow to answer, or 5.6 MB.

``/`` links to ``/public.html`` and ``/private/1.html``; the robots.txt (when it
answers) disallows ``/private/``. The server counts the paths it was asked for.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from types import TracebackType

from aiohttp import web

ROBOTS_RULES = "User-agent: *\nDisallow: /private/\n"
HUGE_ROBOTS = ROBOTS_RULES + "# padding to make robots.txt bigger than any sane cap\n" * 110_000  # ~5.6 MB


class RobotsSite:
    def __init__(self, robots: str, slow_s: float = 20.0) -> None:
        assert robots in ("503", "slow", "huge", "normal")
        self.robots, self.slow_s = robots, slow_s
        self.hits: collections.Counter[str] = collections.Counter()
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _robots(self, request: web.Request) -> web.StreamResponse:
        self.hits[request.path] += 1
        if self.robots == "503":
            return web.Response(status=503, text="try later")
        if self.robots == "slow":
            await asyncio.sleep(self.slow_s)
        return web.Response(text=HUGE_ROBOTS if self.robots == "huge" else ROBOTS_RULES)

    async def _page(self, request: web.Request) -> web.Response:
        self.hits[request.path] += 1
        links = '<a href="/public.html">public</a> <a href="/private/1.html">private</a>'
        return web.Response(text=f"<html><body><p>words here</p>{links}</body></html>", content_type="text/html")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/robots.txt", self._robots)
        for path in ("/", "/public.html", "/private/1.html"):
            app.router.add_get(path, self._page)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> RobotsSite:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
