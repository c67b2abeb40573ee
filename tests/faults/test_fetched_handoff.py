"""Fetched images go straight to the fetching worker's own pool, and still count exactly once.

A worker that serves the transform queue transforms what it fetched without
the bytes travelling to Redis and back (``workers.image_stages``); one that
does not spills them to the blob store for another. Bytes held only in a
worker's memory die with it: its items are then taken over and fetched again.
Blob reads are the only MGETs the pipeline sends, so Redis's own command
counters tell which way the bytes went.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.demo.server import StaticServer
from pipeline.ledger.keys import LIVE_PREFIX
from tasks.names import FETCH_QUEUE, REDUCE_QUEUE, TRANSFORM_QUEUE
from tests.faults.conftest import FaultCluster
from tests.faults.invariants import expected_ids
from tests.faults.test_takeover import TAKEOVER_BOUND_S, held_by
from tests.helpers import make_images, wait_until
from workers.processes import HANG


@pytest.fixture
def site(tmp_path: Path) -> Iterator[StaticServer]:
    make_images(tmp_path / "site", 12, size=(96, 64))
    with StaticServer(tmp_path / "site") as server:
        yield server


def blob_reads(cluster: FaultCluster) -> int:
    return int(cluster.ledger.client.info("commandstats").get("cmdstat_mget", {}).get("calls", 0))


def blobs_of(cluster: FaultCluster, job_id: str) -> list[str]:
    return list(cluster.ledger.client.scan_iter(match=f"pl:blob:{job_id}:*"))


def test_a_worker_that_transforms_keeps_what_it_fetched_out_of_redis(cluster: FaultCluster, site: StaticServer) -> None:
    cluster.start("both@test")
    urls = [site.url_for(f"img-{i:03d}.jpg") for i in range(12)]
    reads = blob_reads(cluster)
    job_id, submitted = cluster.submit(urls, batch_size=3)
    verdict = cluster.check(job_id, submitted, deadline_s=60, label="local-handoff")
    assert verdict.doc["images"] == {"ok": 12, "failed": 0, "total": 12, "pending": 0}
    assert all(site.hits[f"/img-{i:03d}.jpg"] == 1 for i in range(12))
    assert blob_reads(cluster) == reads
    assert len(list((cluster.tmp_path / "out").glob("*.jpg"))) == 12


def test_a_worker_that_only_fetches_spills_to_redis_for_one_that_transforms(
    cluster: FaultCluster, site: StaticServer
) -> None:
    cluster.start("fetcher@test", queues=(FETCH_QUEUE, REDUCE_QUEUE))
    cluster.start("transformer@test", queues=(TRANSFORM_QUEUE,))
    urls = [site.url_for(f"img-{i:03d}.jpg") for i in range(12)]
    reads = blob_reads(cluster)
    job_id, submitted = cluster.submit(urls, batch_size=3)
    verdict = cluster.check(job_id, submitted, deadline_s=60, label="spilled-handoff")
    assert verdict.doc["images"] == {"ok": 12, "failed": 0, "total": 12, "pending": 0}
    assert all(site.hits[f"/img-{i:03d}.jpg"] == 1 for i in range(12))
    assert blob_reads(cluster) >= reads + 4  # one read per batch of 3
    assert not blobs_of(cluster, job_id)


def test_a_worker_killed_with_fetched_bytes_only_in_memory_has_them_fetched_again(
    cluster: FaultCluster, site: StaticServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key, value in {"PIPELINE_VISIBILITY_TIMEOUT_S": "300", "PIPELINE_TASK_DEADLINE_S": "60"}.items():
        monkeypatch.setenv(key, value)  # nothing comes back by a lease or a deadline: only by the takeover
        cluster.env[key] = value
    cluster.connect(cluster.url)
    # Its pool child blocks on these bytes (the test hook), so the worker holds them, fetched, untransformed.
    (tmp_path / "site" / "stuck.jpg").write_bytes(HANG)
    doomed = cluster.start("doomed@test")
    urls = [site.url_for("stuck.jpg"), *(site.url_for(f"img-{i:03d}.jpg") for i in range(4))]
    job_id, submitted = cluster.submit(urls, batch_size=1)
    victim = f"{doomed.name}|{wait_until(lambda: cluster.ledger.client.get(LIVE_PREFIX + doomed.name), 10, 'live')}"
    (stuck_id,) = expected_ids(urls[:1])
    wait_until(lambda: site.hits["/stuck.jpg"] == 1, 30, "the stuck image to be fetched")
    wait_until(lambda: stuck_id in held_by(cluster, job_id, victim), 30, "the doomed worker to hold it")
    assert not blobs_of(cluster, job_id), "the fetched bytes went to Redis"
    cluster.signal(doomed, signal.SIGKILL)
    doomed.process.wait()
    make_images(tmp_path / "fixed", 1, size=(96, 64))
    (tmp_path / "site" / "stuck.jpg").write_bytes(next((tmp_path / "fixed").iterdir()).read_bytes())
    cluster.start("survivor@test")
    verdict = cluster.check(job_id, submitted, deadline_s=TAKEOVER_BOUND_S, label="killed-holding-bytes")
    assert verdict.doc["images"] == {"ok": 5, "failed": 0, "total": 5, "pending": 0}
    assert site.hits["/stuck.jpg"] == 2  # fetched again by the survivor: the first copy died with its worker
