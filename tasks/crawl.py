"""Thin task bindings for crawl jobs, and the pump that keeps a crawl moving."""

from __future__ import annotations

import time
from typing import Any

from celery import Task

from pipeline.frontier import active_crawls, pump
from tasks.app import app
from tasks.images import RETRY, finalize, guarded
from tasks.names import CRAWL_PAGES, IMAGES_FETCH, IMAGES_TRANSFORM
from tasks.signals import runtime
from workers import crawl_stages
from workers.crawl_stages import PageEntry


def _send(name: str, args: list[Any]) -> None:
    app.send_task(name, args=args)


def pump_job(job_id: str) -> int:
    """Send whatever the job's frontier may run now (safe from any number of workers)."""
    rt = runtime()
    return pump(rt.ledger, job_id, _send, lease_s=rt.settings.visibility_timeout_s, window=rt.settings.job_window,
                batch_size=rt.settings.batch_size, page_task=CRAWL_PAGES, image_task=IMAGES_FETCH,
                file_task=IMAGES_TRANSFORM, now=time.time())  # fmt: skip


def pump_all() -> None:
    """The ticker's job: re-pump every active job, crawl or images (re-sends expired leases)."""
    for job_id in active_crawls(runtime().ledger):
        pump_job(job_id)


@app.task(name=CRAWL_PAGES, bind=True, **RETRY)
def pages(self: Task, job_id: str, entries: list[list[Any]], sent_at: float) -> None:
    waited = time.time() - sent_at
    batch = [PageEntry(str(i), str(url), int(depth), waited) for i, url, depth in entries]

    def work() -> None:
        _, finished = crawl_stages.crawl_batch(runtime(), job_id, batch)
        if finished:
            finalize.delay(job_id)
        else:
            pump_job(job_id)

    guarded(job_id, [(e.id, e.url) for e in batch], work)
