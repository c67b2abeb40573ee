"""PIPELINE_OUTPUT_ROOT is the worker's own rule: a message naming another folder writes nothing there."""

from __future__ import annotations

from pathlib import Path

from tests.faults.conftest import FaultCluster
from tests.helpers import make_images, wait_for_job


def test_a_worker_writes_nothing_outside_its_output_root_whatever_the_job_says(
    cluster: FaultCluster, tmp_path: Path
) -> None:
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    cluster.start("rooted@test", PIPELINE_OUTPUT_ROOT=str(root))
    make_images(tmp_path / "in", 3)
    # The producer here has no root: only the worker's setting stands between the job and the folder.
    job_id, _ = cluster.submit([str(tmp_path / "in")], output_dir=elsewhere)
    doc = wait_for_job(cluster.ledger, job_id)
    assert doc["state"] == "failed" and doc["failures"] == {"output_refused": 3}, doc
    assert not elsewhere.exists(), "nothing may be written outside the worker's output root"

    inside, _ = cluster.submit([str(tmp_path / "in")], output_dir=root / "job")
    assert wait_for_job(cluster.ledger, inside)["state"] == "succeeded"
    assert len(list((root / "job").glob("*.jpg"))) == 3
