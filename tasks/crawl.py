"""Thin task bindings for crawl jobs, and the pump that keeps a crawl moving."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from celery import Task

from pipeline.frontier import active_crawls, pump
from tasks.app import app
from tasks.holding import hold_more
from tasks.images import RETRY, finalize, guarded
from tasks.names import CRAWL_PAGES, IMAGES_FETCH, IMAGES_TRANSFORM
from tasks.signals import runtime
from workers import crawl_stages
from workers.crawl_stages import PageEntry


def _send(name: str, args: list[Any]) -> None:
    app.send_task(name, args=args)


def pump_job(job_id: str, keep: Callable[[list[list[Any]]], list[list[Any]]] | None = None, limit: int = 0) -> int:
    """Send whatever the job's frontier may run now (safe from any number of workers).

    A crawl batch topping itself up passes ``limit`` (claim no more than that)
    and ``keep``, which takes pages for the batch and returns those it left.
    """
    rt = runtime()

    def send(name: str, args: list[Any]) -> None:
        if keep is not None and name == CRAWL_PAGES:
            args = [args[0], keep(args[1]), *args[2:]]
        if args[1]:
            _send(name, args)

    return pump(rt.ledger, job_id, send, lease_s=rt.settings.visibility_timeout_s, window=rt.settings.job_window,
                batch_size=rt.settings.batch_size, page_task=CRAWL_PAGES, image_task=IMAGES_FETCH,
                file_task=IMAGES_TRANSFORM, now=time.time(), limit=limit)  # fmt: skip


def _entries(raw: list[list[Any]], waited: float) -> list[PageEntry]:
    return [PageEntry(str(i), str(url), int(depth), waited) for i, url, depth in raw]


def pump_all() -> None:
    """The ticker's job: re-pump every active job, crawl or images (re-sends expired leases)."""
    for job_id in active_crawls(runtime().ledger):
        pump_job(job_id)


@app.task(name=CRAWL_PAGES, bind=True, **RETRY)
def pages(self: Task, job_id: str, entries: list[list[Any]], sent_at: float) -> None:
    batch = _entries(entries, time.time() - sent_at)
    held = [(e.id, e.url) for e in batch]  # grows with refills: a bug fails them all, so the job still ends
    task_id = self.request.id  # refills run on other threads, where self.request is not this one

    def refill(wanted: int) -> list[PageEntry]:
        taken: list[list[Any]] = []

        def keep(offered: list[list[Any]]) -> list[list[Any]]:
            room = wanted - len(taken)
            taken.extend(offered[:room])
            return offered[room:]

        pump_job(job_id, keep, limit=wanted)  # what this batch can start; the rest stays for the others
        held.extend((str(i), str(url)) for i, url, _ in taken)
        hold_more(task_id, job_id, [str(i) for i, _, _ in taken])  # taken over if this worker dies
        return _entries(taken, 0.0)

    def work() -> None:
        _, finished = crawl_stages.crawl_batch(runtime(), job_id, batch, refill)
        if finished:
            finalize.delay(job_id)
        else:
            pump_job(job_id)

    guarded(job_id, held, work)
