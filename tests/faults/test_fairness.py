"""Scenario 10: a small job is not starved by a big one submitted first.

Policy (README, "Security and guarantees"): each job keeps at most
PIPELINE_JOB_WINDOW items (default 800) in the queues at once; the rest wait
in its frontier in Redis. A small job submitted behind a big one therefore
waits for at most one window of the big job's items, not for all of them.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.faults.conftest import FaultCluster
from tests.helpers import make_images


def test_a_small_job_behind_a_five_thousand_item_job_finishes_long_before_it(
    cluster: FaultCluster, tmp_path: Path
) -> None:
    cluster.start("fair@test")
    make_images(tmp_path / "big", 5000, size=(32, 32))
    make_images(tmp_path / "small", 10, size=(32, 32), prefix="small")
    big_id, big_items = cluster.submit([str(tmp_path / "big")], output_dir=tmp_path / "big-out")
    submitted_at = time.monotonic()
    small_id, small_items = cluster.submit([str(tmp_path / "small")], output_dir=tmp_path / "small-out")
    small = cluster.check(small_id, small_items, deadline_s=60, label="small")
    small_wait = time.monotonic() - submitted_at
    big_state_then = cluster.ledger.meta(big_id).state
    big_done_then = cluster.done(big_id)
    cluster.check(big_id, big_items, deadline_s=300, label="big")
    assert small.doc["images"]["ok"] == 10
    assert big_state_then == "running", f"the small job ended only after the big one ({small_wait:.1f} s)"
    assert big_done_then < 4000, f"the small job waited for {big_done_then} of the big job's 5,000 items"
