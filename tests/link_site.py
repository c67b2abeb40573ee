"""A loopback site serving a fixed set of pages, counting requests by the path the server decodes.

``pages`` maps a decoded path (``/café``) to (content type, body); any other path is a 404.
``delay_s(path)`` (optional) is how long that path takes to answer.
``hits`` counts requests per decoded path (what a server sees as "the same resource"),
``raw_hits`` per path as sent on the wire.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Mapping

from aiohttp import web

from tests.threaded_site import ThreadedSite


class LinkSite(ThreadedSite):
    def __init__(
        self,
        pages: Mapping[str, tuple[str, bytes]],
        host: str = "127.0.0.1",
        delay_s: Callable[[str], float] | None = None,
    ) -> None:
        self.pages, self.host, self.delay_s = dict(pages), host, delay_s
        self.hits: collections.Counter[str] = collections.Counter()
        self.raw_hits: collections.Counter[str] = collections.Counter()
        super().__init__(host)

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

    def _routes(self, app: web.Application) -> None:
        app.router.add_get("/{tail:.*}", self._any)
