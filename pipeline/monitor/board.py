"""The Flower side of per-core monitoring: the latest figures of every worker.

Flower's events thread hands every Celery event to its ``State`` on the Tornado
IO loop; Celery's ``State`` passes events of a group it has a handler for
(``state.handlers["pipeline"]``) to that handler instead of its own worker/task
bookkeeping. ``CoreBoard.on_event`` is that handler, so our ``pipeline-cores``
events arrive here without a second event consumer. The page, the JSON
endpoint and the Prometheus collector only read from the board.

The board also keeps the history the charts draw (``history.Timeline``):
``tick``, called once a second on the IO loop, samples every online worker's
latest rates, and notes workers joining and leaving. A worker heard from in
the board's first seconds was already there: it is not marked as joining.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from pipeline.monitor.cores import STALE_AFTER_S, headline, stage_totals, worker_view
from pipeline.monitor.history import Marker, Timeline, WorkerRates, sample

FORGET_AFTER_S = 600.0  # an offline worker's row stays this long, then goes


class CoreBoard:
    """Latest ``pipeline-cores`` figures per worker hostname."""

    def __init__(
        self,
        forget_after_s: float = FORGET_AFTER_S,
        clock: Callable[[], float] = time.time,
        timeline: Timeline | None = None,
    ) -> None:
        self.forget_after_s = forget_after_s
        self._clock = clock
        self._lock = threading.Lock()  # the IO loop writes; a scrape may read from another thread
        self._latest: dict[str, tuple[float, Mapping[str, Any]]] = {}
        self.timeline = timeline or Timeline()
        self._rates: dict[str, WorkerRates] = {}
        self._present: set[str] = set()  # online workers, for join/leave marks
        self._born = clock()

    def on_event(self, subject: str, event: Mapping[str, Any]) -> None:
        """Celery ``State`` handler for the ``pipeline`` event group (``subject`` follows the dash)."""
        if subject != "cores" or "hostname" not in event:
            return
        self.update(str(event["hostname"]), event, float(event.get("local_received") or self._clock()))

    def update(self, hostname: str, figures: Mapping[str, Any], received_at: float) -> None:
        at = float(figures.get("timestamp") or received_at)  # the worker's clock times its own intervals
        online = bool(figures.get("online", True))
        with self._lock:
            self._latest[hostname] = (received_at, figures)
            previous = self._rates.get(hostname)
            current = WorkerRates.first(at, figures) if previous is None else previous.next(at, figures)
            if current is not None:
                self._rates[hostname] = current
            if online and (hostname not in self._present or (current is not None and current.restarted)):
                self._present.add(hostname)
                if received_at - self._born > STALE_AFTER_S:
                    self.timeline.mark(Marker(received_at, hostname, "joined"))
            elif not online:
                self._leave(hostname, received_at)

    def _leave(self, hostname: str, at: float) -> None:
        self._rates.pop(hostname, None)
        if hostname in self._present:
            self._present.discard(hostname)
            self.timeline.mark(Marker(at, hostname, "left"))

    def tick(self, now: float | None = None) -> None:
        """Add one point to the timeline: the latest rates of the workers online now."""
        now = self._clock() if now is None else now
        with self._lock:
            self._expire(now)
            self.timeline.add(now, sample({n: r for n, r in self._rates.items() if n in self._present}))

    def _expire(self, now: float) -> None:
        """Workers gone quiet left when last heard from (the same rule that shows them offline)."""
        for name in list(self._present):
            heard = self._latest[name][0]
            if now - heard >= STALE_AFTER_S:
                self._leave(name, heard)

    def workers(self) -> list[dict[str, Any]]:
        """Every worker heard from recently, sorted by name (see ``cores.worker_view``)."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            for name in [n for n, (at, _) in self._latest.items() if now - at > self.forget_after_s]:
                del self._latest[name]
            latest = sorted(self._latest.items())
        return [
            worker_view(name, figures.get("cores") or [], figures.get("io"), seen_at=at, now=now,
                        online=bool(figures.get("online", True)), window_s=figures.get("window_s"),
                        recorded=figures.get("recorded"))
            for name, (at, figures) in latest
        ]  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        """What ``/api/cores`` returns: the headline (items, each once), every worker's cores, totals per stage."""
        workers = self.workers()
        return {
            "generated_at": round(self._clock(), 3),
            "headline": headline(workers),
            "workers": workers,
            "totals": stage_totals(workers),
            "stages": sorted({stage for worker in workers for core in worker["cores"] for stage in core["stages"]}
                             | {stage for worker in workers for stage in worker["io"]["stages"]}),
        }  # fmt: skip
