"""One worker's per-core figures, in the one shape every view shows.

Workers report their figures twice (see ``workers.metrics`` for the row shape):
as ``pipeline-cores`` events, which the Flower board keeps, and in their
heartbeat record, which `pipeline top` and `pipeline workers` read. Both go
through ``worker_view`` here, so the Cores page, ``/api/cores``, the Prometheus
series and `pipeline top --json` agree on names and meaning.

A worker whose figures are older than ``STALE_AFTER_S`` is shown offline with
its totals kept and its rates zeroed: a rate from a worker we no longer hear
from would describe the past as the present.

Two kinds of figure, never mixed: a core row's ``items`` count each item once
on that core (its stages keep every pass), and a worker's ``items`` are the
items it recorded in the ledger, ok or failed. The ``headline`` adds the
latter, so it reads what the jobs report: an image that was read, transformed
and stored is one item, not three.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

STALE_AFTER_S = 6.0  # three missed heartbeats, or six missed events
IO_CORE = "io"


@dataclass(frozen=True)
class CoreStage:
    """One (worker, core, stage) line: what a Prometheus series or a table cell shows."""

    worker: str
    core: str
    stage: str
    items: int
    busy_s: float
    items_per_s: float


def _row(raw: Mapping[str, Any], online: bool) -> dict[str, Any]:
    """A core row with every key present (older workers may send fewer) and rates zeroed when offline."""
    stages = {
        str(stage): {
            "items": int(f.get("items", 0)),
            "busy_s": float(f.get("busy_s", 0.0)),
            "items_per_s": float(f.get("items_per_s", 0.0)) if online else 0.0,
        }
        for stage, f in sorted((raw.get("stages") or {}).items())
    }
    return {
        "core": str(raw.get("slot", "?")),
        "pid": raw.get("pid"),
        "items": int(raw.get("items", sum(s["items"] for s in stages.values()))),
        "busy_s": float(raw.get("busy_s", 0.0)),
        "items_per_s": float(raw.get("items_per_s", 0.0)) if online else 0.0,
        "busy_ratio": float(raw.get("busy_ratio", 0.0)) if online else 0.0,
        "stages": stages,
    }


def worker_view(
    name: str,
    cores: Iterable[Mapping[str, Any]],
    io: Mapping[str, Any] | None,
    *,
    seen_at: float,
    now: float,
    online: bool = True,
    window_s: float | None = None,
    recorded: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON for one worker: ``{"name", "online", "age_s", "window_s", "items", "items_per_s", "cores": [...],
    "io": {...}}``; ``items`` and ``items_per_s`` are the items it recorded in the ledger (``recorded``).
    """
    age = max(0.0, now - seen_at)
    online = online and age < STALE_AFTER_S
    rows = [_row(core, online) for core in cores]
    recorded = recorded or {}
    return {
        "name": name,
        "online": online,
        "age_s": round(age, 1),
        "window_s": window_s,
        "processes": len(rows),
        "items": int(recorded.get("items", 0)),
        "items_per_s": float(recorded.get("items_per_s", 0.0)) if online else 0.0,
        "cores": rows,
        "io": _row({**(io or {}), "slot": IO_CORE}, online),
    }


def headline(workers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Items done and items/s over all workers, each item once: what the jobs' own counts add up to."""
    workers = list(workers)
    return {
        "items": sum(int(w["items"]) for w in workers),
        "items_per_s": round(sum(float(w["items_per_s"]) for w in workers), 3),
        "workers_online": sum(1 for w in workers if w["online"]),
        "cores": sum(len(w["cores"]) for w in workers if w["online"]),
    }


def stage_lines(workers: Iterable[Mapping[str, Any]]) -> Iterator[CoreStage]:
    """Every (worker, core, stage) of every worker, the io pseudo-core last."""
    for worker in workers:
        for core in [*worker["cores"], worker["io"]]:
            for stage, f in core["stages"].items():
                yield CoreStage(worker["name"], core["core"], stage, f["items"], f["busy_s"], f["items_per_s"])


def stage_totals(workers: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Items and items/s per stage over every core of every worker."""
    totals: dict[str, dict[str, float]] = {}
    for line in stage_lines(workers):
        total = totals.setdefault(line.stage, {"items": 0, "items_per_s": 0.0})
        total["items"] += line.items
        total["items_per_s"] = round(total["items_per_s"] + line.items_per_s, 3)
    return dict(sorted(totals.items()))
