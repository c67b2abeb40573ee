"""Moving a crawl forward: claim items from the Redis frontier and send them as tasks.

``pump`` is called by the producer after seeding, by a worker after every batch
it finishes, and by every worker's ticker every few seconds (which is what
re-sends items whose lease expired because their message or worker was lost).
A crawl batch also tops itself up with it while it runs, claiming only the
pages it can start (``limit``). Claims are atomic in Redis, so any number of
pumps can run at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from pipeline.core import batching
from pipeline.ledger import Ledger, job_key

ACTIVE_CRAWLS = "pl:crawls"  # SET of job ids (crawls and image jobs) that may need pumping
Send = Callable[[str, list[Any]], None]


def batches(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def pump(ledger: Ledger, job_id: str, send: Send, *, lease_s: float, window: int, batch_size: int,
         page_task: str, image_task: str, file_task: str, now: float, limit: int = 0) -> int:  # fmt: skip
    """Claim what may run now (at most ``limit`` pages, if not 0) and send it; returns the number of items sent.

    Kinds: ``p`` crawl pages, ``i`` image URLs (fetch first), ``f`` local image
    files (straight to transform). A job's own ``batch`` field, if set, wins;
    an image job marked ``adaptive`` sizes its file batches (and its window)
    from its measured cost per item (``pipeline.core.batching``).
    """
    pipe = ledger.client.pipeline(transaction=False)
    pipe.hmget(job_key(job_id), ["batch", "adaptive", "kind"])
    pipe.hmget(job_key(job_id, "stats"), batching.STAT_FIELDS)
    (fixed, adaptive, kind), stats = pipe.execute()
    size = file_size = int(fixed or batch_size)
    if adaptive:
        file_size = batching.adaptive_batch(size, dict(zip(batching.STAT_FIELDS, stats, strict=True)))
    claimed = ledger.dispatch(
        job_id, lease_s, window, min_window=batching.window_for(0, file_size) if adaptive else 0,
        batch=file_size if kind == "images" else (size if limit else 1), limit=limit,
    )  # fmt: skip
    if not claimed:
        return 0
    pages = [[item_id, url, depth] for item_id, url, depth, kind in claimed if kind == "p"]
    images = [[item_id, url] for item_id, url, _, kind in claimed if kind == "i"]
    files = [[item_id, src, 0.0, 0.0] for item_id, src, _, kind in claimed if kind == "f"]
    for task, items, per_task in ((page_task, pages, size), (image_task, images, size), (file_task, files, file_size)):
        for chunk in batches(items, per_task):
            send(task, [job_id, chunk, now])
    return len(claimed)


def active_crawls(ledger: Ledger) -> list[str]:
    """Crawl jobs still marked active; ones whose record expired are dropped from the set."""
    active = []
    for job_id in ledger.client.smembers(ACTIVE_CRAWLS):
        if ledger.client.exists(job_key(job_id)):
            active.append(str(job_id))
        else:
            ledger.client.srem(ACTIVE_CRAWLS, job_id)
    return active


def page_export(result_json: str) -> str:
    """One line of ``pages.jsonl``: what a user wants to know about a crawled URL."""
    raw = json.loads(result_json)
    meta = raw.get("meta", {})
    line = {"url": raw.get("source"), "ok": raw.get("ok"), "kind": raw.get("kind"), **meta}
    if not raw.get("ok"):
        line["reason"] = raw.get("reason")
    return json.dumps(line)
