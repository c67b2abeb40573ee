"""A TCP proxy the test controls: "Redis unreachable for 10 s" on demand.

Runs its own asyncio loop on a thread. ``cut()`` drops every open connection
and refuses new ones (accepted, then closed at once: a client sees a reset,
never a silent hang); ``restore()`` forwards again.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from tests.threaded_site import end_other_tasks


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.connections = 0
        self._up = True
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._server: Any = None

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._accept, "127.0.0.1", 0), self._loop
        ).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await end_other_tasks()  # connections being piped, or still opening upstream
            for writer in list(self._writers):
                writer.transport.abort()
            await asyncio.sleep(0.05)  # their transports finish closing on the next turns

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def url_for(self, redis_url: str) -> str:
        """The same Redis URL (password kept) pointed at the proxy."""
        head, _, _ = redis_url.rpartition(f":{self.target[1]}")
        return f"{head}:{self.port}/0"

    def cut(self) -> None:
        def drop() -> None:
            self._up = False
            for writer in list(self._writers):
                writer.transport.abort()

        self._loop.call_soon_threadsafe(drop)

    def restore(self) -> None:
        self._loop.call_soon_threadsafe(setattr, self, "_up", True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._up:
            writer.transport.abort()
            return
        self._writers.add(writer)  # from now on: closing the proxy aborts it
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            self._writers.discard(writer)
            return
        self.connections += 1
        self._writers.add(up_writer)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))
