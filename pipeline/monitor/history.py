"""Throughput over time, kept in the Flower process: one point a second for the last 15 minutes.

Workers send cumulative counters about once a second (``pipeline-cores``
events); ``Rates`` turns two consecutive events of one worker into items/s
over the interval between them, timed by the worker's own clock (the
event's ``timestamp``), so a late event does not make a spike and a slow
one a dip. Once a second the board samples every worker's latest rates
into the ``Timeline``: the rate of each core, of each stage (over all
workers), and of items recorded (each item once: the headline).

Memory is bounded twice: the timeline holds ``SPAN_S`` points, each with at
most ``MAX_SERIES`` values, and at most ``MAX_MARKERS`` join/leave marks.
Nothing is written anywhere: a restarted Flower starts a new history.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SPAN_S = 900  # 15 minutes at one point a second
MAX_SERIES = 256  # values per point: 64 workers of 3 cores, the stages and the headline
MAX_MARKERS = 200
ITEMS: tuple[str, ...] = ("items",)  # the headline series: items recorded, each once
MIN_INTERVAL_S = 0.2  # two events closer than this (a duplicate) give no new rate


def core_key(worker: str, core: str) -> tuple[str, ...]:
    return ("core", worker, core)


def stage_key(stage: str) -> tuple[str, ...]:
    return ("stage", stage)


@dataclass(frozen=True)
class Marker:
    """A worker joined (its first event) or left (its last event, or it went quiet)."""

    at: float
    worker: str
    change: str  # "joined" | "left"

    def to_json(self) -> dict[str, Any]:
        return {"at": round(self.at, 3), "worker": self.worker, "change": self.change}


def _counts(figures: Mapping[str, Any]) -> tuple[dict[str, int], dict[str, int], int]:
    """(items per core, items per stage over all rows, items recorded) from one event's figures."""
    cores = {str(row.get("slot", "?")): int(row.get("items", 0)) for row in figures.get("cores") or []}
    stages: dict[str, int] = {}
    for row in [*(figures.get("cores") or []), figures.get("io") or {}]:
        for stage, f in (row.get("stages") or {}).items():
            stages[str(stage)] = stages.get(str(stage), 0) + int(f.get("items", 0))
    recorded = int((figures.get("recorded") or {}).get("items", 0))
    return cores, stages, recorded


@dataclass
class WorkerRates:
    """One worker's rates over the interval between its last two events."""

    at: float
    cores: dict[str, int]
    stages: dict[str, int]
    recorded: int
    values: dict[tuple[str, ...], float]
    restarted: bool = False  # the counters went back: a new process under the same name

    @classmethod
    def first(cls, at: float, figures: Mapping[str, Any]) -> WorkerRates:
        cores, stages, recorded = _counts(figures)
        return cls(at, cores, stages, recorded, {})

    def next(self, at: float, figures: Mapping[str, Any]) -> WorkerRates | None:
        """The rates up to this event; None if it is too close to the last one to say."""
        cores, stages, recorded = _counts(figures)
        elapsed = at - self.at
        if elapsed < MIN_INTERVAL_S:
            return None
        if recorded < self.recorded or any(n < self.cores.get(core, 0) for core, n in cores.items()):
            return WorkerRates(at, cores, stages, recorded, {}, restarted=True)

        def rate(now: int, before: int) -> float:
            return round(max(0, now - before) / elapsed, 3)

        values: dict[tuple[str, ...], float] = {ITEMS: rate(recorded, self.recorded)}
        values |= {("core", core): rate(n, self.cores.get(core, 0)) for core, n in cores.items()}
        values |= {stage_key(stage): rate(n, self.stages.get(stage, 0)) for stage, n in stages.items()}
        return WorkerRates(at, cores, stages, recorded, values)


def sample(rates: Mapping[str, WorkerRates]) -> dict[tuple[str, ...], float]:
    """One timeline point from the latest rates of the workers online now."""
    point: dict[tuple[str, ...], float] = {ITEMS: 0.0}
    for worker, current in sorted(rates.items()):
        for key, value in current.values.items():
            if key[0] == "core":
                point[core_key(worker, key[1])] = value
            else:
                point[key] = round(point.get(key, 0.0) + value, 3)
    return point


class Timeline:
    """The last ``span`` points, each ``(at, {series key: value})``; keys absent = no value then."""

    def __init__(self, span: int = SPAN_S, max_series: int = MAX_SERIES, max_markers: int = MAX_MARKERS) -> None:
        self.max_series = max_series
        self._points: deque[tuple[float, dict[tuple[str, ...], float]]] = deque(maxlen=span)
        self._markers: deque[Marker] = deque(maxlen=max_markers)

    def add(self, at: float, values: Mapping[tuple[str, ...], float]) -> None:
        if len(values) > self.max_series:  # keep the headline and stages first, then cores by name
            values = dict(sorted(values.items(), key=lambda kv: (kv[0][0] == "core", kv[0]))[: self.max_series])
        self._points.append((at, dict(values)))

    def mark(self, marker: Marker) -> None:
        self._markers.append(marker)

    def __len__(self) -> int:
        return len(self._points)

    def oldest(self) -> float | None:
        """When the first point kept was taken (None before the first)."""
        return self._points[0][0] if self._points else None

    def series(self, kinds: Iterable[str], since: float = 0.0) -> dict[tuple[str, ...], list[tuple[float, float]]]:
        """Every series of these kinds (``core``, ``stage``, ``items``), as (at, value) points from ``since``."""
        wanted = set(kinds)
        out: dict[tuple[str, ...], list[tuple[float, float]]] = {}
        for at, values in self._points:
            if at < since:
                continue
            for key, value in values.items():
                if key[0] in wanted:
                    out.setdefault(key, []).append((at, value))
        return dict(sorted(out.items()))

    def markers(self, since: float = 0.0) -> list[Marker]:
        return [m for m in self._markers if m.at >= since]
