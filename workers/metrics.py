"""Per-slot (per-core) counters: items and busy seconds per stage, and recent rates.

A slot is one process of the worker's process pool; the pool maps child pids
to slot numbers. Work that runs on no pool process — fetching on the event
loop, reading and writing files in the thread pool — is counted under the
``io`` pseudo-slot instead of being charged to a core: a core then never looks
busy for time it spent idle, and the per-core transform counts add up to the
items transformed.

Counting is cheap by design: ``observe`` is one lock and two additions per item
(or per fetched batch). Rates are not counted per item: each ``snapshot`` (one
per heartbeat and one per monitoring event, about once a second) keeps a copy
of the totals, and items/s is the difference to the copy taken about
``window_s`` earlier.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

IO_SLOT = "io"
WINDOW_S = 5.0
MIN_SAMPLE_GAP_S = 0.5  # bounds the samples kept to window / gap, however often snapshots are taken

Slot = int | str  # a pool slot number, or IO_SLOT
Key = tuple[Slot, str]


class SlotMetrics:
    def __init__(self, slots: int, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.slots = slots
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._items: dict[Key, int] = defaultdict(int)
        self._busy: dict[Key, float] = defaultdict(float)
        self._samples: deque[tuple[float, dict[Key, int], dict[Key, float]]] = deque()

    def observe(self, slot: Slot, stage: str, seconds: float, items: int = 1) -> None:
        """Count ``items`` done by ``slot`` in ``stage``, which kept it busy ``seconds``."""
        with self._lock:
            self._items[slot, stage] += items
            self._busy[slot, stage] += seconds

    def observe_io(self, stage: str, seconds: float, items: int = 1) -> None:
        """Work done outside the process pool (event loop, thread pool)."""
        self.observe(IO_SLOT, stage, seconds, items)

    def snapshot(self) -> dict[str, Any]:
        """Totals and recent rates: ``{"window_s", "cores": [row per slot], "io": row}``.

        A row is ``{"slot", "items", "busy_s", "items_per_s", "busy_ratio",
        "stages": {stage: {"items", "busy_s", "items_per_s"}}}``. ``busy_ratio``
        is the share of the window a core spent working (0..1); for the io row,
        whose items overlap, it is the mean number of items in flight.
        """
        with self._lock:
            now = self._clock()
            items, busy = dict(self._items), dict(self._busy)
            base_at, base_items, base_busy = self._base(now, items, busy)
        elapsed = now - base_at
        cores = [_row(slot, items, busy, base_items, base_busy, elapsed) for slot in range(self.slots)]
        io = _row(IO_SLOT, items, busy, base_items, base_busy, elapsed)
        return {"window_s": self.window_s, "cores": cores, "io": io}

    def _base(
        self, now: float, items: dict[Key, int], busy: dict[Key, float]
    ) -> tuple[float, dict[Key, int], dict[Key, float]]:
        """The newest kept sample at least a window old (else the oldest); records ``now``."""
        samples = self._samples
        while len(samples) >= 2 and samples[1][0] <= now - self.window_s:
            samples.popleft()
        base = samples[0] if samples else (now, items, busy)
        if not samples or now - samples[-1][0] >= MIN_SAMPLE_GAP_S:
            samples.append((now, items, busy))
        return base


def _row(
    slot: Slot,
    items: dict[Key, int],
    busy: dict[Key, float],
    base_items: dict[Key, int],
    base_busy: dict[Key, float],
    elapsed: float,
) -> dict[str, Any]:
    def rate(delta: float) -> float:
        return round(delta / elapsed, 3) if elapsed > 0 else 0.0

    stages: dict[str, dict[str, Any]] = {}
    for (s, stage), count in sorted(items.items(), key=lambda kv: kv[0][1]):
        if s == slot:
            stages[stage] = {
                "items": count,
                "busy_s": round(busy[s, stage], 4),
                "items_per_s": rate(count - base_items.get((s, stage), 0)),
            }
    busy_delta = sum(busy[k] - base_busy.get(k, 0.0) for k in busy if k[0] == slot)
    return {
        "slot": slot,
        "items": sum(v["items"] for v in stages.values()),
        "busy_s": round(sum(v["busy_s"] for v in stages.values()), 4),
        "items_per_s": round(sum(v["items_per_s"] for v in stages.values()), 3),
        "busy_ratio": rate(busy_delta),
        "stages": stages,
    }
