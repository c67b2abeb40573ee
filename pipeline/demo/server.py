"""A loopback-only static HTTP server with misbehaving routes, for the demo and the fetch tests.

The fetcher must cope with real HTTP failure modes -- error statuses, flaky
503s, slow and never-ending bodies, missing Content-Length, lying
Content-Types -- and those are impossible to reproduce reliably against the
internet. This server produces each of them on demand, on 127.0.0.1 only, so
nothing it serves is ever reachable from another machine.

It runs on its own thread and event loop so synchronous callers (the CLI, pytest)
can use it without owning an asyncio loop.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ipaddress
import mimetypes
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote

from aiohttp import web

CHUNK = 64 * 1024
DRIP_INTERVAL = 0.5
STOP_TIMEOUT_S = 10.0
_NOT_IMAGE_BODY = b"<!doctype html><html><body><h1>Sorry, this is HTML</h1></body></html>\n"
# Don't trust /etc/mime.types for the formats the pipeline cares about; it varies by machine.
_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def loopback_host(host: str, owner: str = "StaticServer") -> str:
    """Refuse anything but a loopback address, so test fixtures never listen on the network."""
    if host == "localhost":
        # Resolve ourselves: "localhost" may bind IPv4 and IPv6 on *different* free ports.
        return "127.0.0.1"
    try:
        is_loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        is_loopback = False
    if not is_loopback:
        raise ValueError(f"{owner} only binds loopback addresses, not {host!r}")
    return host


class ThreadedServer:
    """Stop and ``with`` support for a server running on its own thread and event loop."""

    _thread: threading.Thread | None
    _loop: asyncio.AbstractEventLoop | None

    def start(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def stop(self) -> None:
        """Close the listeners and every open connection (a stuck slow client included), then join."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_TIMEOUT_S)  # a daemon thread: never let a wedged cleanup hang the caller
        self._thread = self._loop = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def content_type(path: Path) -> str:
    suffix = path.suffix.lower()
    return _TYPES.get(suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


class StaticServer(ThreadedServer):
    """Serve ``root`` plus the test routes on a background thread; see the module docstring."""

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = Path(root).resolve()
        self.host = loopback_host(host)
        self.port = port
        self._hits: collections.Counter[str] = collections.Counter()
        self._hits_lock = threading.Lock()
        self._flaky: collections.Counter[str] = collections.Counter()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Return once the socket accepts connections, or raise why it could not bind."""
        if self._thread is not None:
            raise RuntimeError("StaticServer already started")
        self._thread = threading.Thread(target=self._run, name=f"static-server:{self.root.name}", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url_for(self, relative_path: str) -> str:
        return f"{self.url}/{quote(relative_path.lstrip('/'), safe='/')}"

    @property
    def hits(self) -> collections.Counter[str]:
        """A snapshot of requests per path: a copy, so callers never race the server thread."""
        with self._hits_lock:
            return collections.Counter(self._hits)

    # -- the server thread -------------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # for any library code that still asks get_event_loop()
        # A short grace period: a /drip handler never finishes, and tests stop servers often.
        runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=0.1, handle_signals=False)
        try:
            loop.run_until_complete(self._listen(runner))
        except BaseException as exc:
            self._error = exc
        else:
            self._loop = loop
        self._ready.set()
        try:
            if self._error is None:
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
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self.port = int(runner.addresses[0][1])

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._count])
        app.router.add_get("/status/{code:\\d+}", self._status)
        app.router.add_get("/flaky/{n:\\d+}/{name:.+}", self._flaky_file)
        app.router.add_get("/slow/{seconds:[0-9.]+}/{name:.+}", self._slow)
        app.router.add_get("/drip", self._drip)
        app.router.add_get("/big/{nbytes:\\d+}", self._big)
        app.router.add_get("/not-image.jpg", self._not_image)
        app.router.add_get("/redirect", self._redirect)
        app.router.add_get("/{path:.*}", self._static)
        return app

    @web.middleware
    async def _count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        with self._hits_lock:
            self._hits[request.path] += 1
        return await handler(request)

    # -- handlers ------------------------------------------------------------------------------------

    def _file(self, relative: str) -> web.StreamResponse:
        path = (self.root / relative).resolve()
        # resolve() follows symlinks and "..", so this also refuses links that escape the root.
        if not path.is_relative_to(self.root) or not path.is_file():
            raise web.HTTPNotFound(text="not found\n")
        return web.FileResponse(path, headers={"Content-Type": content_type(path)})

    async def _static(self, request: web.Request) -> web.StreamResponse:
        return self._file(request.match_info["path"])

    async def _status(self, request: web.Request) -> web.StreamResponse:
        code = int(request.match_info["code"])
        if not 200 <= code <= 599:
            raise web.HTTPBadRequest(text="status must be 200-599\n")
        if code in (204, 304):
            return web.Response(status=code)
        return web.Response(status=code, text=f"status {code}\n")

    async def _flaky_file(self, request: web.Request) -> web.StreamResponse:
        self._flaky[request.path] += 1  # only ever touched on the loop thread
        if self._flaky[request.path] <= int(request.match_info["n"]):
            return web.Response(status=503, text="try again\n", headers={"Retry-After": "0"})
        return self._file(request.match_info["name"])

    async def _slow(self, request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(float(request.match_info["seconds"]))
        name = request.match_info["name"]
        return web.Response(text="slow but fine\n") if name == "-" else self._file(name)

    async def _drip(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        try:
            while True:
                await response.write(b".")
                await asyncio.sleep(DRIP_INTERVAL)
        except ConnectionError:  # the client gave up, which is the point
            return response

    async def _big(self, request: web.Request) -> web.StreamResponse:
        remaining = int(request.match_info["nbytes"])
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.enable_chunked_encoding()  # no Content-Length: size caps must count bytes
        await response.prepare(request)
        zeros = bytes(CHUNK)
        try:
            while remaining > 0:
                await response.write(zeros[: min(CHUNK, remaining)])
                remaining -= CHUNK
            await response.write_eof()
        except ConnectionError:
            pass
        return response

    async def _redirect(self, request: web.Request) -> web.StreamResponse:
        """An open redirect (``/redirect?to=URL``), as a hostile site would offer one: loopback only."""
        target = request.query.get("to")
        if not target:
            raise web.HTTPBadRequest(text="redirect needs ?to=URL\n")
        raise web.HTTPFound(target)

    async def _not_image(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=_NOT_IMAGE_BODY, content_type="image/jpeg")


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.demo.server", description=__doc__)
    parser.add_argument("root", type=Path, help="directory to serve")
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        parser.error(f"{args.root} is not a directory")
    try:
        server = StaticServer(args.root, host=args.host, port=args.port)
    except ValueError as exc:
        parser.error(str(exc))
    # Block the stop signals in every thread (the server thread inherits the mask) and wait
    # for them synchronously: a Python-level handler only runs once the *main* thread wakes,
    # and a process-directed signal the kernel hands to another thread never wakes it.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    with server:
        print(f"READY {server.url}", flush=True)
        signal.sigwait(stop_signals)
    return 0


if __name__ == "__main__":
    sys.exit(main())
