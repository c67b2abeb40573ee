"""A deterministic generated website on loopback: the crawl demo, the crawl tests and the benchmarks all use it.

A crawler is only testable against a site whose every reachable URL is known in
advance, and the internet is neither fixed nor polite to hammer. This site is a
pure function of ``(pages, seed)`` and of the origin the client addressed (taken
from the Host header, so absolute links stay on whichever loopback name and port
was used): two instances serve the same bytes for the same path and Host.

It is deliberately awkward. Pages link in every spelling that must normalise to
one URL (absolute, ``HTTP://`` upper case, explicit port, root-relative, ``../``,
``./``, bare sibling names, ``#fragments``, padded with whitespace), share
images, use ``srcset`` with x and w descriptors, and lead to broken links (404,
500), a redirect chain, a redirect loop, a redirect off the host, a slow page, a
robots.txt-disallowed section, an infinite calendar trap, a PDF, a ``<base
href>`` page, and links that must never be followed (``example.invalid``,
``mailto:``, ``javascript:``, a second loopback host). Error pages link to
``/lost-and-found.html``, which nothing else links to: a crawler that finds it
has parsed an error body.

Route map (n < pages, k < IMAGE_COUNT, p < PRIVATE_PAGES):
``/``, ``/page/{n}.html``, ``/private/{p}.html``, ``/img/{k}.{EXTS[k % 4]}``,
``/go/1`` -302-> ``/go/2`` -301-> ``/go/3`` -302-> ``/page/7.html``, ``/loop/a`` <-> ``/loop/b``,
``/go/away`` -302-> ``http://127.0.0.2:PORT/page/1.html``, ``/hops/{h}`` (h+1 redirects, unlinked),
``/slow.html``, ``/error.html`` (500), ``/calendar/{year}/{mm}/``, ``/files/report.pdf``,
``/docs/index.html``, ``/robots.txt``, the shop (``pipeline.demo.shop``, linked from nowhere else:
``/shop/`` = ``/shop/list/0.html``, ``/shop/list/{k}.html``, ``/shop/item/{i}.html``), anything else 404.

``shape="docs"`` serves a documentation site with its screenshots instead
(``pipeline.demo.docs``: ~700 pages of ~20 KB, ~2,000 small images).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import threading
from collections.abc import Awaitable, Callable

from aiohttp import web

from pipeline.demo import docs, shop
from pipeline.demo.server import ThreadedServer, loopback_host
from pipeline.demo.sitegen import (
    CONTENT_TYPES,
    FIXED_ROUTES,
    HOST_RE,
    IMAGE_COUNT,
    MIN_PAGES,
    NOT_FOUND_HTML,
    PRIVATE_PAGES,
    REDIRECTS,
    SLOW_HTML,
    Origin,
    calendar_html,
    image_bytes,
    image_path,
    index_html,
    page_html,
    private_html,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SHAPES = ("demo", "docs")


class _Missing(Exception):
    """A route matched but names nothing (/page/007.html, /img/0.png): the middleware answers 404."""


class DemoSite(ThreadedServer):
    """Serve the site on a background thread and event loop (like StaticServer), counting what arrives.

    ``second_host`` (e.g. INTERNAL_HOST) also binds that loopback address on the same port, for scope
    and SSRF tests; it is off by default so nothing listens there unless a test asks. ``chrome``
    serves pages as real sites write them (~20 KB: inline CSS/JS, a menu and footer of site-wide links).
    ``shape="docs"`` serves ``pipeline.demo.docs`` instead (``pages`` of them, ``images`` distinct images);
    ``image_source`` may hand it the images already made (k -> bytes), as the benchmark does from disk.
    """

    def __init__(
        self,
        pages: int = 300,
        seed: int = 11,
        host: str = "127.0.0.1",
        port: int = 0,
        slow_s: float = 1.5,
        second_host: str | None = None,
        chrome: bool = False,
        products: int | None = None,
        shape: str = "demo",
        images: int = docs.IMAGES,
        image_source: Callable[[int], bytes] | None = None,
    ) -> None:
        if pages < MIN_PAGES:
            raise ValueError(f"DemoSite needs at least {MIN_PAGES} pages, not {pages}")
        if shape not in SHAPES:
            raise ValueError(f"DemoSite shape must be one of {', '.join(SHAPES)}, not {shape!r}")
        self.pages, self.seed, self.slow_s, self.chrome = pages, seed, slow_s, chrome
        self.products = pages if products is None else products  # the shop's size
        self.shape, self.images = shape, images
        self._docs_image = image_source or functools.partial(docs.image_bytes, seed)
        self.host = loopback_host(host, "DemoSite")
        self.second_host = loopback_host(second_host, "DemoSite") if second_host is not None else None
        self.port = port
        self._lock = threading.Lock()
        self._hits: collections.Counter[str] = collections.Counter()
        self._in_flight = 0
        self._max_concurrency = 0
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Return once the socket(s) accept connections, or raise why binding failed."""
        if self._thread is not None:
            raise RuntimeError("DemoSite already started")
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="demo-site", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            error, self._error = self._error, None
            self._thread.join()
            self._thread = None
            raise error

    @property
    def url(self) -> str:
        """The base URL without a trailing slash, e.g. http://127.0.0.1:PORT."""
        return self._bound.base

    @property
    def _bound(self) -> Origin:
        return Origin(f"[{self.host}]" if ":" in self.host else self.host, self.port)

    @property
    def second_url(self) -> str | None:
        return None if self.second_host is None else Origin(self.second_host, self.port).base

    # -- counters ------------------------------------------------------------------------------------

    @property
    def hits(self) -> collections.Counter[str]:
        """Requests per path including the query string: a snapshot copy, so callers never race the loop."""
        with self._lock:
            return collections.Counter(self._hits)

    @property
    def max_concurrency(self) -> int:
        """The most requests ever in flight at once (all paths, both hosts): what per-host limits must bound."""
        with self._lock:
            return self._max_concurrency

    def reset_counters(self) -> None:
        with self._lock:
            self._hits.clear()
            self._max_concurrency = self._in_flight

    # -- the server thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=0.1, handle_signals=False)
        try:
            loop.run_until_complete(self._listen(runner))
        except BaseException as exc:
            self._error = exc
        else:
            self._loop = loop
        listening = self._error is None  # read before start() may consume the error
        self._ready.set()
        try:
            if listening:
                loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            _cancel_leftovers(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            asyncio.set_event_loop(None)
            loop.close()

    async def _listen(self, runner: web.AppRunner) -> None:
        await runner.setup()
        await web.TCPSite(runner, self.host, self.port).start()
        self.port = int(runner.addresses[0][1])
        if self.second_host is not None:  # the same port, so links can name it from the Host header alone
            await web.TCPSite(runner, self.second_host, self.port).start()

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._count])
        if self.shape == "docs":
            app.router.add_get("/", self._docs_index)
            app.router.add_get("/docs/{n:\\d{1,9}}.html", self._docs_page)
            app.router.add_get("/static/shots/{n:\\d{1,9}}.{ext:[a-z]+}", self._docs_shot)
            app.router.add_get("/{tail:.*}", self._not_found)
            return app
        app.router.add_get("/page/{n:\\d{1,9}}.html", self._page)
        app.router.add_get("/private/{n:\\d{1,9}}.html", self._private)
        app.router.add_get("/img/{n:\\d{1,9}}.{ext:[a-z]+}", self._image)
        app.router.add_get("/calendar/{n:\\d{1,9}}/{month:0[1-9]|1[0-2]}/", self._calendar)
        app.router.add_get("/hops/{n:\\d{1,9}}", self._hops)
        app.router.add_get("/slow.html", self._slow)
        app.router.add_get("/shop/", self._shop_list)
        app.router.add_get("/shop/list/{n:\\d{1,9}}.html", self._shop_list)
        app.router.add_get("/shop/item/{n:\\d{1,9}}.html", self._shop_item)
        app.router.add_get("/{tail:.*}", self._fixed)
        return app

    @web.middleware
    async def _count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        with self._lock:
            self._hits[request.path_qs] += 1
            self._in_flight += 1
            self._max_concurrency = max(self._max_concurrency, self._in_flight)
        try:
            return await handler(request)
        except _Missing:
            return self._html(NOT_FOUND_HTML, 404)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _origin(self, request: web.Request) -> Origin:
        """The origin from the Host header when it is a plain host[:port], else the bound address."""
        match = HOST_RE.match(request.headers.get("Host", ""))
        if match is None:
            return self._bound
        return Origin(match[1].lower(), int(match[2]) if match[2] else None)

    # -- handlers --------------------------------------------------------------------------------------

    @staticmethod
    def _number(request: web.Request, limit: int | None = None) -> int:
        """The route's number, refusing other spellings (/page/007.html) so each page has one URL."""
        text = request.match_info["n"]
        if text != str(int(text)) or (limit is not None and int(text) >= limit):
            raise _Missing
        return int(text)

    @staticmethod
    def _html(body: bytes, status: int = 200) -> web.Response:
        return web.Response(body=body, status=status, content_type="text/html", charset="utf-8")

    async def _page(self, request: web.Request) -> web.StreamResponse:
        n = self._number(request, self.pages)
        return self._html(page_html(self.pages, self.seed, self._origin(request), n, self.chrome))

    async def _docs_index(self, request: web.Request) -> web.StreamResponse:
        return self._html(docs.index_html(self.pages, self.seed))

    async def _docs_page(self, request: web.Request) -> web.StreamResponse:
        return self._html(docs.page_html(self.pages, self.images, self.seed, self._number(request, self.pages)))

    async def _docs_shot(self, request: web.Request) -> web.StreamResponse:
        k = self._number(request, self.images)
        if docs.image_path(k) != request.path:
            raise _Missing
        return web.Response(body=self._docs_image(k), content_type=docs.content_type(k))

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        raise _Missing

    async def _private(self, request: web.Request) -> web.StreamResponse:
        return self._html(private_html(self._number(request, PRIVATE_PAGES)))

    async def _image(self, request: web.Request) -> web.StreamResponse:
        k = self._number(request, IMAGE_COUNT)
        if image_path(k) != request.path:  # each image answers under its own extension only
            raise _Missing
        return web.Response(body=image_bytes(self.seed, k), content_type=CONTENT_TYPES[request.match_info["ext"]])

    async def _calendar(self, request: web.Request) -> web.StreamResponse:
        return self._html(calendar_html(self._number(request), int(request.match_info["month"])))

    async def _hops(self, request: web.Request) -> web.StreamResponse:
        """/hops/{h}: h+1 redirects before /page/0.html, for redirect-limit tests (linked from nowhere)."""
        h = self._number(request)
        return web.Response(status=302, headers={"Location": f"/hops/{h - 1}" if h > 0 else "/page/0.html"})

    async def _shop_list(self, request: web.Request) -> web.StreamResponse:
        k = self._number(request, shop.list_pages(self.products)) if "n" in request.match_info else 0
        return self._html(shop.list_html(self.products, self.seed, k))

    async def _shop_item(self, request: web.Request) -> web.StreamResponse:
        return self._html(shop.item_html(self.products, self.seed, self._number(request, self.products)))

    async def _slow(self, request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(self.slow_s)
        return self._html(SLOW_HTML)

    async def _fixed(self, request: web.Request) -> web.StreamResponse:
        """The index, the redirects and the fixed documents; anything else is a 404 (with a bait link)."""
        origin = self._origin(request)
        if request.path == "/":
            return self._html(index_html(self.pages, origin))
        if request.path in REDIRECTS:
            status, location = REDIRECTS[request.path]
            return web.Response(
                status=status, headers={"Location": location.format(base=origin.base, internal=origin.internal)}
            )
        status, content_type, body = FIXED_ROUTES.get(request.path, (404, "text/html; charset=utf-8", NOT_FOUND_HTML))
        return web.Response(status=status, body=body, headers={"Content-Type": content_type})


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
