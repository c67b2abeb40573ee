"""What a fetched body reserves in the worker's body budget, over a real loopback HTTP server."""

from __future__ import annotations

import asyncio
import gzip
import os

import aiohttp
from aiohttp import web

from pipeline.core.bodies import BodyBudget, Hold, current_hold
from pipeline.core.fetch import fetch_url
from pipeline.core.limits import FetchLimits

MiB = 2**20
CAP = 32 * MiB


def _inflating(size: int) -> bytes:
    """``size`` bytes that gzip to about a twelfth: 1 KiB of noise in every 16 KiB."""
    block = 16 * 1024
    return b"".join(os.urandom(1024) + bytes(block - 1024) for _ in range(size // block))


async def _fetch_with_hold(body: bytes, headers: dict[str, str]) -> tuple[Hold, int]:
    async def page(_: web.Request) -> web.Response:
        return web.Response(body=body, headers=headers, content_type="text/html")

    app = web.Application()
    app.router.add_get("/page", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    hold = BodyBudget(2 * CAP, CAP).hold()
    token = current_hold.set(hold)
    try:
        async with aiohttp.ClientSession() as session:
            fetched = await fetch_url(session, f"http://127.0.0.1:{port}/page", FetchLimits(max_body_bytes=CAP))
    finally:
        current_hold.reset(token)
        await runner.cleanup()
    return hold, len(fetched.data)


def test_a_compressed_body_reserves_the_cap_not_its_compressed_length() -> None:
    inflated = _inflating(20 * MiB)
    compressed = gzip.compress(inflated)
    assert MiB < len(compressed) < 4 * MiB  # its Content-Length says a few MB
    hold, length = asyncio.run(_fetch_with_hold(compressed, {"Content-Encoding": "gzip"}))
    assert length == len(inflated)
    assert hold.nbytes == CAP


def test_an_uncompressed_body_reserves_its_declared_length() -> None:
    body = os.urandom(3 * MiB)
    hold, length = asyncio.run(_fetch_with_hold(body, {}))
    assert length == len(body) and hold.nbytes == len(body)


def test_a_small_compressed_page_reserves_nothing() -> None:
    body = b"<html><body>" + b"word " * 100_000 + b"</body></html>"  # 500 KB, compressed to a few KB
    hold, length = asyncio.run(_fetch_with_hold(gzip.compress(body), {"Content-Encoding": "gzip"}))
    assert length == len(body) and not hold.taken
