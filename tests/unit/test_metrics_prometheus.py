"""The per-core and per-job Prometheus series, scraped from a registry of their own and parsed back."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.monitor.board import CoreBoard
from pipeline.monitor.prometheus import register
from workers.metrics import SlotMetrics


def scrape(registry: CollectorRegistry) -> dict[str, dict[tuple[str, str, str], float]]:
    """The per-core families, by (worker, core, stage)."""
    text = generate_latest(registry).decode()
    return {
        family.name: {(s.labels["worker"], s.labels["core"], s.labels["stage"]): s.value for s in family.samples}
        for family in text_string_to_metric_families(text)
        if family.name.startswith("pipeline_core_")
    }


def families(registry: CollectorRegistry) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(generate_latest(registry).decode())}


def test_each_worker_core_and_stage_gets_items_busy_seconds_and_a_rate() -> None:
    metrics = SlotMetrics(2)
    metrics.observe(0, "transform", 0.5, items=3)
    metrics.observe(1, "transform", 0.25, items=1)
    metrics.observe_io("store", 0.1, items=4)
    board = CoreBoard()
    board.update("w1@host", {**metrics.snapshot(), "online": True}, board._clock())
    registry = CollectorRegistry()
    register(board, registry=registry)
    series = scrape(registry)
    assert series["pipeline_core_items"] == {
        ("w1@host", "0", "transform"): 3.0, ("w1@host", "1", "transform"): 1.0, ("w1@host", "io", "store"): 4.0,
    }  # fmt: skip
    assert series["pipeline_core_busy_seconds"][("w1@host", "0", "transform")] == 0.5
    assert set(series["pipeline_core_items_per_second"]) == set(series["pipeline_core_items"])


def test_counters_are_exposed_with_the_total_suffix_and_an_empty_board_exposes_no_samples() -> None:
    registry = CollectorRegistry()
    register(CoreBoard(), registry=registry)
    text = generate_latest(registry).decode()
    assert "# TYPE pipeline_core_items_total counter" in text
    assert "# TYPE pipeline_core_busy_seconds_total counter" in text
    assert "# TYPE pipeline_core_items_per_second gauge" in text
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert samples == ["pipeline_items_per_second 0.0"]


def test_the_headline_series_count_items_recorded_not_stage_passes() -> None:
    metrics = SlotMetrics(1)
    for stage in ("fetch", "transform", "store"):
        metrics.observe(0, stage, 0.1, items=6, counted=stage == "transform")
    metrics.observe_recorded(6)
    board = CoreBoard()
    board.update("w1@host", {**metrics.snapshot(), "online": True}, board._clock())
    registry = CollectorRegistry()
    register(board, registry=registry)
    found = families(registry)
    assert [(s.labels, s.value) for s in found["pipeline_worker_items"].samples] == [({"worker": "w1@host"}, 6.0)]
    assert sum(s.value for s in found["pipeline_core_items"].samples) == 18  # passes, per stage


class Watched:
    """``JobWatch.jobs``' shape, for the collector alone (JobWatch itself is tested against Redis)."""

    def __init__(self, jobs: list[dict[str, Any]]) -> None:
        self._jobs = jobs

    def jobs(self) -> list[dict[str, Any]]:
        return self._jobs


def test_each_watched_job_gets_its_items_by_outcome_its_state_and_its_rate() -> None:
    jobs = [
        {"job_id": "j1", "kind": "images", "state": "running", "ok": 7, "failed": 2, "total": 20,
         "recent_items_per_s": 3.5},
        {"job_id": "j2", "kind": "crawl", "state": "succeeded", "ok": 40, "failed": 0, "total": 40,
         "recent_items_per_s": None},
    ]  # fmt: skip
    registry = CollectorRegistry()
    register(CoreBoard(), Watched(jobs), registry=registry)
    found = families(registry)
    items = {tuple(s.labels[k] for k in ("job", "kind", "state")): s.value for s in found["pipeline_job_items"].samples}
    assert items == {("j1", "images", "ok"): 7, ("j1", "images", "failed"): 2, ("j2", "crawl", "ok"): 40,
                     ("j2", "crawl", "failed"): 0}  # fmt: skip
    states = {(s.labels["job"], s.labels["state"]) for s in found["pipeline_job_state"].samples if s.value == 1}
    assert states == {("j1", "running"), ("j2", "succeeded")}
    assert len(found["pipeline_job_state"].samples) == 2 * 5
    rates = {s.labels["job"]: s.value for s in found["pipeline_job_items_per_second"].samples}
    assert rates == {"j1": 3.5, "j2": 0.0}
    assert {s.labels["job"]: s.value for s in found["pipeline_job_items_expected"].samples} == {"j1": 20, "j2": 40}
    assert "# TYPE pipeline_job_items_total counter" in generate_latest(registry).decode()
