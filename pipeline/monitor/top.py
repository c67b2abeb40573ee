"""What `pipeline top` shows, read straight from Redis (no Flower needed).

Per-core figures come from the workers' heartbeat records (``workers.heartbeat``),
queue depths from the broker's lists, active jobs and their progress from the
ledger. One ``snapshot`` is a handful of Redis round trips.
"""

from __future__ import annotations

import time
from typing import Any

from pipeline.core.errors import JobNotFound
from pipeline.kinds import job_document
from pipeline.ledger import Ledger
from pipeline.monitor.cores import headline, stage_totals, worker_view
from tasks.names import QUEUES

JOBS_SCANNED = 100  # active jobs are looked for among this many most recent ones


def active_jobs(ledger: Ledger, scanned: int = JOBS_SCANNED) -> list[dict[str, Any]]:
    """Queued and running jobs, newest first, with progress (``done`` of ``total``)."""
    jobs = []
    for meta in ledger.recent_jobs(scanned):
        if meta.is_final:
            continue
        try:
            doc = job_document(ledger, meta.job_id)
        except JobNotFound:  # expired between the listing and now
            continue
        counts = doc["items"]
        done, total = counts["ok"] + counts["failed"], counts["total"]
        jobs.append({
            "job_id": meta.job_id, "kind": meta.kind, "state": doc["state"], "done": done,
            "failed": counts["failed"], "total": total, "progress": round(done / total, 4) if total else 0.0,
            "elapsed_s": doc["elapsed_s"], "items_per_s": doc["items_per_s"],
        })  # fmt: skip
    return jobs


def snapshot(ledger: Ledger, blob_budget_bytes: int | None = None) -> dict[str, Any]:
    """``{"at", "headline", "workers": [...], "totals": {stage: ...}, "queues": {queue: n}, "jobs": [...],
    "redis": {...}}``.

    ``headline`` counts items as the jobs do, each once; ``totals`` count stage passes; ``redis`` is its
    memory against ``maxmemory`` and the fetched bytes held against their budget (``Ledger.memory_report``).
    """
    now = time.time()
    workers = []
    for record in ledger.workers():
        view = worker_view(
            str(record.get("name")), record.get("slots") or [], record.get("io"),
            seen_at=float(record.get("seen_at", 0.0)), now=now, window_s=record.get("window_s"),
            recorded=record.get("recorded"),
        )  # fmt: skip
        workers.append({**view, "host": record.get("host"), "pid": record.get("pid")})
    return {
        "at": round(now, 3),
        "headline": headline(workers),
        "workers": workers,
        "totals": stage_totals(workers),
        "queues": ledger.queue_depths(QUEUES),
        "jobs": active_jobs(ledger),
        "redis": ledger.memory_report(blob_budget_bytes),
    }
