"""What `pipeline top` shows, read straight from Redis (no Flower needed).

Per-core figures come from the workers' heartbeat records (``workers.heartbeat``),
queue depths from the broker's lists, active jobs and their progress from the
ledger. One ``snapshot`` is a handful of Redis round trips.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pipeline.core.errors import JobNotFound
from pipeline.ledger import Ledger
from pipeline.monitor.cores import headline, stage_totals, worker_view
from tasks.names import QUEUES
from workers.heartbeat import read_workers

# kombu's Redis transport keeps one list per queue and priority step: NAME for
# priority 0, NAME + "\x06\x16" + step for the others. Flower's broker page
# sums them the same way (flower/utils/broker.py, RedisBase).
PRIORITY_SEP = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)
JOBS_SCANNED = 100  # active jobs are looked for among this many most recent ones


def queue_depths(client: Any, queues: Sequence[str] = QUEUES) -> dict[str, int]:
    """Messages waiting in each queue (not those a worker holds unacknowledged)."""
    pipe = client.pipeline()
    for queue in queues:
        for step in PRIORITY_STEPS:
            pipe.llen(queue if step == 0 else f"{queue}{PRIORITY_SEP}{step}")
    lengths = pipe.execute()
    per_queue = len(PRIORITY_STEPS)
    return {queue: sum(lengths[i * per_queue : (i + 1) * per_queue]) for i, queue in enumerate(queues)}


def active_jobs(ledger: Ledger, scanned: int = JOBS_SCANNED) -> list[dict[str, Any]]:
    """Queued and running jobs, newest first, with progress (``done`` of ``total``)."""
    jobs = []
    for meta in ledger.recent_jobs(scanned):
        if meta.is_final:
            continue
        try:
            doc = ledger.document(meta.job_id)
        except JobNotFound:  # expired between the listing and now
            continue
        counts = doc.get("items") or doc["images"]  # crawl jobs count all their items under "items"
        done, total = counts["ok"] + counts["failed"], counts["total"]
        jobs.append({
            "job_id": meta.job_id, "kind": meta.kind, "state": doc["state"], "done": done,
            "failed": counts["failed"], "total": total, "progress": round(done / total, 4) if total else 0.0,
            "elapsed_s": doc["elapsed_s"], "items_per_s": doc["items_per_s"],
        })  # fmt: skip
    return jobs


def snapshot(ledger: Ledger) -> dict[str, Any]:
    """``{"at", "headline", "workers": [...], "totals": {stage: ...}, "queues": {queue: n}, "jobs": [...]}``.

    ``headline`` counts items as the jobs do, each once; ``totals`` count stage passes.
    """
    client = ledger.client
    now = time.time()
    workers = []
    for record in read_workers(client):
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
        "queues": queue_depths(client),
        "jobs": active_jobs(ledger),
    }
