"""The demo site for compose's `demo` profile: `pipeline demo-site` behind a TCP relay.

`pipeline demo-site` binds loopback only (by design: it is a crawl target
with traps), so in its own container the workers could not reach it. This
serves the same site on 127.0.0.1 and relays ``--listen HOST:PORT`` (e.g.
0.0.0.0:8080 on the compose network) to it byte for byte. The site builds its
links from the Host header, so pages link to ``http://demo-site:8080/...``.

    python /app/deploy/demo_site.py --listen 0.0.0.0:8080 --pages 300
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from pipeline.demo.site import DemoSite


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def relay(host: str, port: int, site_port: int) -> None:
    async def connect(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            site_reader, site_writer = await asyncio.open_connection("127.0.0.1", site_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, site_writer), _pipe(site_reader, client_writer))

    server = await asyncio.start_server(connect, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"demo site relayed on {host}:{port}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="0.0.0.0:8080", help="HOST:PORT to accept connections on")
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    site = DemoSite(pages=args.pages, seed=args.seed)
    site.start()
    try:
        asyncio.run(relay(host, int(port), site.port))
    finally:
        site.stop()


if __name__ == "__main__":
    main()
