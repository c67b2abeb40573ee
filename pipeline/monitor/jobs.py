"""Jobs as Flower shows them: the recent jobs' documents, read from the ledger once a second.

Flower's own pages list Celery tasks, i.e. batches; the user's unit is the
job. ``JobWatch`` runs on a thread of the Flower process and keeps the
``JOBS_WATCHED`` most recent jobs' documents (``Ledger.document``: the job's
record and its counters, a handful of keys whatever the job's size), so the
Jobs page, ``/api/jobs`` and the per-job Prometheus series read memory, not
Redis, and a thousand open pages cost Redis nothing more.

Cost per refresh: one ZREVRANGE and one pipelined round trip for every watched
job's state and counters; then a document is read only for a job that is
queued or running, or whose fingerprint (state, counts, report) changed. No
item is ever scanned here. The items/s history of each watched job is kept
in memory (one point a second, ``SPAN_S`` points) and dropped when the job
leaves the watched set.

``failure_sample`` is the one reader of items: the job page's "top failures"
with item and reason, from a bounded sample of the job's results.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from pipeline.core.document import FINAL_STATES
from pipeline.core.errors import JobNotFound
from pipeline.kinds import job_document
from pipeline.ledger import Ledger
from pipeline.ledger.connection import REDIS_TROUBLE
from pipeline.monitor.history import SPAN_S

log = logging.getLogger(__name__)

JOBS_WATCHED = 50  # the jobs on the Jobs page and in /metrics; bounds memory and Prometheus series
REFRESH_S = 1.0
RECENT_S = 5.0  # a running job's current items/s: over its last few seconds
SAMPLE_RESULTS = 2000  # results read at most for a job's top failures
TOP_FAILURES = 20
PER_REASON = 5
Point = tuple[float, int, int]  # (at, ok, failed)


def counts(doc: Mapping[str, Any]) -> Mapping[str, int]:
    """Every kind counts all its items under ``items``."""
    found: Mapping[str, int] = doc["items"]
    return found


def recent_rate(points: list[Point], now: float, span_s: float = RECENT_S) -> float:
    """Items (ok or failed) per second over the last ``span_s`` of a job's points."""
    recent = [p for p in points if p[0] >= now - span_s - 0.5]
    if len(recent) < 2 or recent[-1][0] <= recent[0][0]:
        return 0.0
    first, last = recent[0], recent[-1]
    return round(((last[1] + last[2]) - (first[1] + first[2])) / (last[0] - first[0]), 2)


def rates(points: list[Point]) -> list[tuple[float, float, float]]:
    """(at, items/s, failed/s) between consecutive points."""
    out = []
    for before, after in itertools.pairwise(points):
        elapsed = after[0] - before[0]
        if elapsed > 0:
            done = (after[1] + after[2]) - (before[1] + before[2])
            out.append((after[0], round(max(0, done) / elapsed, 3), round(max(0, after[2] - before[2]) / elapsed, 3)))
    return out


def summary(doc: Mapping[str, Any], points: list[Point], now: float) -> dict[str, Any]:
    """One job as the Jobs page and ``/api/jobs`` show it."""
    c = counts(doc)
    done, total = c["ok"] + c["failed"], c["total"]
    running = doc["state"] not in FINAL_STATES
    return {
        "job_id": doc["job_id"], "kind": doc["kind"], "state": doc["state"],
        "ok": c["ok"], "failed": c["failed"], "done": done, "total": total, "pending": c["pending"],
        "progress": round(min(1.0, done / total), 4) if total else (1.0 if not running else 0.0),
        "items_per_s": doc["items_per_s"],
        "recent_items_per_s": recent_rate(points, now) if running else None,
        "failures": doc["failures"], "elapsed_s": doc["elapsed_s"],
        "created_at": doc.get("created_at"), "finished_at": doc.get("finished_at"),
        "schedule": doc.get("schedule"), "reason": doc.get("reason"),
        "output_dir": doc["output_dir"], "report": doc.get("report"),
    }  # fmt: skip


class JobWatch:
    """The ``limit`` most recent jobs, refreshed from the ledger by ``refresh`` (its thread calls it each second)."""

    def __init__(
        self, ledger: Ledger, limit: int = JOBS_WATCHED, span: int = SPAN_S, clock: Callable[[], float] = time.time
    ) -> None:
        self.ledger, self.limit, self.span = ledger, limit, span
        self._clock = clock
        self._lock = threading.Lock()
        self._docs: dict[str, dict[str, Any]] = {}
        self._fingerprints: dict[str, tuple[Any, ...]] = {}
        self._order: list[str] = []
        self._points: dict[str, deque[Point]] = {}
        self._samples: dict[str, tuple[tuple[Any, ...], float, dict[str, Any]]] = {}
        self.error: str | None = None
        self.refreshed_at: float | None = None
        self._born = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- refreshing ------------------------------------------------------------------
    def refresh(self) -> None:
        """One pass over the recent jobs; keeps the last good state if Redis fails."""
        now = self._clock()
        recent = self.ledger.recent_fingerprints(self.limit)
        ids = [job_id for job_id, _ in recent]
        docs: dict[str, dict[str, Any]] = {}
        fingerprints: dict[str, tuple[Any, ...]] = {}
        for job_id, fingerprint in recent:
            if fingerprint[0] is None:  # expired since the listing
                continue
            old = self._docs.get(job_id)
            final = fingerprint[0] in FINAL_STATES
            if old is not None and final and self._fingerprints.get(job_id) == fingerprint:
                docs[job_id] = old
            else:
                try:
                    docs[job_id] = job_document(self.ledger, job_id)
                except JobNotFound:
                    continue
            fingerprints[job_id] = fingerprint
        with self._lock:
            for job_id, doc in docs.items():
                c = counts(doc)
                points = self._points.get(job_id)
                if points is None:
                    points = self._points[job_id] = deque(maxlen=self.span)
                    created = float(doc.get("created_at") or 0.0)
                    if self._born - 1.0 <= created < now:  # submitted while we watched: it had 0 done then
                        points.append((created, 0, 0))
                if doc["state"] not in FINAL_STATES or not points or points[-1][1:] != (c["ok"], c["failed"]):
                    points.append((now, c["ok"], c["failed"]))
            for job_id in set(self._points) - set(docs):
                del self._points[job_id]
            self._docs, self._fingerprints, self._order = docs, fingerprints, [i for i in ids if i in docs]
            self.error, self.refreshed_at = None, now

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except REDIS_TROUBLE as exc:
                if self.error is None:
                    log.warning("cannot read the jobs from Redis (%s); retrying every %g s", exc, REFRESH_S)
                self.error = f"Redis unreachable: {exc}"
            except Exception:  # a bug must not stop the page from updating later
                log.exception("refreshing the jobs failed")
            self._stop.wait(REFRESH_S)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pipeline-job-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(5)

    # -- reading -----------------------------------------------------------------------
    def jobs(self) -> list[dict[str, Any]]:
        """Summaries of the watched jobs, newest first."""
        now = self._clock()
        with self._lock:
            return [summary(self._docs[i], list(self._points.get(i, ())), now) for i in self._order]

    def documents(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._docs[i] for i in self._order]

    def document(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._docs.get(job_id)

    def points(self, job_id: str) -> list[Point]:
        with self._lock:
            return list(self._points.get(job_id, ()))

    def failures(self, job_id: str, doc: Mapping[str, Any], max_age_s: float = 5.0) -> dict[str, Any]:
        """``failure_sample`` of the job, read again only when its counts changed and a few seconds passed."""
        c = counts(doc)
        key = (doc["state"], c["ok"], c["failed"])
        with self._lock:
            cached = self._samples.get(job_id)
        if cached and (cached[0] == key or self._clock() - cached[1] < max_age_s):
            return cached[2]
        found = failure_sample(self.ledger, job_id, doc.get("failures") or {})
        with self._lock:
            self._samples.pop(job_id, None)
            self._samples[job_id] = (key, self._clock(), found)
            while len(self._samples) > 2 * self.limit:  # watched jobs and a few older ones someone looks at
                del self._samples[next(iter(self._samples))]
        return found


def failure_sample(
    ledger: Ledger, job_id: str, by_reason: Mapping[str, int], budget: int = SAMPLE_RESULTS, limit: int = TOP_FAILURES
) -> dict[str, Any]:
    """Failed items with their reasons, from at most ``budget`` results (streamed, a few hundred at a time).

    The reasons' counts are exact (the ledger's counters); the items are
    examples: up to ``PER_REASON`` per reason, most frequent reasons first.
    ``complete`` says whether every result was looked at.
    """
    if not sum(by_reason.values()):
        return {"items": [], "scanned": 0, "complete": True}
    per_reason: dict[str, list[dict[str, Any]]] = {}
    scanned, complete = 0, True
    for result in ledger.results(job_id):
        if scanned >= budget:
            complete = False
            break
        scanned += 1
        if result.ok:
            continue
        reason = result.reason or "error"
        examples = per_reason.setdefault(reason, [])
        if len(examples) < PER_REASON:
            examples.append({"item": result.source or result.id, "id": result.id, "reason": reason,
                             "detail": result.detail})  # fmt: skip
    order = sorted(per_reason, key=lambda r: (-by_reason.get(r, 0), r))
    items = [example for reason in order for example in per_reason[reason]][:limit]
    return {"items": items, "scanned": scanned, "complete": complete}
