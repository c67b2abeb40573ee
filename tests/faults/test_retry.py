"""`pipeline retry JOB` re-runs only the failed items, and the aggregate stays exact."""

from __future__ import annotations

import json
import time
from pathlib import Path

from pipeline.demo.server import StaticServer
from tests.faults.cli import run_cli
from tests.faults.conftest import FaultCluster
from tests.helpers import image_bytes, make_images, wait_for_report


def test_retry_reruns_only_the_failed_items_and_moves_them_from_failed_to_ok_counted_once(
    cluster: FaultCluster, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    make_images(site, 6, size=(200, 150))
    cluster.start("retry@test")
    with StaticServer(site) as server:
        urls = [server.url_for(f"img-{i:03d}.jpg") for i in range(6)]
        late = [server.url_for(f"late-{i}.jpg") for i in range(3)]  # 404 until "the other side" is fixed
        job_id, submitted = cluster.submit(urls + late, batch_size=3)
        first = cluster.check(job_id, submitted, deadline_s=60, label="before-retry")
        assert first.doc["images"] == {"ok": 6, "failed": 3, "total": 9, "pending": 0}
        ok_before = {r.id: r.output for r in cluster.ledger.results(job_id) if r.ok}
        for i in range(3):
            (site / f"late-{i}.jpg").write_bytes(image_bytes((200, 150)))
        proc = run_cli("retry", job_id, "--wait", "--json", redis_url=cluster.url)
    assert proc.returncode == 0, proc.stderr
    assert "retrying 3 failed item(s)" in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["images"] == {"ok": 9, "failed": 0, "total": 9, "pending": 0}
    assert doc["failures"] == {}
    after = cluster.check(job_id, submitted, deadline_s=5, label="after-retry")
    assert {r.id: r.output for r in cluster.ledger.results(job_id) if r.id in ok_before} == ok_before
    assert after.doc["ledger"] == {"duplicates": 0, "unexpected": 0}
    again = run_cli("retry", job_id, redis_url=cluster.url)
    assert again.returncode == 1 and "no failed items" in again.stderr


def test_a_retry_whose_send_was_cut_short_is_finished_by_the_workers_and_its_gap_is_not_elapsed_time(
    cluster: FaultCluster, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    make_images(site, 2, size=(200, 150))
    cluster.start("retry-cut@test")
    with StaticServer(site) as server:
        urls = [server.url_for(f"img-{i:03d}.jpg") for i in range(2)] + [server.url_for("late.jpg")]
        job_id, submitted = cluster.submit(urls)
        first = cluster.check(job_id, submitted, deadline_s=60, label="before-retry")
        assert first.doc["items"]["failed"] == 1
        wait_for_report(cluster.ledger, job_id)  # a retry waits for the reduce step's report
        (site / "late.jpg").write_bytes(image_bytes((200, 150)))
        time.sleep(3)  # not a readiness wait: the job must stand finished for a while
        # What `pipeline retry` does before it sends anything; then it is "interrupted": nothing is sent.
        failed = [r.id for r in cluster.ledger.results(job_id, failed_only=True)]
        assert cluster.ledger.retry(job_id, failed) == 1
        after = cluster.check(job_id, submitted, deadline_s=30, label="after-cut-retry")
    assert after.doc["items"] == {"ok": 3, "failed": 0, "total": 3, "pending": 0}
    assert after.doc["elapsed_s"] < first.doc["elapsed_s"] + 2.5, "the 3 s the job stood finished are not elapsed"
