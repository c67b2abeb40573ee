"""The charts' history: rates between a worker's events, one point a second, bounded."""

from __future__ import annotations

from typing import Any

from pipeline.monitor.history import ITEMS, Timeline, WorkerRates, core_key, sample, stage_key
from workers.metrics import SlotMetrics


def figures(transformed: list[int], recorded: int, fetched: int = 0) -> dict[str, Any]:
    """A `pipeline-cores` event's fields from the real SlotMetrics: cumulative counters."""
    metrics = SlotMetrics(len(transformed))
    for slot, count in enumerate(transformed):
        if count:
            metrics.observe(slot, "transform", 0.01 * count, items=count)
            metrics.observe(slot, "store", 0.001 * count, items=count, counted=False)
    if fetched:
        metrics.observe_io("fetch", 0.1, items=fetched)
    metrics.observe_recorded(recorded)
    return metrics.snapshot()


def test_rates_are_the_counters_change_over_the_time_between_two_events_of_the_worker() -> None:
    first = WorkerRates.first(100.0, figures([0, 0], 0))
    second = first.next(102.0, figures([10, 6], 16, fetched=4))
    assert second is not None
    assert second.values == {
        ITEMS: 8.0, ("core", "0"): 5.0, ("core", "1"): 3.0,
        stage_key("transform"): 8.0, stage_key("store"): 8.0, stage_key("fetch"): 2.0,
    }  # fmt: skip


def test_an_event_too_close_to_the_last_one_gives_no_new_rate() -> None:
    first = WorkerRates.first(100.0, figures([1], 1))
    assert first.next(100.05, figures([3], 3)) is None


def test_counters_that_went_back_mean_a_restarted_worker_not_a_negative_rate() -> None:
    first = WorkerRates.first(100.0, figures([50], 50))
    restarted = first.next(101.0, figures([2], 2))
    assert restarted is not None and restarted.restarted
    assert restarted.values == {}
    later = restarted.next(102.0, figures([5], 5))
    assert later is not None and later.values[ITEMS] == 3.0


def test_a_sample_keeps_each_workers_cores_apart_and_sums_stages_and_items_over_workers() -> None:
    a = WorkerRates.first(0.0, figures([0], 0)).next(1.0, figures([4], 4))
    b = WorkerRates.first(0.0, figures([0, 0], 0)).next(1.0, figures([1, 2], 3))
    assert a is not None and b is not None
    point = sample({"a@h": a, "b@h": b})
    assert point[core_key("a@h", "0")] == 4.0
    assert (point[core_key("b@h", "0")], point[core_key("b@h", "1")]) == (1.0, 2.0)
    assert point[stage_key("transform")] == 7.0
    assert point[ITEMS] == 7.0
    assert sample({}) == {ITEMS: 0.0}


def test_the_timeline_keeps_the_last_span_points_and_a_bounded_number_of_series() -> None:
    timeline = Timeline(span=3, max_series=3)
    for second in range(10):
        timeline.add(
            float(second), {ITEMS: 1.0, stage_key("fetch"): 2.0, **{core_key("w", str(c)): 1.0 for c in range(9)}}
        )
    assert len(timeline) == 3
    assert timeline.oldest() == 7.0
    series = timeline.series(["items", "stage", "core"])
    assert set(series) == {ITEMS, stage_key("fetch"), core_key("w", "0")}, "headline and stages are kept first"
    assert [at for at, _ in series[ITEMS]] == [7.0, 8.0, 9.0]


def test_series_are_filtered_by_kind_and_start_time() -> None:
    timeline = Timeline()
    timeline.add(1.0, {ITEMS: 1.0, core_key("w", "0"): 5.0})
    timeline.add(2.0, {ITEMS: 2.0})
    assert timeline.series(["core"]) == {core_key("w", "0"): [(1.0, 5.0)]}
    assert timeline.series(["items"], since=1.5) == {ITEMS: [(2.0, 2.0)]}
