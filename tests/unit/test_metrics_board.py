"""The Flower-side board and the shared per-core view: what /api/cores, /metrics and `top` show."""

from __future__ import annotations

from typing import Any

from pipeline.monitor.board import CoreBoard
from pipeline.monitor.cores import STALE_AFTER_S, stage_lines, stage_totals, worker_view
from workers.metrics import SlotMetrics


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def figures(per_core: list[int], fetched: int = 0, online: bool = True) -> dict[str, Any]:
    """A `pipeline-cores` event's fields, made by the real SlotMetrics."""
    metrics = SlotMetrics(len(per_core))
    for slot, count in enumerate(per_core):
        if count:
            metrics.observe(slot, "transform", 0.1 * count, items=count)
    if fetched:
        metrics.observe_io("fetch", 0.5, items=fetched)
    return {**metrics.snapshot(), "online": online}


def event(hostname: str, fields: dict[str, Any], received: float) -> dict[str, Any]:
    return {"type": "pipeline-cores", "hostname": hostname, "local_received": received, **fields}


def test_the_board_keeps_the_latest_figures_per_worker_sorted_by_name() -> None:
    clock = Clock()
    board = CoreBoard(clock=clock)
    board.on_event("cores", event("b@host", figures([1, 2]), clock.now))
    board.on_event("cores", event("a@host", figures([5]), clock.now))
    board.on_event("cores", event("b@host", figures([3, 4]), clock.now))
    workers = board.workers()
    assert [w["name"] for w in workers] == ["a@host", "b@host"]
    assert [c["items"] for c in workers[1]["cores"]] == [3, 4]
    assert [c["core"] for c in workers[1]["cores"]] == ["0", "1"]


def test_events_of_another_subject_or_without_a_hostname_are_ignored() -> None:
    board = CoreBoard()
    board.on_event("something", event("a@host", figures([1]), 0.0))
    board.on_event("cores", {"type": "pipeline-cores", **figures([1])})
    assert board.workers() == []


def test_a_worker_gone_quiet_is_offline_with_totals_kept_and_rates_zeroed_then_forgotten() -> None:
    clock = Clock()
    board = CoreBoard(forget_after_s=60.0, clock=clock)
    fields = figures([2])
    fields["cores"][0]["items_per_s"] = fields["cores"][0]["stages"]["transform"]["items_per_s"] = 7.0
    board.update("a@host", fields, clock.now)
    assert board.workers()[0]["cores"][0]["items_per_s"] == 7.0
    clock.now += STALE_AFTER_S + 1
    quiet = board.workers()[0]
    assert not quiet["online"]
    assert quiet["cores"][0]["items"] == 2
    assert quiet["cores"][0]["items_per_s"] == quiet["cores"][0]["stages"]["transform"]["items_per_s"] == 0.0
    clock.now += 60.0
    assert board.workers() == []


def test_a_workers_last_event_marks_it_offline_at_once() -> None:
    clock = Clock()
    board = CoreBoard(clock=clock)
    board.update("a@host", figures([1], online=False), clock.now)
    assert board.workers()[0]["online"] is False


def test_the_json_document_totals_every_stage_over_every_core_and_lists_the_stages() -> None:
    clock = Clock()
    board = CoreBoard(clock=clock)
    board.update("a@host", figures([1, 2], fetched=3), clock.now)
    board.update("b@host", figures([4, 0], fetched=4), clock.now)
    doc = board.as_json()
    assert doc["totals"]["transform"]["items"] == 7
    assert doc["totals"]["fetch"]["items"] == 7
    assert doc["stages"] == ["fetch", "transform"]
    assert doc["workers"][1]["io"]["core"] == "io"


def test_stage_lines_name_every_core_and_the_io_pseudo_core() -> None:
    view = worker_view("a@host", figures([1, 2], fetched=3)["cores"], figures([0], fetched=3)["io"],
                       seen_at=0.0, now=0.0)  # fmt: skip
    lines = {(line.core, line.stage): line.items for line in stage_lines([view])}
    assert lines == {("0", "transform"): 1, ("1", "transform"): 2, ("io", "fetch"): 3}
    assert stage_totals([view])["transform"] == {"items": 3, "items_per_s": 0.0}


def test_a_record_from_an_older_worker_without_rates_still_renders() -> None:
    old = [{"slot": 0, "items": 4, "busy_s": 1.0, "stages": {"transform": {"items": 4, "busy_s": 1.0}}, "pid": 9}]
    view = worker_view("old@host", old, None, seen_at=10.0, now=11.0)
    assert view["cores"][0] | {"stages": None} == {
        "core": "0", "pid": 9, "items": 4, "busy_s": 1.0, "items_per_s": 0.0, "busy_ratio": 0.0, "stages": None,
    }  # fmt: skip
    assert view["io"]["stages"] == {}


def counted(per_core: list[int], recorded: int, online: bool = True, timestamp: float | None = None) -> dict[str, Any]:
    """An event of a worker whose cores transformed and stored ``per_core`` items and recorded ``recorded``."""
    metrics = SlotMetrics(len(per_core))
    for slot, count in enumerate(per_core):
        if count:
            metrics.observe(slot, "transform", 0.1, items=count)
            metrics.observe(slot, "store", 0.01, items=count, counted=False)
    metrics.observe_recorded(recorded)
    fields: dict[str, Any] = {**metrics.snapshot(), "online": online}
    if timestamp is not None:
        fields["timestamp"] = timestamp
    return fields


def test_the_headline_adds_the_items_workers_recorded_not_their_stage_passes() -> None:
    clock = Clock()
    board = CoreBoard(clock=clock)
    board.update("a@host", counted([3, 2], 5), clock.now)
    board.update("b@host", counted([4], 4), clock.now)
    doc = board.as_json()
    assert doc["headline"]["items"] == 9
    assert doc["totals"]["transform"]["items"] + doc["totals"]["store"]["items"] == 18
    assert (doc["headline"]["workers_online"], doc["headline"]["cores"]) == (2, 3)


def test_each_tick_adds_a_point_with_every_online_cores_rate_over_its_last_two_events() -> None:
    clock = Clock()
    board = CoreBoard(clock=clock)
    board.update("a@host", counted([0, 0], 0, timestamp=100.0), clock.now)
    clock.now += 1
    board.update("a@host", counted([2, 1], 3, timestamp=101.0), clock.now)
    board.tick()
    clock.now += 1
    board.update("a@host", counted([6, 1], 7, timestamp=102.0), clock.now)
    board.tick()
    series = board.timeline.series(["core", "items"])
    assert [v for _, v in series[("core", "a@host", "0")]] == [2.0, 4.0]
    assert [v for _, v in series[("core", "a@host", "1")]] == [1.0, 0.0]
    assert [v for _, v in series[("items",)]] == [3.0, 4.0]


def test_workers_there_when_flower_started_are_not_marked_but_later_joins_and_leaves_are() -> None:
    clock = Clock()
    board = CoreBoard(clock=clock)
    board.update("early@host", counted([1], 1), clock.now)
    clock.now += STALE_AFTER_S + 1
    board.update("early@host", counted([1], 1), clock.now)
    board.update("late@host", counted([1], 1), clock.now)
    clock.now += 1
    board.update("late@host", counted([1], 1, online=False), clock.now)  # its last event
    board.tick()
    marks = [(m.worker, m.change, m.at) for m in board.timeline.markers()]
    assert marks == [("late@host", "joined", 5007.0), ("late@host", "left", 5008.0)]


def test_a_worker_gone_quiet_is_marked_as_leaving_when_it_was_last_heard_from() -> None:
    clock = Clock()
    board = CoreBoard(clock=clock)
    board.update("a@host", counted([1], 1), clock.now)
    heard = clock.now
    clock.now += STALE_AFTER_S + 0.5
    board.tick()
    assert [(m.change, m.at) for m in board.timeline.markers()] == [("left", heard)]
    assert ("core", "a@host", "0") not in board.timeline.series(["core"])
