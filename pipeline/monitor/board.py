"""The Flower side of per-core monitoring: the latest figures of every worker.

Flower's events thread hands every Celery event to its ``State`` on the Tornado
IO loop; Celery's ``State`` passes events of a group it has a handler for
(``state.handlers["pipeline"]``) to that handler instead of its own worker/task
bookkeeping. ``CoreBoard.on_event`` is that handler, so our ``pipeline-cores``
events arrive here without a second event consumer. The page, the JSON
endpoint and the Prometheus collector only read from the board.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from pipeline.monitor.cores import stage_totals, worker_view

FORGET_AFTER_S = 600.0  # an offline worker's row stays this long, then goes


class CoreBoard:
    """Latest ``pipeline-cores`` figures per worker hostname."""

    def __init__(self, forget_after_s: float = FORGET_AFTER_S, clock: Callable[[], float] = time.time) -> None:
        self.forget_after_s = forget_after_s
        self._clock = clock
        self._lock = threading.Lock()  # the IO loop writes; a scrape may read from another thread
        self._latest: dict[str, tuple[float, Mapping[str, Any]]] = {}

    def on_event(self, subject: str, event: Mapping[str, Any]) -> None:
        """Celery ``State`` handler for the ``pipeline`` event group (``subject`` follows the dash)."""
        if subject != "cores" or "hostname" not in event:
            return
        self.update(str(event["hostname"]), event, float(event.get("local_received") or self._clock()))

    def update(self, hostname: str, figures: Mapping[str, Any], received_at: float) -> None:
        with self._lock:
            self._latest[hostname] = (received_at, figures)

    def workers(self) -> list[dict[str, Any]]:
        """Every worker heard from recently, sorted by name (see ``cores.worker_view``)."""
        now = self._clock()
        with self._lock:
            for name in [n for n, (at, _) in self._latest.items() if now - at > self.forget_after_s]:
                del self._latest[name]
            latest = sorted(self._latest.items())
        return [
            worker_view(name, figures.get("cores") or [], figures.get("io"), seen_at=at, now=now,
                        online=bool(figures.get("online", True)), window_s=figures.get("window_s"))
            for name, (at, figures) in latest
        ]  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        """What ``/api/cores`` returns: every worker's cores, and totals per stage."""
        workers = self.workers()
        return {
            "generated_at": round(self._clock(), 3),
            "workers": workers,
            "totals": stage_totals(workers),
            "stages": sorted({stage for worker in workers for core in worker["cores"] for stage in core["stages"]}
                             | {stage for worker in workers for stage in worker["io"]["stages"]}),
        }  # fmt: skip
