"""A Redis with a small ``maxmemory`` (``noeviction``): jobs end exact and workers stay alive.

Issue 19, point 4: 300 images of 3.7 MB through a 64 MiB Redis filled it with
fetched bytes; Celery's own ack was refused (OOM) and the worker exited, again
and again, with the job stuck. Now fetched bytes stay under a cluster-wide
budget (half of maxmemory by default), are deleted as soon as their item is
recorded, and a worker that meets a full Redis anyway waits and says why.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from kombu import Connection, Exchange, Queue
from kombu.transport import redis as kombu_redis
from PIL import Image

from pipeline.demo.server import StaticServer
from pipeline.ledger.connection import connect
from pipeline.ledger.keys import BLOB_PREFIX, BLOB_TOTAL
from tasks import redis_full
from tasks.redis_full import PatientQoS
from tests.faults.cli import run_cli
from tests.faults.conftest import FaultCluster
from tests.helpers import fill_redis, unfill_redis, wait_until

MIB = 2**20
MAXMEMORY = 24 * MIB


def noise_jpegs(folder: Path, count: int, side: int) -> int:
    """Photos that do not compress (random pixels, quality 95); returns their bytes in all."""
    folder.mkdir(parents=True, exist_ok=True)
    pixels = os.urandom(side * side * 3)  # one noise field, shifted per image: distinct bytes, same size
    total = 0
    for index in range(count):
        out = io.BytesIO()
        shift = index * 3 % len(pixels)
        Image.frombytes("RGB", (side, side), pixels[shift:] + pixels[:shift]).save(out, "JPEG", quality=95)
        (folder / f"big-{index:03d}.jpg").write_bytes(out.getvalue())
        total += len(out.getvalue())
    return total


@pytest.fixture
def small(cluster: FaultCluster) -> FaultCluster:
    """A 24 MiB Redis, and workers that pass fetched bytes through it (PIPELINE_HANDOFF=redis).

    By default a worker that also transforms keeps what it fetched in its own
    pool and Redis never sees the bytes; the budget is for the other way (a
    fetch-only worker, or bytes spilled for another worker), so that is the one
    these tests push against a full Redis.
    """
    connect(cluster.url).config_set("maxmemory", str(MAXMEMORY))  # start_redis already says noeviction
    cluster.env["PIPELINE_HANDOFF"] = "redis"
    return cluster


@pytest.fixture
def big_site(tmp_path: Path) -> Iterator[tuple[StaticServer, int]]:
    total = noise_jpegs(tmp_path / "site", 40, 1100)
    with StaticServer(tmp_path / "site") as server:
        yield server, total


def assert_alive(cluster: FaultCluster) -> None:
    for worker in cluster.workers:
        assert worker.alive(), f"worker {worker.name} exited{worker.log_tail()}"
        assert "Unrecoverable error" not in worker.log_path.read_text()  # type: ignore[union-attr]


def test_an_image_job_bigger_than_redis_ends_exact_with_its_workers_alive(
    small: FaultCluster, big_site: tuple[StaticServer, int], tmp_path: Path
) -> None:
    site, total = big_site
    assert total > 2 * MAXMEMORY, "the images must not fit in Redis at once, or nothing is tested"
    small.start("mem-a@test", PIPELINE_CONCURRENCY="4")
    small.start("mem-b@test", PIPELINE_CONCURRENCY="4")
    job_id, submitted = small.submit([site.url_for(f"big-{i:03d}.jpg") for i in range(40)], batch_size=4)
    verdict = small.check(job_id, submitted, deadline_s=240, label="small-redis")
    assert verdict.doc["images"]["ok"] == 40
    assert_alive(small)
    client = connect(small.url)
    assert not list(client.scan_iter(match=BLOB_PREFIX + "*")), "fetched bytes left in Redis after the job"
    assert int(client.get(BLOB_TOTAL) or 0) == 0
    assert len(list((tmp_path / "out").glob("*.jpg"))) == 40


def test_a_worker_meeting_a_full_redis_waits_says_why_and_the_job_ends_exact(
    small: FaultCluster, tmp_path: Path
) -> None:
    (tmp_path / "site").mkdir()
    noise_jpegs(tmp_path / "site", 24, 300)
    worker = small.start("full@test")
    client = connect(small.url)
    with StaticServer(tmp_path / "site") as site:
        urls = [site.url_for(f"slow/1.0/big-{i:03d}.jpg") for i in range(24)]
        job_id, submitted = small.submit(urls, batch_size=2)
        wait_until(lambda: small.done(job_id) >= 1, 60, "the job to be under way")
        fill_redis(client)  # someone else's data fills Redis mid-job
        assert small.done(job_id) < 20, "the job almost finished before Redis filled up; nothing was tested"
        log = worker.log_path
        assert log is not None
        wait_until(lambda: "Redis is full" in log.read_text(), 60, "the worker to say Redis is full")
        assert worker.alive()
        unfill_redis(client)
        small.check(job_id, submitted, deadline_s=120, label="full-redis")
    text = log.read_text()
    assert "what_to_do=raise Redis maxmemory" in text and "redis_memory=used" in text
    assert_alive(small)


def test_the_worker_acks_on_a_full_redis_where_kombus_own_ack_is_refused(small: FaultCluster) -> None:
    """kombu acks in a MULTI, which Redis refuses whole when full; ``PatientQoS`` acks without one."""
    client = connect(small.url)
    queue = Queue("oom-test", Exchange("oom-test", type="direct"), routing_key="oom-test")
    with Connection(small.url) as conn:
        conn.Producer().publish({"n": 1}, exchange=queue.exchange, routing_key="oom-test", declare=[queue])
        conn.Producer().publish({"n": 2}, exchange=queue.exchange, routing_key="oom-test", declare=[queue])
        stock, patient = conn.channel(), conn.channel()
        stock._qos, patient._qos = kombu_redis.QoS(stock), PatientQoS(patient)
        first, second = stock.basic_get("oom-test"), patient.basic_get("oom-test")
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory", str(used // 2))  # well under what is used: over the limit for sure
        with pytest.raises(redis.OutOfMemoryError):
            first.ack()
        second.ack()  # no error: ZREM and HDEL outside MULTI free memory, Redis allows them
        assert client.hlen("unacked") == 1  # the stock ack's message is still waiting to be restored
        client.config_set("maxmemory", str(MAXMEMORY))  # closing the channels restores that one (a write)


def test_workers_and_top_show_redis_memory_against_its_limit_and_warn_when_nearly_full(small: FaultCluster) -> None:
    small.start("shown@test")
    client = connect(small.url)
    calm = run_cli("workers", redis_url=small.url)
    assert calm.returncode == 0, calm.stderr
    assert "Redis memory: used" in calm.stdout and "of 24.0 MiB" in calm.stdout and "budget" in calm.stdout
    assert "nearly full" not in calm.stderr
    fill_redis(client)
    full = run_cli("workers", redis_url=small.url)
    assert full.returncode == 0, full.stderr
    assert "NEARLY FULL" in full.stdout and "Redis is nearly full" in full.stderr
    top = run_cli("top", "--once", "--json", redis_url=small.url)
    assert top.returncode == 0, top.stderr
    report = json.loads(top.stdout)["redis"]
    assert report["maxmemory"] == MAXMEMORY and report["near_full"] and report["blob_budget"] == MAXMEMORY // 2
    unfill_redis(client)


def test_a_worker_killed_holding_room_in_the_budget_does_not_stall_the_job(
    small: FaultCluster, big_site: tuple[StaticServer, int], tmp_path: Path
) -> None:
    """Its items come back (takeover) and, fetched again, take over their own room; the rest is swept at the end."""
    site, _ = big_site
    doomed = small.start("doomed@test", PIPELINE_CONCURRENCY="4")
    small.start("survivor@test", PIPELINE_CONCURRENCY="4")
    job_id, submitted = small.submit([site.url_for(f"slow/0.3/big-{i:03d}.jpg") for i in range(40)], batch_size=4)
    client = connect(small.url)
    wait_until(lambda: int(client.get(BLOB_TOTAL) or 0) > 0 and small.done(job_id) >= 4, 60,
               "the job to be under way with bytes in the budget")  # fmt: skip
    small.signal(doomed, signal.SIGKILL)
    verdict = small.check(job_id, submitted, deadline_s=240, label="killed-holding-room")
    assert verdict.doc["images"]["ok"] == 40
    assert [w.alive() for w in small.workers] == [False, True]
    wait_until(lambda: not list(client.scan_iter(match=BLOB_PREFIX + "*")), 30, "the job's blobs to be swept")


def test_a_message_delivered_while_redis_is_full_waits_to_be_recorded_instead_of_killing_the_consumer(
    small: FaultCluster, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kombu records a delivery (ZADD + HSET in a MULTI) after BRPOP took the message off its queue:
    refused, the error escapes the consumer's loop and the message is lost. ``PatientQoS`` waits."""
    monkeypatch.setattr(redis_full, "PAUSE_S", (0.01, 0.05))
    client = connect(small.url)
    queue = Queue("oom-deliver", Exchange("oom-deliver", type="direct"), routing_key="oom-deliver")
    with Connection(small.url) as conn:
        conn.Producer().publish({"n": 1}, exchange=queue.exchange, routing_key="oom-deliver", declare=[queue])
        channel = conn.channel()
        channel._qos = PatientQoS(channel)
        client.config_set("maxmemory", str(int(client.info("memory")["used_memory"]) // 2))
        got: list[object] = []
        with caplog.at_level(logging.WARNING, logger="tasks.redis_full"):
            reader = threading.Thread(target=lambda: got.append(channel.basic_get("oom-deliver")))
            reader.start()
            wait_until(lambda: any("recording a delivered message" in r.getMessage() for r in caplog.records), 30,
                       "the consumer to say it waits for room")  # fmt: skip
            assert reader.is_alive() and client.hlen("unacked") == 0
            client.config_set("maxmemory", str(MAXMEMORY))
            reader.join(30)
        assert got and got[0] is not None and client.hlen("unacked") == 1
