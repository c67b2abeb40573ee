"""A small aiohttp site on its own thread and event loop: the base of the tests' fake websites.

Each test site (links, slow pages, robots.txt, crawl manners) only says which
routes it serves; starting on a free loopback port, ``url`` and a clean stop
are here, once. A server that is no aiohttp app (the tests' tunnelling proxy)
overrides ``_start`` and ``_stop`` instead.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from types import TracebackType
from typing import Self

from aiohttp import web


class ThreadedSite:
    """``with Site(...) as site:`` serves ``site.url`` until the block ends."""

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self.host, self.tls = host, tls
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def _routes(self, app: web.Application) -> None:
        """Add the site's routes to ``app``."""
        raise NotImplementedError

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self.port = self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> int:
        """Start serving on a free port of ``host`` and return it: an aiohttp app of ``_routes`` unless overridden."""
        app = web.Application()
        self._routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0, ssl_context=self.tls)
        await site.start()
        return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def _stop(self) -> None:
        """Stop what ``_start`` started, on the site's own loop."""
        if self._runner is not None:
            await self._runner.cleanup()
        await end_other_tasks()

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"{type(self).__name__} did not start")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


async def end_other_tasks() -> None:
    """Cancel every other task of this loop and wait for them, then let closed transports finish closing.

    A transport closes on a later turn of its loop (``connection_lost`` is called soon, not now): a
    loop closed first leaves it open, and the garbage collector's ResourceWarning about it then lands
    in whatever test is running at that moment, as an unraisable exception (warnings are errors here).
    """
    tasks = asyncio.all_tasks() - {asyncio.current_task()}
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(0.05)
