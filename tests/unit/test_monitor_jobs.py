"""How a job is summed up for the Jobs page, its chart and its buttons (pure parts; JobWatch runs against Redis)."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.monitor.charts import job_chart, span_of
from pipeline.monitor.jobs import rates, recent_rate, summary
from pipeline.monitor.jobs_web import can_retry


def document(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "job_id": "20260101-000000-abcdef", "kind": "images", "state": "running",
        "items": {"ok": 30, "failed": 10, "total": 80, "pending": 40}, "failures": {"http_404": 10},
        "items_per_s": 4.0, "elapsed_s": 10.0, "created_at": 1000.0, "finished_at": None,
        "output_dir": "/out", "report": None,
    }  # fmt: skip
    return doc | changes


def test_a_running_jobs_summary_has_its_progress_and_its_rate_over_the_last_seconds() -> None:
    points = [(1000.0, 0, 0), (1005.0, 10, 0), (1008.0, 25, 5), (1010.0, 30, 10)]
    job = summary(document(), points, now=1010.0)
    assert (job["done"], job["total"], job["progress"]) == (40, 80, 0.5)
    assert job["recent_items_per_s"] == 6.0  # 30 items from 1005 to 1010
    assert job["failures"] == {"http_404": 10}


def test_a_job_counts_all_its_items_and_a_finished_job_has_no_current_rate() -> None:
    crawl = document(kind="crawl", state="succeeded", items={"ok": 9, "failed": 1, "total": 10, "pending": 0},
                     images={"ok": 2, "failed": 0})  # fmt: skip
    job = summary(crawl, [], now=2000.0)
    assert (job["done"], job["total"], job["progress"], job["recent_items_per_s"]) == (10, 10, 1.0, None)


def test_rates_between_points_never_go_negative() -> None:
    assert rates([(0.0, 0, 0), (2.0, 8, 2), (3.0, 8, 2)]) == [(2.0, 5.0, 1.0), (3.0, 0.0, 0.0)]
    assert recent_rate([(0.0, 0, 0)], now=1.0) == 0.0


@pytest.mark.parametrize(("changes", "allowed"), [
    ({"state": "succeeded"}, True), ({"state": "failed"}, True), ({"state": "running"}, False),
    ({"state": "cancelled"}, False), ({"state": "succeeded", "items": {"ok": 1, "failed": 0}}, False),
    ({"state": "succeeded", "kind": "crawl"}, False),
])  # fmt: skip
def test_retry_is_offered_only_where_the_ledger_would_take_it(changes: dict[str, Any], allowed: bool) -> None:
    assert can_retry(document(**changes))[0] is allowed


def test_a_jobs_chart_starts_at_its_submission_and_ends_at_its_end() -> None:
    points = [(1000.0, 0, 0), (1001.0, 5, 0), (1002.0, 12, 1), (1003.0, 20, 2)]
    text = job_chart(points, 5000.0, created_at=1000.0, finished_at=1003.2)
    assert 'data-start="999.500"' in text and 'data-end="1009.500"' in text  # at least ten seconds wide
    assert 'data-points="3"' in text


def test_a_chart_window_is_one_of_the_offered_spans() -> None:
    assert (span_of(None), span_of("5"), span_of("1"), span_of("nonsense"), span_of("600")) == (900, 300, 60, 900, 900)
