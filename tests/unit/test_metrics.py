"""SlotMetrics: per-core counts, the io pseudo-slot, and items/s over a recent window."""

from __future__ import annotations

import threading

import pytest

from workers.metrics import IO_SLOT, SlotMetrics


class Clock:
    """A clock the test moves by hand, so rates are exact."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_every_slot_has_a_row_even_before_it_did_any_work(clock: Clock) -> None:
    snap = SlotMetrics(3, clock=clock).snapshot()
    assert [row["slot"] for row in snap["cores"]] == [0, 1, 2]
    assert all(row["items"] == 0 and row["stages"] == {} and row["items_per_s"] == 0 for row in snap["cores"])
    assert snap["io"]["slot"] == IO_SLOT


def test_items_and_busy_seconds_are_counted_per_slot_and_stage(clock: Clock) -> None:
    metrics = SlotMetrics(2, clock=clock)
    metrics.observe(0, "transform", 0.25)
    metrics.observe(0, "transform", 0.5)
    metrics.observe(1, "transform", 1.0, items=3)
    cores = metrics.snapshot()["cores"]
    assert cores[0]["stages"]["transform"] | {"items_per_s": None} == {"items": 2, "busy_s": 0.75, "items_per_s": None}
    assert (cores[0]["items"], cores[0]["busy_s"]) == (2, 0.75)
    assert (cores[1]["items"], cores[1]["busy_s"]) == (3, 1.0)


def test_work_outside_the_pool_goes_to_the_io_pseudo_slot_never_to_a_core(clock: Clock) -> None:
    metrics = SlotMetrics(2, clock=clock)
    metrics.observe_io("fetch", 1.5, items=5)
    metrics.observe_io("store", 0.1)
    snap = metrics.snapshot()
    assert {stage: f["items"] for stage, f in snap["io"]["stages"].items()} == {"fetch": 5, "store": 1}
    assert all(row["items"] == 0 for row in snap["cores"])


def test_items_per_second_is_the_change_over_the_window_not_since_start(clock: Clock) -> None:
    metrics = SlotMetrics(1, window_s=5.0, clock=clock)
    metrics.observe(0, "transform", 0.1, items=100)  # long ago
    metrics.snapshot()
    for _ in range(10):  # then 4 items a second for 10 s, sampled each second
        clock.now += 1.0
        metrics.observe(0, "transform", 0.5, items=4)
        snap = metrics.snapshot()
    core = snap["cores"][0]
    assert core["stages"]["transform"]["items_per_s"] == 4.0
    assert core["items_per_s"] == 4.0
    assert core["busy_ratio"] == 0.5
    assert core["items"] == 140


def test_the_rate_falls_to_zero_once_a_window_passes_without_work(clock: Clock) -> None:
    metrics = SlotMetrics(1, window_s=5.0, clock=clock)
    metrics.snapshot()
    metrics.observe(0, "transform", 0.2, items=10)
    clock.now += 1.0
    assert metrics.snapshot()["cores"][0]["items_per_s"] == 10.0
    for _ in range(6):
        clock.now += 1.0
        snap = metrics.snapshot()
    assert snap["cores"][0]["items_per_s"] == 0.0
    assert snap["cores"][0]["items"] == 10


def test_frequent_snapshots_keep_a_bounded_number_of_samples(clock: Clock) -> None:
    metrics = SlotMetrics(1, window_s=5.0, clock=clock)
    for _ in range(1000):
        clock.now += 0.01
        metrics.snapshot()
    assert len(metrics._samples) <= 5.0 / 0.5 + 2


def test_concurrent_observers_lose_no_counts(clock: Clock) -> None:
    metrics = SlotMetrics(4, clock=clock)

    def work(slot: int) -> None:
        for _ in range(5000):
            metrics.observe(slot, "transform", 0.001)

    threads = [threading.Thread(target=work, args=(slot % 4,)) for slot in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(row["items"] for row in metrics.snapshot()["cores"]) == 40000


def test_a_slots_items_count_each_item_once_whatever_the_stages_it_went_through(clock: Clock) -> None:
    metrics = SlotMetrics(1, window_s=5.0, clock=clock)
    metrics.snapshot()
    clock.now += 1.0
    metrics.observe(0, "fetch", 0.01, items=4, counted=False)  # the child read the file,
    metrics.observe(0, "transform", 0.2, items=4)  # transformed it
    metrics.observe(0, "store", 0.01, items=4, counted=False)  # and wrote it: one item, three passes
    core = metrics.snapshot()["cores"][0]
    assert (core["items"], core["items_per_s"]) == (4, 4.0)
    assert {stage: f["items"] for stage, f in core["stages"].items()} == {"fetch": 4, "store": 4, "transform": 4}


def test_items_recorded_in_the_ledger_are_counted_apart_with_their_own_rate(clock: Clock) -> None:
    metrics = SlotMetrics(2, window_s=5.0, clock=clock)
    metrics.snapshot()
    for _ in range(5):
        clock.now += 1.0
        metrics.observe_recorded(6)
        metrics.observe_recorded(0)
        snap = metrics.snapshot()
    assert snap["recorded"] == {"items": 30, "items_per_s": 6.0}
    assert all(row["items"] == 0 for row in snap["cores"]), "recording is not work of a core"
