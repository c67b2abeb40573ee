"""What the charts show: the board's timeline and a job's points, turned into ``svg`` lines.

Three charts: items/s per worker core (each item once per core), items/s per
stage over all workers with the headline (items recorded, each once) drawn
bold on top, so the gap between a stage pass and an item is visible; and a
job's items/s (and failures/s) over its life. Workers joining and leaving
are marked on the first two.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.monitor.history import ITEMS, Timeline
from pipeline.monitor.jobs import Point, rates
from pipeline.monitor.svg import Line, Mark, line_chart

BY = ("core", "stage")
SPANS_S = (60, 300, 900)  # what ?minutes= may ask for: 1, 5 or 15 minutes
MIN_JOB_SPAN_S = 10.0
MIN_CORES_SPAN_S = 30.0


def span_of(minutes: str | None, default: int = 900) -> int:
    """The window a request asks for, rounded to one we offer."""
    try:
        wanted = float(minutes) * 60 if minutes else default
    except ValueError:
        wanted = default
    return min(SPANS_S, key=lambda s: abs(s - wanted))


def core_lines(timeline: Timeline, since: float) -> list[Line]:
    return [
        Line(f"core:{worker}:{core}", f"{worker} #{core}", points, {"worker": worker, "core": core, "kind": "core"})
        for (_, worker, core), points in timeline.series(["core"], since).items()
    ]


def stage_lines(timeline: Timeline, since: float) -> list[Line]:
    series = timeline.series(["stage", "items"], since)
    lines = [Line("items", "items (each once)", series.get(ITEMS, []), {"kind": "items"}, bold=True)]
    lines += [
        Line(f"stage:{key[1]}", f"{key[1]} passes", points, {"stage": key[1], "kind": "stage"})
        for key, points in series.items()
        if key[0] == "stage"
    ]
    return lines


def window(timeline: Timeline, now: float, span_s: int) -> float:
    """Where a chart starts: ``span_s`` ago, or where the history starts if later (at least a minute shown)."""
    oldest = timeline.oldest()
    since = now - span_s if oldest is None else max(now - span_s, oldest - 1)
    return min(since, now - MIN_CORES_SPAN_S)


def cores_chart(timeline: Timeline, by: str, now: float, span_s: int) -> str:
    since = window(timeline, now, span_s)
    marks = [Mark(m.at, m.worker, m.change) for m in timeline.markers(since)]
    if by == "stage":
        lines, title = stage_lines(timeline, since), "Items/s per stage, and items (each once)"
    else:
        lines, title = core_lines(timeline, since), "Items/s per worker core"
    return line_chart(lines, marks, start=since, end=now, title=title, height=220,
                      empty="Waiting for workers' per-core events…")  # fmt: skip


def job_chart(
    points: Sequence[Point], now: float, *, created_at: float, finished_at: float | None, span_s: int = 900
) -> str:
    """A job's items/s and failed/s from its start (the last ``span_s`` of it) to its end or now."""
    values = rates(list(points))
    end = finished_at + 0.5 if finished_at else now
    start = max(created_at - 0.5, end - span_s)
    end = max(end, start + MIN_JOB_SPAN_S)  # a short job fills the width from the left
    lines = [
        Line("items", "items/s", [(at, v) for at, v, _ in values], {"kind": "items"}, bold=True),
        Line("failed", "failed/s", [(at, f) for at, _, f in values], {"kind": "failed"}),
    ]
    return line_chart(lines, start=start, end=end, title="Items/s of this job", origin=created_at,
                      empty="No history: Flower was not watching while this job ran")  # fmt: skip


def history_json(timeline: Timeline, now: float, span_s: int) -> dict[str, Any]:
    """``/api/cores/history``: every series as [at, value] points, and the join/leave marks."""
    since = now - span_s
    series = []
    for key, points in timeline.series(["core", "stage", "items"], since).items():
        entry: dict[str, Any] = {"kind": key[0], "points": [[round(at, 3), v] for at, v in points]}
        if key[0] == "core":
            entry |= {"worker": key[1], "core": key[2]}
        elif key[0] == "stage":
            entry["stage"] = key[1]
        series.append(entry)
    return {"generated_at": round(now, 3), "span_s": span_s, "series": series,
            "markers": [m.to_json() for m in timeline.markers(since)]}  # fmt: skip
