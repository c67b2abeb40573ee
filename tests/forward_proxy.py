"""A forward HTTP proxy for the proxy tests: every request it gets goes to one upstream server.

A client sends it absolute-form requests (``GET http://demo.test/page/1.html``);
it forwards each to ``upstream`` with the request's own Host header (so the
demo site writes its links for the name the client asked for), without
following redirects, and counts what it forwarded by host and path, and keeps the credentials it was given.
"""

from __future__ import annotations

import asyncio
import collections
import threading

import aiohttp
from aiohttp import web

from tests.threaded_site import ThreadedSite, end_other_tasks

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authorization", "proxy-connection", "te", "trailer",
                        "transfer-encoding", "upgrade", "content-length", "content-encoding"})  # fmt: skip


class ForwardProxy(ThreadedSite):
    def __init__(self, upstream: str, require: str | None = None) -> None:
        """``require``: a ``Proxy-Authorization`` value without which it answers 407."""
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.require = require
        self._lock = threading.Lock()
        self._hits: collections.Counter[str] = collections.Counter()
        self.credentials: set[str] = set()  # every Proxy-Authorization header seen
        self._session: aiohttp.ClientSession | None = None

    @property
    def hits(self) -> collections.Counter[str]:
        """``host/path`` -> requests forwarded."""
        with self._lock:
            return collections.Counter(self._hits)

    def _routes(self, app: web.Application) -> None:
        app.router.add_route("GET", "/{tail:.*}", self._forward)
        app.on_cleanup.append(self._close)

    async def _close(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self._hits[f"{request.host}{request.path}"] += 1
            if "Proxy-Authorization" in request.headers:
                self.credentials.add(request.headers["Proxy-Authorization"])
        if self.require is not None and request.headers.get("Proxy-Authorization") != self.require:
            return web.Response(status=407, headers={"Proxy-Authenticate": 'Basic realm="test"'})
        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=True)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        async with self._session.get(self.upstream + request.path_qs, headers=headers, allow_redirects=False) as got:
            body = await got.read()
            answer = {k: v for k, v in got.headers.items() if k.lower() not in HOP_BY_HOP}
            return web.Response(status=got.status, body=body, headers=answer)


class TunnelProxy(ThreadedSite):
    """An HTTPS proxy's CONNECT: every tunnel goes to one upstream port on loopback, whatever it asks for.

    Counts the tunnels by the authority asked (``secure.test:443``); bytes flow
    both ways untouched, so TLS is between the client and the upstream server.
    """

    def __init__(self, upstream_port: int, refuse: int | None = None) -> None:
        """``refuse``: answer every CONNECT with this status instead of opening the tunnel."""
        super().__init__()
        self.upstream_port, self.refuse = upstream_port, refuse
        self.tunnels: collections.Counter[str] = collections.Counter()
        self._server: asyncio.Server | None = None

    async def _start(self) -> int:
        self._server = await asyncio.start_server(self._tunnel, self.host, 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await end_other_tasks()  # tunnels still open

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, authority, _ = (await reader.readline()).decode("latin-1").split()
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # the request's headers
            if method != "CONNECT":
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            self.tunnels[authority] += 1
            if self.refuse is not None:
                writer.write(f"HTTP/1.1 {self.refuse} Refused\r\nContent-Length: 0\r\n\r\n".encode())
                return
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, ValueError):
            pass
        finally:
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    finally:
        writer.close()
