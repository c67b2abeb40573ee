"""The worker's self-description in Redis, refreshed every few seconds.

``pl:worker:NAME`` (a hash with a short TTL) is what `pipeline workers` and
`pipeline top` list: name, host, pid, pool sizes, queues, and the per-core
figures (``slots``: items, busy seconds and items/s per pool slot and stage;
``io``: the same for work outside the pool; ``recorded``: items recorded in
the ledger, each once). A worker that dies simply stops refreshing and
disappears after the TTL.

Each beat also sets ``pl:live:NODE`` to this process's instance token, expiring
after ``PIPELINE_WORKER_LOST_S``: the other workers read it to tell a dead
worker (or an earlier incarnation under the same name) from a live one and take
over its in-flight items (``workers.takeover``). With ``PIPELINE_HEALTH_FILE``
set, a beat that reached Redis also touches that file, which is all a
container healthcheck needs to look at.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import redis

from pipeline import health
from pipeline.core.errors import BrokerUnavailable, RedisFull
from pipeline.ledger import Ledger
from pipeline.ledger.holdings import owner_of
from pipeline.ledger.memory import FULL_HINT
from workers.metrics import SlotMetrics
from workers.processes import ProcessPool

log = logging.getLogger(__name__)
INTERVAL_S = 2.0
TTL_S = 10


class Heartbeat:
    def __init__(
        self,
        ledger: Ledger,
        node: str,
        record: dict[str, Any],
        metrics: SlotMetrics,
        processes: ProcessPool,
        *,
        lost_s: float = 6.0,
        health_file: Path | None = None,
    ) -> None:
        self.ledger = ledger
        self.lost_s, self.health_file = lost_s, health_file
        # Tells this process from an earlier one that ran under the same name (a restarted container).
        self.instance = secrets.token_hex(6)
        self.node, self.record = node, record
        self.metrics, self.processes = metrics, processes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pipeline-heartbeat", daemon=True)
        self.started_at = time.time()
        self._full_warned_at = float("-inf")

    def beat(self) -> None:
        figures = core_figures(self.metrics, self.processes)
        fields = {
            **{k: json.dumps(v) for k, v in self.record.items()},
            "started_at": json.dumps(self.started_at),
            "seen_at": json.dumps(time.time()),
            "slots": json.dumps(figures["cores"]),
            "io": json.dumps(figures["io"]),
            "recorded": json.dumps(figures["recorded"]),
            "window_s": json.dumps(figures["window_s"]),
            "pool_rebuilds": json.dumps(self.processes.rebuilds),
        }
        try:
            self.ledger.beat(self.node, fields, TTL_S, self.instance, self.lost_s)
        except RedisFull:
            # Redis is full: still alive (its items must not be taken over), only the figures are stale.
            if not self.ledger.keep_alive(self.node, TTL_S, self.lost_s):
                raise
            self._warn_full()
        health.touch(self.health_file)

    def _warn_full(self) -> None:
        now = time.monotonic()
        if now - self._full_warned_at >= 30:
            self._full_warned_at = now
            log.warning("Redis is full (OOM): heartbeat kept alive without its figures", extra={
                "redis_memory": self.ledger.memory().describe(), "what_to_do": FULL_HINT})  # fmt: skip

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
            except BrokerUnavailable:
                log.warning("heartbeat failed; Redis unreachable", exc_info=False)
            except redis.RedisError as exc:  # never let the heartbeat thread die: the worker would look dead
                log.warning("heartbeat failed: %s", exc)
            self._stop.wait(INTERVAL_S)

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        with contextlib.suppress(BrokerUnavailable):
            self.ledger.forget_worker(self.node)
        health.remove(self.health_file)

    @property
    def owner(self) -> str:
        """How this process signs the items it holds (``workers.takeover``)."""
        return owner_of(self.node, self.instance)


def core_figures(metrics: SlotMetrics, processes: ProcessPool) -> dict[str, Any]:
    """``metrics.snapshot()`` with each core's child pid: what the heartbeat and monitoring events carry."""
    figures = metrics.snapshot()
    pids = processes.pids()
    for row in figures["cores"]:
        row["pid"] = pids[row["slot"]]
    figures["io"]["pid"] = None
    figures["processes"] = processes.size
    return figures
