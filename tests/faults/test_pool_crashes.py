"""Pool processes that die under an item: retried alone, capped, and the pool recovers.

The crash is the documented test hook in ``workers/processes.py``: with
``PIPELINE_TEST_CRASH_DIR`` set, a pool child SIGKILLs itself on bytes carrying
a crash marker (appended after the JPEG's end, so the image itself is valid).
"""

from __future__ import annotations

from pathlib import Path

from tests.faults.conftest import FaultCluster
from tests.helpers import image_bytes, make_images
from workers.processes import CRASH_ALWAYS, CRASH_ONCE


def _marked(folder: Path, name: str, marker: bytes) -> Path:
    path = folder / name
    path.write_bytes(image_bytes((320, 240)) + marker)
    return path


def _crashes(cluster: FaultCluster) -> list[str]:
    log = Path(cluster.env["PIPELINE_TEST_CRASH_DIR"]) / "crashes.log"
    return log.read_text().split() if log.exists() else []


def test_an_item_whose_process_dies_once_is_retried_and_succeeds_and_the_pool_recovers(
    cluster: FaultCluster, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    make_images(folder, 11, size=(320, 240))
    _marked(folder, "zz-crash-once.jpg", CRASH_ONCE)
    worker = cluster.start("once@test", PIPELINE_PROCESSES="2")
    job_id, submitted = cluster.submit([str(folder)], batch_size=12)
    verdict = cluster.check(job_id, submitted, deadline_s=60, label="crash-once")
    assert verdict.doc["images"]["failed"] == 0
    assert len(_crashes(cluster)) == 1, "the hook must have killed a pool process exactly once"
    # The rebuilt pool serves a second job on the same, still-running worker.
    again, submitted_again = cluster.submit([str(folder / "img-000.jpg")], output_dir=tmp_path / "again")
    cluster.check(again, submitted_again, deadline_s=30, label="after-recovery")
    assert worker.alive()


def test_a_poison_item_fails_after_the_capped_attempts_and_its_batch_neighbours_succeed(
    cluster: FaultCluster, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    make_images(folder, 15, size=(1600, 1200))  # slow enough to be in flight when the poison strikes
    _marked(folder, "poison.jpg", CRASH_ALWAYS)
    worker = cluster.start("poison@test", PIPELINE_PROCESSES="2")
    job_id, submitted = cluster.submit([str(folder)], batch_size=16)  # one batch: all neighbours in flight
    verdict = cluster.check(job_id, submitted, deadline_s=60, label="poison")
    assert verdict.doc["images"] == {"ok": 15, "failed": 1, "total": 16, "pending": 0}
    assert verdict.doc["failures"] == {"worker_crashed": 1}
    [poison] = [r for r in cluster.ledger.results(job_id) if not r.ok]
    assert poison.source.endswith("poison.jpg")
    assert len(_crashes(cluster)) == 3, "PIPELINE_TRANSFORM_ATTEMPTS (3) tries, no more"
    assert worker.alive()
