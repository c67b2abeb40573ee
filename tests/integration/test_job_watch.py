"""JobWatch against a real redis-server: what Flower's Jobs pages and per-job series read, and what it costs.

A private Redis for the module, so its command statistics count only what
the watch does: a refresh must never read items (O(1) per job however big),
and a finished job is read again only when it changed. Jobs are made with
the ledger's own calls, as the producer and the workers make them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from pipeline.core.aggregate import ItemResult
from pipeline.kinds import job_document
from pipeline.ledger import Ledger
from pipeline.ledger.connection import connect
from pipeline.localredis import RedisServer, start_redis
from pipeline.monitor.jobs import JobWatch, failure_sample
from tests.helpers import expect_items

ITEM_READS = {"hscan", "hgetall", "hkeys", "hvals", "smembers", "sscan", "zrange", "keys", "scan"}


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    started = start_redis(tmp_path_factory.mktemp("watch-redis"), appendonly=False)
    yield started
    started.stop()


@pytest.fixture
def ledger(server: RedisServer) -> Iterator[Ledger]:
    ledger = Ledger(connect(server.url))
    ledger.client.flushall()
    yield ledger
    ledger.client.close()


def make_job(ledger: Ledger, job_id: str, items: int) -> list[str]:
    ids = [f"{job_id}-item-{i}" for i in range(items)]
    ledger.create_job(job_id, "images", {"ops": "thumbnail:64"}, f"/nonexistent/{job_id}")
    for start in range(0, items, 1000):
        expect_items(ledger, job_id, ids[start : start + 1000])
    ledger.seal(job_id)
    ledger.mark_running(job_id)
    return ids


def record(ledger: Ledger, job_id: str, ids: list[str], *, failed: dict[str, str] | None = None) -> None:
    failed = failed or {}
    results = [
        ItemResult.failure(i, f"https://example.test/{i}.jpg", failed[i], "no such image") if i in failed
        else ItemResult(id=i, ok=True, source=f"/in/{i}.jpg", output=f"{i}.webp", format="webp")
        for i in ids
    ]  # fmt: skip
    for start in range(0, len(results), 1000):
        ledger.record(job_id, results[start : start + 1000])


def commands(ledger: Ledger) -> dict[str, int]:
    stats: dict[str, Any] = ledger.client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def test_the_watch_keeps_the_most_recent_jobs_newest_first_and_no_more(ledger: Ledger) -> None:
    for index in range(4):
        make_job(ledger, f"job-{index}", 3)
    watch = JobWatch(ledger, limit=3)
    watch.refresh()
    assert [job["job_id"] for job in watch.jobs()] == ["job-3", "job-2", "job-1"]
    assert watch.document("job-0") is None
    assert {job["state"] for job in watch.jobs()} == {"running"}


def test_a_running_jobs_points_follow_its_recorded_items_until_it_ends(ledger: Ledger) -> None:
    clock = Clock()
    watch = JobWatch(ledger, clock=clock)
    ids = make_job(ledger, "job-a", 10)
    clock.now += 0.5
    watch.refresh()
    record(ledger, "job-a", ids[:4])
    clock.now += 1.0
    watch.refresh()
    record(ledger, "job-a", ids[4:], failed={ids[9]: "http_404"})
    clock.now += 1.0
    watch.refresh()
    clock.now += 1.0
    watch.refresh()  # ended: no new point
    points = watch.points("job-a")
    assert [(ok, failed) for _, ok, failed in points] == [(0, 0), (0, 0), (4, 0), (9, 1)]
    job = watch.jobs()[0]
    assert (job["state"], job["done"], job["total"], job["progress"]) == ("succeeded", 10, 10, 1.0)
    assert job["failures"] == {"http_404": 1}


def test_a_refresh_reads_no_items_and_a_finished_job_again_only_when_it_changed(ledger: Ledger) -> None:
    big = make_job(ledger, "job-big", 3000)
    record(ledger, "job-big", big)
    small = make_job(ledger, "job-small", 3)
    record(ledger, "job-small", small[:1])
    watch = JobWatch(ledger)
    ledger.client.config_resetstat()
    watch.refresh()
    first = commands(ledger)
    ledger.client.config_resetstat()
    watch.refresh()
    second = commands(ledger)
    # A job's document is its record and counters (HGETALLs of two hashes), never its items.
    assert first.get("hgetall", 0) == 2 * 2
    assert not set(first) & (ITEM_READS - {"hgetall"})
    # Then only the running job is read again: the finished one's fingerprint is unchanged.
    assert second.get("hgetall", 0) == 2
    assert not set(second) & (ITEM_READS - {"hgetall"})
    assert watch.document("job-big")["images"]["ok"] == 3000  # type: ignore[index]


def test_top_failures_come_from_a_bounded_sample_most_frequent_reason_first(ledger: Ledger) -> None:
    ids = make_job(ledger, "job-f", 3000)
    failed = {i: ("timeout" if n % 3 else "http_404") for n, i in enumerate(ids[::10])}
    record(ledger, "job-f", ids, failed=failed)
    by_reason = job_document(ledger, "job-f")["failures"]
    sample = failure_sample(ledger, "job-f", by_reason, budget=1000)
    assert not sample["complete"]
    assert 1000 <= sample["scanned"] < 3000
    reasons = [item["reason"] for item in sample["items"]]
    assert reasons == sorted(reasons, key=lambda r: -by_reason[r])  # timeout (200) before http_404 (100)
    assert reasons.count("timeout") <= 5 and reasons.count("http_404") <= 5
    assert all(item["item"].startswith("https://example.test/") for item in sample["items"])


def test_a_watched_jobs_failures_are_sampled_again_only_when_its_counts_changed(ledger: Ledger) -> None:
    ids = make_job(ledger, "job-g", 20)
    record(ledger, "job-g", ids, failed={ids[0]: "not_an_image"})
    watch = JobWatch(ledger)
    watch.refresh()
    doc = watch.document("job-g")
    assert doc is not None
    first = watch.failures("job-g", doc)
    ledger.client.config_resetstat()
    again = watch.failures("job-g", doc)
    assert again == first
    assert first["items"] == [{"item": "https://example.test/job-g-item-0.jpg", "id": ids[0],
                               "reason": "not_an_image", "detail": "no such image"}]  # fmt: skip
    assert "hscan" not in commands(ledger)


def test_a_job_whose_records_expired_drops_out_of_the_watch(ledger: Ledger) -> None:
    make_job(ledger, "job-x", 2)
    watch = JobWatch(ledger)
    watch.refresh()
    assert watch.document("job-x") is not None
    ledger.expire("job-x", 0)
    watch.refresh()
    assert watch.document("job-x") is None
    assert watch.points("job-x") == []
