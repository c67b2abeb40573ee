"""The ``result --json`` document: the keys users script against, and what they mean."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from pipeline.core.aggregate import Totals
from pipeline.core.document import FINAL_STATES, STATES, JobMeta, build_document

CREATED = 1_700_000_000.0


def meta(**changes: Any) -> JobMeta:
    fields: dict[str, Any] = {
        "job_id": "job-1",
        "kind": "images",
        "state": "running",
        "created_at": CREATED,
        "output_dir": "/out/job-1",
        "total": 10,
        "submitted": 10,
    }
    fields.update(changes)
    return JobMeta(**fields)


def totals(**changes: Any) -> Totals:
    fields: dict[str, Any] = {
        "ok": 6,
        "failed": 2,
        "bytes_in": 5000,
        "bytes_out": 1200,
        "failures": Counter({"timeout": 1, "http_404": 1}),
        "formats": Counter({"webp": 6}),
    }
    fields.update(changes)
    return Totals(**fields)


def test_the_document_has_every_documented_key() -> None:
    doc = build_document(meta(), totals(), now=CREATED + 4)
    assert {
        "job_id", "kind", "state", "items", "failures", "bytes_in", "bytes_out",
        "elapsed_s", "output_dir", "timings",
    } <= set(doc)  # fmt: skip
    assert {"ok", "failed"} <= set(doc["items"])


def test_the_document_reports_the_job_and_its_counts() -> None:
    doc = build_document(meta(), totals(), now=CREATED + 4)
    assert (doc["job_id"], doc["kind"], doc["state"], doc["output_dir"]) == (
        "job-1", "images", "running", "/out/job-1",
    )  # fmt: skip
    assert doc["items"]["ok"] == 6
    assert doc["items"]["failed"] == 2
    assert (doc["bytes_in"], doc["bytes_out"]) == (5000, 1200)


def test_failures_are_listed_by_reason_in_sorted_order() -> None:
    doc = build_document(meta(), totals(), now=CREATED + 4)
    assert list(doc["failures"].items()) == [("http_404", 1), ("timeout", 1)]


def test_pending_is_the_total_minus_what_is_done() -> None:
    doc = build_document(meta(total=10), totals(ok=6, failed=2), now=CREATED + 1)
    assert doc["items"]["total"] == 10
    assert doc["items"]["pending"] == 2


def test_before_the_total_is_known_pending_counts_against_what_was_submitted() -> None:
    doc = build_document(meta(total=None, submitted=9), totals(ok=6, failed=2), now=CREATED + 1)
    assert doc["items"]["total"] == 9
    assert doc["items"]["pending"] == 1


def test_pending_never_goes_negative() -> None:
    doc = build_document(meta(total=3), totals(ok=6, failed=2), now=CREATED + 1)
    assert doc["items"]["pending"] == 0


def test_a_running_job_measures_elapsed_time_up_to_now() -> None:
    doc = build_document(meta(state="running"), totals(), now=CREATED + 7.5)
    assert doc["elapsed_s"] == 7.5


@pytest.mark.parametrize("state", sorted(FINAL_STATES))
def test_a_finished_job_measures_elapsed_time_up_to_when_it_finished(state: str) -> None:
    finished = meta(state=state, finished_at=CREATED + 3.25)
    assert finished.is_final
    assert build_document(finished, totals(), now=CREATED + 1000)["elapsed_s"] == 3.25


def test_elapsed_time_is_never_negative() -> None:
    assert build_document(meta(), totals(), now=CREATED - 5)["elapsed_s"] == 0.0


def test_throughput_is_items_done_per_second() -> None:
    doc = build_document(meta(), totals(ok=6, failed=2), now=CREATED + 4)
    assert doc["items_per_s"] == 2.0


def test_throughput_is_zero_before_any_time_has_passed() -> None:
    assert build_document(meta(), totals(), now=CREATED)["items_per_s"] == 0.0


def test_timings_give_total_seconds_and_mean_milliseconds_per_stage() -> None:
    stage_seconds = {"queue": 0.0, "fetch": 4.0, "transform": 2.0, "store": 0.5}
    doc = build_document(meta(), totals(ok=3, failed=1, timings=stage_seconds), now=CREATED + 1)
    assert doc["timings"]["fetch_s"] == 4.0
    assert doc["timings"]["fetch_mean_ms"] == 1000.0
    assert doc["timings"]["store_mean_ms"] == 125.0
    assert {f"{stage}_s" for stage in stage_seconds} <= set(doc["timings"])


def test_mean_timings_are_zero_when_nothing_is_done() -> None:
    doc = build_document(meta(), Totals(), now=CREATED + 1)
    assert all(value == 0.0 for key, value in doc["timings"].items() if key.endswith("_mean_ms"))


def test_the_output_formats_are_reported() -> None:
    assert build_document(meta(), totals(), now=CREATED)["outputs"]["formats"] == {"webp": 6}


def test_a_reason_is_included_only_when_the_job_has_one() -> None:
    assert "reason" not in build_document(meta(), totals(), now=CREATED)
    doc = build_document(meta(state="cancelled", reason="cancelled by user"), totals(), now=CREATED)
    assert doc["reason"] == "cancelled by user"


def test_an_image_job_reports_its_ops_and_format() -> None:
    spec = {"ops": "exif,thumbnail:64x64", "format": "webp"}
    doc = build_document(meta(spec=spec), totals(), now=CREATED)
    assert (doc["ops"], doc["format"]) == ("exif,thumbnail:64x64", "webp")


def test_final_states_are_a_subset_of_the_known_states() -> None:
    assert set(STATES) >= FINAL_STATES
    assert not meta(state="queued").is_final
