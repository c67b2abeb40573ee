"""An image batch done with large bodies hands their memory back at once (workers.image_stages._let_go).

The worker's raised collector thresholds (workers.heap) let reference cycles keep a batch's
bodies alive for a while; measured with real jobs (four of 40 photos of 3.8 MB from URLs),
worker main RSS after them was 295 MB without the collection, 99-124 MB with it. Here the
mechanism, with the collector off so that only an explicit collection can free the cycle.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from pipeline.core.bodies import BodyBudget, Hold
from workers.image_stages import _let_go
from workers.loop import EventLoopThread

MiB = 2**20


class _Node:
    other: _Node
    body: bytes


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def _cycle_holding_a_body() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other, a.body = b, a, bytes(4 * MiB)
    return weakref.ref(a)


def _holds(loop_thread: EventLoopThread, large: bool) -> list[Hold]:
    batch = BodyBudget(64 * MiB, 8 * MiB).group()
    holds = [batch.hold(), batch.hold()]
    if large:
        loop_thread.run(holds[0].take(4 * MiB))
    return holds


def test_letting_go_of_a_batch_that_held_large_bodies_collects_cycles_still_holding_them(
    loop_thread: EventLoopThread, collector_off: None
) -> None:
    holds = _holds(loop_thread, large=True)
    alive = _cycle_holding_a_body()
    _let_go(holds)
    assert alive() is None
    assert not any(hold.taken for hold in holds)


def test_a_batch_of_small_bodies_is_let_go_without_a_collection(
    loop_thread: EventLoopThread, collector_off: None
) -> None:
    holds = _holds(loop_thread, large=False)
    alive = _cycle_holding_a_body()
    _let_go(holds)
    assert alive() is not None  # nothing large was held: no collection paid for
