"""A worker killed with SIGKILL mid-job: another worker finishes it, counts exact.

The killed worker's unacknowledged batches come back after the Redis
visibility timeout (kept short here); items it had already recorded are not
counted again because the ledger keeps the first result per item.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cluster import WorkerProcess, start_worker, wait_ready
from pipeline.config import Settings
from pipeline.demo.server import StaticServer
from pipeline.kinds.images import ImagesSpec
from pipeline.ledger import Ledger
from pipeline.ledger.connection import connect
from pipeline.localredis import RedisServer, start_redis
from pipeline.producer import Producer
from tests.helpers import make_images, wait_for_job, wait_until

# Short enough that re-delivery happens within the test; still > 1.2 x deadline.
FAST_REDELIVERY = {
    "PIPELINE_VISIBILITY_TIMEOUT_S": "8",
    "PIPELINE_TASK_DEADLINE_S": "6",
    "PIPELINE_FETCH_TIMEOUT_S": "2",
    "PIPELINE_FETCH_RETRIES": "0",
    "PIPELINE_PROCESSES": "1",
}


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path / "redis", appendonly=False)
    yield server
    server.stop()


@pytest.fixture
def spawn(own_redis: RedisServer, tmp_path: Path) -> Iterator[object]:
    started: list[WorkerProcess] = []

    def spawn_worker(name: str) -> WorkerProcess:
        worker = start_worker(own_redis.url, name, env=FAST_REDELIVERY, log_path=tmp_path / f"{name}.log")
        started.append(worker)
        client = connect(own_redis.url)
        try:
            wait_ready(Ledger(client), [worker])
        finally:
            client.close()
        return worker

    yield spawn_worker
    for worker in started:
        worker.terminate()
    for worker in started:
        if not worker.wait(20):
            worker.kill()


def test_a_worker_killed_mid_job_is_replaced_and_the_counts_stay_exact(
    own_redis: RedisServer, spawn: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in FAST_REDELIVERY.items():
        monkeypatch.setenv(key, value)
    make_images(tmp_path / "site", 40, size=(320, 240))
    first = spawn("doomed@test")  # type: ignore[operator]
    ledger = Ledger(connect(own_redis.url))
    producer = Producer(Settings.load(redis_url=own_redis.url), own_redis.url)
    with StaticServer(tmp_path / "site") as server:
        urls = [server.url_for(f"slow/0.3/img-{i:03d}.jpg") for i in range(40)]
        job_id = producer.submit(ImagesSpec(sources=urls, output_dir=tmp_path / "out", batch_size=2))
        wait_until(lambda: ledger.totals(job_id).done >= 4, 30, "the doomed worker to be mid-job", poll=0.02)
        os.kill(first.pid, 9)
        first.process.wait()
        assert ledger.totals(job_id).done < 40, "the job finished before the kill; nothing was tested"
        spawn("rescuer@test")  # type: ignore[operator]
        doc = wait_for_job(ledger, job_id, timeout=90)
    assert doc["state"] == "succeeded"
    assert doc["images"] == {"ok": 40, "failed": 0, "total": 40, "pending": 0}
    assert doc["ledger"]["unexpected"] == 0
    assert len({r.id for r in ledger.results(job_id)}) == 40
    assert len(list((tmp_path / "out").glob("*.jpg"))) == 40
    producer.close()
    ledger.client.close()


def test_a_killed_workers_pool_processes_die_with_it(spawn: object, own_redis: RedisServer) -> None:
    """SIGKILL gives the worker no chance to stop its pool: the kernel's parent-death signal must."""

    doomed = spawn("pool-owner@test")  # type: ignore[operator]
    client = connect(own_redis.url)
    try:
        [record] = [w for w in Ledger(client).workers() if w["pid"] == doomed.pid]
    finally:
        client.close()
    pool = [slot["pid"] for slot in record["slots"] if slot.get("pid")]
    forkserver = {int(line.split()[1]) for pid in pool for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if line.startswith("PPid:")}  # fmt: skip
    assert pool and forkserver
    os.kill(doomed.pid, 9)
    doomed.process.wait()

    def alive() -> list[int]:
        return [p for p in [*pool, *forkserver] if Path(f"/proc/{p}").exists()]

    wait_until(lambda: not alive(), 10, lambda: f"the pool and forkserver to exit; orphans: {alive()}")
