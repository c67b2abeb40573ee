"""Per-slot (per-core) counters: items and busy seconds per stage, and recent rates.

A slot is one process of the worker's process pool; the pool maps child pids
to slot numbers. Work that runs on no pool process — fetching on the event
loop, reading and writing files in the thread pool — is counted under the
``io`` pseudo-slot instead of being charged to a core: a core then never looks
busy for time it spent idle, and the per-core transform counts add up to the
items transformed.

A row's ``items`` count each item once, however many stages it went through
there (a local image is read, transformed and written by one core: three stage
passes, one item); its per-stage figures keep every pass. Separately, the
worker counts the items it ``recorded`` in the ledger for the first time, ok
or failed: the figure the jobs themselves report, so the cluster-wide headline
(Flower, `pipeline top`) adds these and never stage passes.

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
RECORDED = "recorded"  # the key of items recorded in the ledger, beside the slots' own
WINDOW_S = 5.0
MIN_SAMPLE_GAP_S = 0.5  # bounds the samples kept to window / gap, however often snapshots are taken

Slot = int | str  # a pool slot number, or IO_SLOT
Key = tuple[Slot, str]
Sample = tuple[float, dict[Key, int], dict[Key, float], dict[Slot, int]]


class SlotMetrics:
    def __init__(self, slots: int, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.slots = slots
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._items: dict[Key, int] = defaultdict(int)
        self._busy: dict[Key, float] = defaultdict(float)
        self._counted: dict[Slot, int] = defaultdict(int)  # items once per slot, and RECORDED
        self._samples: deque[Sample] = deque()

    def observe(self, slot: Slot, stage: str, seconds: float, items: int = 1, *, counted: bool = True) -> None:
        """Count ``items`` done by ``slot`` in ``stage``, which kept it busy ``seconds``.

        ``counted=False``: the same items are counted under another stage of this
        slot, so only this stage's own figures grow, not the slot's items.
        """
        with self._lock:
            self._items[slot, stage] += items
            self._busy[slot, stage] += seconds
            if counted:
                self._counted[slot] += items

    def observe_io(self, stage: str, seconds: float, items: int = 1, *, counted: bool = True) -> None:
        """Work done outside the process pool (event loop, thread pool)."""
        self.observe(IO_SLOT, stage, seconds, items, counted=counted)

    def observe_recorded(self, items: int) -> None:
        """``items`` results this worker recorded in the ledger for the first time (ok or failed)."""
        if items:
            with self._lock:
                self._counted[RECORDED] += items

    def snapshot(self) -> dict[str, Any]:
        """Totals and recent rates: ``{"window_s", "cores": [row per slot], "io": row, "recorded": figures}``.

        A row is ``{"slot", "items", "busy_s", "items_per_s", "busy_ratio",
        "stages": {stage: {"items", "busy_s", "items_per_s"}}}``. ``busy_ratio``
        is the share of the window a core spent working (0..1); for the io row,
        whose items overlap, it is the mean number of items in flight. ``recorded``
        is ``{"items", "items_per_s"}`` of the items recorded in the ledger.
        """
        with self._lock:
            now = self._clock()
            current: Sample = (now, dict(self._items), dict(self._busy), dict(self._counted))
            base = self._base(current)
        elapsed = now - base[0]
        cores = [_row(slot, current, base, elapsed) for slot in range(self.slots)]
        io = _row(IO_SLOT, current, base, elapsed)
        recorded = current[3].get(RECORDED, 0)
        rate = round((recorded - base[3].get(RECORDED, 0)) / elapsed, 3) if elapsed > 0 else 0.0
        return {"window_s": self.window_s, "cores": cores, "io": io,
                "recorded": {"items": recorded, "items_per_s": rate}}  # fmt: skip

    def _base(self, current: Sample) -> Sample:
        """The newest kept sample at least a window old (else the oldest); keeps ``current``."""
        samples, now = self._samples, current[0]
        while len(samples) >= 2 and samples[1][0] <= now - self.window_s:
            samples.popleft()
        base = samples[0] if samples else current
        if not samples or now - samples[-1][0] >= MIN_SAMPLE_GAP_S:
            samples.append(current)
        return base


def _row(slot: Slot, current: Sample, base: Sample, elapsed: float) -> dict[str, Any]:
    _, items, busy, counted = current
    _, base_items, base_busy, base_counted = base

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
        "items": counted.get(slot, 0),
        "busy_s": round(sum(v["busy_s"] for v in stages.values()), 4),
        "items_per_s": rate(counted.get(slot, 0) - base_counted.get(slot, 0)),
        "busy_ratio": rate(busy_delta),
        "stages": stages,
    }
