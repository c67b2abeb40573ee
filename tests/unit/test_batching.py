"""Adaptive batch size for an image job's local files (pipeline.core.batching)."""

from __future__ import annotations

from pipeline.core.batching import MAX_BATCH, MIN_SAMPLE, adaptive_batch, item_seconds, window_for


def stats(done: int, seconds_per_item: float) -> dict[str, str | None]:
    total = done * seconds_per_item
    return {"ok": str(done), "failed": None, "t:fetch": str(total / 4), "t:transform": str(total / 2),
            "t:store": str(total / 4)}  # fmt: skip


def test_the_default_holds_until_enough_items_are_measured() -> None:
    assert item_seconds(stats(MIN_SAMPLE - 1, 0.0002)) is None
    assert adaptive_batch(20, stats(MIN_SAMPLE - 1, 0.0002)) == 20


def test_tiny_items_get_batches_of_about_a_quarter_second_of_work() -> None:
    assert adaptive_batch(20, stats(100, 0.001)) == 250


def test_the_batch_is_capped() -> None:
    assert adaptive_batch(20, stats(1000, 0.00001)) == MAX_BATCH


def test_photos_keep_the_default_batch() -> None:
    assert adaptive_batch(20, stats(100, 0.015)) == 20


def test_failures_count_as_measured_items() -> None:
    measured = {"ok": "30", "failed": "20", "t:fetch": "0.025"}
    assert item_seconds(measured) == 0.0005


def test_the_window_fits_four_batches_and_never_shrinks() -> None:
    assert window_for(800, 20) == 800
    assert window_for(800, 400) == 1600
