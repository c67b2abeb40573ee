"""A dead worker's in-flight items are taken over in seconds, not after the visibility timeout.

Every lease here lasts 300 s (the default visibility timeout), so a job that
ends within 30 s of a kill proves the items came back through the takeover:
the survivor saw the dead worker's ``pl:live`` key expire (or name another
instance) and expired the leases of what it held (``workers.takeover``).
Items are slow URLs or slow pages, so the victim surely holds some when the
signal lands; the tests wait on what Redis says it holds, never on sleeps.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cluster import WorkerProcess
from pipeline.demo.server import StaticServer
from pipeline.kinds.crawl import CrawlSpec
from pipeline.ledger.holdings import Holdings
from pipeline.ledger.keys import LIVE_PREFIX, job_key
from tests.faults.conftest import FaultCluster
from tests.faults.invariants import wait_final
from tests.helpers import make_images, wait_until
from tests.slow_site import SlowSite

LEASE_S = "300"  # the default: nothing may come back by a lease running out within these tests
TAKEOVER_BOUND_S = 30.0  # kill -> job finished (measured ~8-12 s; a lease would take 300 s)


@pytest.fixture
def slow_leases(cluster: FaultCluster, monkeypatch: pytest.MonkeyPatch) -> FaultCluster:
    """The fault cluster with 300 s leases for the producer and every worker it starts.

    The task deadline goes back up too: a crawl session over slow pages may run for seconds.
    """
    for key, value in {"PIPELINE_VISIBILITY_TIMEOUT_S": LEASE_S, "PIPELINE_TASK_DEADLINE_S": "60"}.items():
        monkeypatch.setenv(key, value)
        cluster.env[key] = value
    cluster.connect(cluster.url)
    return cluster


@pytest.fixture
def site(tmp_path: Path) -> Iterator[StaticServer]:
    make_images(tmp_path / "site", 100, size=(96, 64))
    with StaticServer(tmp_path / "site") as server:
        yield server


def slow_urls(site: StaticServer, count: int, delay: float) -> list[str]:
    return [site.url_for(f"slow/{delay}/img-{i:03d}.jpg") for i in range(count)]


def owner(cluster: FaultCluster, worker: WorkerProcess) -> str:
    instance = wait_until(lambda: cluster.ledger.client.get(LIVE_PREFIX + worker.name), 10, f"{worker.name} live")
    return f"{worker.name}|{instance}"


def held_by(cluster: FaultCluster, job_id: str, who: str) -> set[str]:
    return {item for item, holder in Holdings(cluster.ledger.client).held_by(job_id).items() if holder == who}


def test_a_killed_worker_restarted_under_its_name_has_its_batches_taken_over_within_seconds(
    slow_leases: FaultCluster, site: StaticServer
) -> None:
    cluster = slow_leases
    doomed = cluster.start("doomed@test")
    cluster.start("survivor@test")
    job_id, submitted = cluster.submit(slow_urls(site, 60, 0.6), batch_size=2)
    victim = owner(cluster, doomed)
    held = wait_until(lambda: held_by(cluster, job_id, victim), 30, "the doomed worker to hold a batch", poll=0.02)
    cluster.signal(doomed, signal.SIGKILL)
    killed_at = time.monotonic()
    doomed.process.wait()
    # As `restart: unless-stopped` does: the same name at once, so its pl:live key is back
    # (another instance): only the instance tells the dead holder from the live one.
    cluster.start("doomed@test")
    verdict = cluster.check(job_id, submitted, deadline_s=TAKEOVER_BOUND_S, label="takeover-sigkill")
    finished_after = time.monotonic() - killed_at
    print(f"kill -> job finished: {finished_after:.1f} s ({len(held)} items held by the killed worker)")
    assert verdict.doc["images"] == {"ok": 60, "failed": 0, "total": 60, "pending": 0}
    assert finished_after < TAKEOVER_BOUND_S
    assert not held_by(cluster, job_id, victim)  # taken over: nothing is left in the dead worker's name


def test_a_crawl_whose_worker_is_killed_mid_session_finishes_within_seconds_with_every_page_once(
    slow_leases: FaultCluster,
) -> None:
    cluster = slow_leases
    doomed = cluster.start("crawler@test")
    cluster.start("survivor@test")
    with SlowSite(pages=40, delay_s=0.8) as slow:
        request = CrawlSpec(seeds=[slow.url + "/"], per_host=4, output_dir=cluster.tmp_path / "crawl")
        job_id = cluster.producer.submit(request)
        victim = owner(cluster, doomed)
        wait_until(lambda: held_by(cluster, job_id, victim), 30, "the doomed worker to hold pages", poll=0.02)
        cluster.signal(doomed, signal.SIGKILL)
        killed_at = time.monotonic()
        doomed.process.wait()
        doc, _ = wait_final(cluster.ledger, job_id, TAKEOVER_BOUND_S)
        finished_after = time.monotonic() - killed_at
    print(f"crawl: kill -> job finished: {finished_after:.1f} s")
    assert doc["state"] == "succeeded", doc
    assert doc["pages"]["ok"] == 41 and doc["pages"]["failed"] == 0, doc
    assert doc["items"]["total"] == 41 and doc["ledger"]["unexpected"] == 0, doc
    assert len({r.id for r in cluster.ledger.results(job_id)}) == 41
    assert finished_after < TAKEOVER_BOUND_S


def test_a_frozen_workers_batches_are_taken_over_and_its_late_results_count_once(
    slow_leases: FaultCluster, site: StaticServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = slow_leases
    # A small window: what is taken over goes out before the rest of the job, which is still
    # running when the frozen worker thaws and records its copies.
    monkeypatch.setenv("PIPELINE_JOB_WINDOW", "8")
    cluster.connect(cluster.url)
    frozen = cluster.start("frozen@test")
    cluster.start("survivor@test")
    job_id, submitted = cluster.submit(slow_urls(site, 100, 0.5), batch_size=2)
    victim = owner(cluster, frozen)
    held = wait_until(lambda: held_by(cluster, job_id, victim), 30, "the frozen worker to hold a batch", poll=0.02)
    cluster.signal(frozen, signal.SIGSTOP)
    done = cluster.ledger.client

    def recorded_by_the_survivor() -> bool:
        return all(done.hexists(job_key(job_id, "done"), item) for item in held)

    wait_until(recorded_by_the_survivor, TAKEOVER_BOUND_S, "the frozen worker's items recorded by the survivor")
    assert cluster.ledger.meta(job_id).state == "running", "the job ended before the thaw; nothing was tested"
    cluster.signal(frozen, signal.SIGCONT)  # it finishes the batch it held: every item already has a result

    def late_results() -> int:
        return int(done.hget(job_key(job_id, "stats"), "duplicates") or 0)

    wait_until(late_results, 30, "the thawed worker's late results to reach the ledger")
    verdict = cluster.check(job_id, submitted, deadline_s=60, label="takeover-sigstop")
    assert verdict.doc["images"] == {"ok": 100, "failed": 0, "total": 100, "pending": 0}
    assert verdict.doc["ledger"]["duplicates"] >= 1  # counted once: the late copies are duplicates only
