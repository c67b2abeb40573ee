"""Scenario 11 (hostile response bodies) and scenario 1 (a 2,000-item job).

Hostile bodies: a server that drips one byte every half second, one that
streams an endless chunked body, a gzip bomb, a body over the cap. Each must
end as a per-item `timeout` or `too_large` while the worker's memory stays
bounded and the other items of the job succeed.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from pipeline.demo.server import StaticServer
from pipeline.ledger.keys import job_key
from tests.faults.conftest import FaultCluster
from tests.helpers import image_bytes, make_images, wait_until

BOMB = gzip.compress(b"\0" * (64 * 2**20), compresslevel=9)  # ~64 KB on the wire, 64 MB inflated


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class BombServer:
    """/bomb.jpg: a gzip bomb declared as Content-Encoding: gzip; /ok.jpg: a real image."""

    def __init__(self) -> None:
        self.port = 0
        self._ready = threading.Event()
        self._loop: object = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import asyncio

        loop = asyncio.new_event_loop()
        self._loop = loop

        async def bomb(_: web.Request) -> web.Response:
            return web.Response(body=BOMB, headers={"Content-Encoding": "gzip", "Content-Type": "image/jpeg"})

        async def ok(_: web.Request) -> web.Response:
            return web.Response(body=image_bytes(), content_type="image/jpeg")

        app = web.Application()
        app.router.add_get("/bomb.jpg", bomb)
        app.router.add_get("/ok.jpg", ok)
        self._runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        loop.run_forever()

    def __enter__(self) -> BombServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        import asyncio

        loop = self._loop
        assert isinstance(loop, asyncio.AbstractEventLoop)
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        loop.close()


@pytest.fixture
def bomb_server() -> Iterator[BombServer]:
    with BombServer() as server:
        yield server


def test_dripping_endless_bombed_and_huge_bodies_fail_per_item_with_memory_bounded(
    cluster: FaultCluster, bomb_server: BombServer, tmp_path: Path
) -> None:
    worker = cluster.start("hostile@test", PIPELINE_FETCH_TIMEOUT_S="2", PIPELINE_MAX_BODY_BYTES="4000000")
    rss_before = _rss_kb(worker.pid)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "ok.jpg").write_bytes(image_bytes())
    with StaticServer(tmp_path / "site") as site:
        bomb = f"http://127.0.0.1:{bomb_server.port}"
        hostile = {
            site.url_for("drip"): "timeout",  # one byte every 0.5 s, for ever
            site.url_for("big/100000000"): "too_large",  # 100 MB, chunked, no Content-Length
            f"{bomb}/bomb.jpg": "too_large",  # 64 KB that inflate to 64 MB
        }
        good = [site.url_for("ok.jpg"), f"{bomb}/ok.jpg"]
        job_id, submitted = cluster.submit([*hostile, *good])
        verdict = cluster.check(job_id, submitted, deadline_s=60)
    reasons = {r.source: r.reason for r in cluster.ledger.results(job_id, failed_only=True)}
    assert reasons == hostile
    assert verdict.doc["images"]["ok"] == len(good)
    grown_mb = (_rss_kb(worker.pid) - rss_before) / 1024
    assert grown_mb < 60, f"the worker grew by {grown_mb:.0f} MB: a body was held past its cap"


def test_a_two_thousand_item_job_is_exact_memory_stable_and_leaves_only_expiring_keys(
    cluster: FaultCluster, tmp_path: Path
) -> None:
    worker = cluster.start("load@test")
    make_images(tmp_path / "warm", 50, size=(48, 48))
    warm_id, warm_items = cluster.submit([str(tmp_path / "warm")], output_dir=tmp_path / "warm-out")
    cluster.check(warm_id, warm_items, deadline_s=60, label="warm-up")
    rss_warm = _rss_kb(worker.pid)
    make_images(tmp_path / "load", 2000, size=(48, 48))
    started = time.monotonic()
    job_id, submitted = cluster.submit([str(tmp_path / "load")], batch_size=50)
    verdict = cluster.check(job_id, submitted, deadline_s=300, label="load-2000")
    assert verdict.doc["images"] == {"ok": 2000, "failed": 0, "total": 2000, "pending": 0}
    grown_mb = (_rss_kb(worker.pid) - rss_warm) / 1024
    assert grown_mb < 40, f"worker memory grew {grown_mb:.0f} MB over a 2,000-item job"
    client = cluster.ledger.client
    # The reduce step sets the retention.
    wait_until(lambda: client.hget(job_key(job_id), "finalized_at"), 30, "the job to be finalized")
    job_keys = list(client.scan_iter(match=f"pl:job:{job_id}*"))
    assert job_keys and all(client.ttl(key) > 0 for key in job_keys), "every job key must expire"
    assert not list(client.scan_iter(match=f"pl:blob:{job_id}:*"))
    assert time.monotonic() - started < 300
