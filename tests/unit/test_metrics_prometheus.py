"""The per-core Prometheus series, scraped from a registry of their own and parsed back."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.monitor.board import CoreBoard
from pipeline.monitor.prometheus import register
from workers.metrics import SlotMetrics


def scrape(registry: CollectorRegistry) -> dict[str, dict[tuple[str, str, str], float]]:
    text = generate_latest(registry).decode()
    return {
        family.name: {(s.labels["worker"], s.labels["core"], s.labels["stage"]): s.value for s in family.samples}
        for family in text_string_to_metric_families(text)
    }


def test_each_worker_core_and_stage_gets_items_busy_seconds_and_a_rate() -> None:
    metrics = SlotMetrics(2)
    metrics.observe(0, "transform", 0.5, items=3)
    metrics.observe(1, "transform", 0.25, items=1)
    metrics.observe_io("store", 0.1, items=4)
    board = CoreBoard()
    board.update("w1@host", {**metrics.snapshot(), "online": True}, board._clock())
    registry = CollectorRegistry()
    register(board, registry)
    series = scrape(registry)
    assert series["pipeline_core_items"] == {
        ("w1@host", "0", "transform"): 3.0, ("w1@host", "1", "transform"): 1.0, ("w1@host", "io", "store"): 4.0,
    }  # fmt: skip
    assert series["pipeline_core_busy_seconds"][("w1@host", "0", "transform")] == 0.5
    assert set(series["pipeline_core_items_per_second"]) == set(series["pipeline_core_items"])


def test_counters_are_exposed_with_the_total_suffix_and_an_empty_board_exposes_no_samples() -> None:
    registry = CollectorRegistry()
    register(CoreBoard(), registry)
    text = generate_latest(registry).decode()
    assert "# TYPE pipeline_core_items_total counter" in text
    assert "# TYPE pipeline_core_busy_seconds_total counter" in text
    assert "# TYPE pipeline_core_items_per_second gauge" in text
    assert not [line for line in text.splitlines() if line and not line.startswith("#")]
