"""A tiny site whose robots.txt misbehaves on purpose: 503, too slow to answer, or 5.6 MB.

``/`` links to ``/public.html`` and ``/private/1.html``; the robots.txt (when it
answers) disallows ``/private/``. The server counts the paths it was asked for.
"""

from __future__ import annotations

import asyncio
import collections

from aiohttp import web

from tests.threaded_site import ThreadedSite

ROBOTS_RULES = "User-agent: *\nDisallow: /private/\n"
HUGE_ROBOTS = ROBOTS_RULES + "# padding to make robots.txt bigger than any sane cap\n" * 110_000  # ~5.6 MB


class RobotsSite(ThreadedSite):
    def __init__(self, robots: str, slow_s: float = 20.0) -> None:
        assert robots in ("503", "slow", "huge", "normal")
        self.robots, self.slow_s = robots, slow_s
        self.hits: collections.Counter[str] = collections.Counter()
        super().__init__()

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

    def _routes(self, app: web.Application) -> None:
        app.router.add_get("/robots.txt", self._robots)
        for path in ("/", "/public.html", "/private/1.html"):
            app.router.add_get(path, self._page)
