"""Thin task binding for the crawl's page stage (``workers.crawl_stages``); ``run_pages`` serves every crawling kind."""

from __future__ import annotations

import time
from typing import Any

from celery import Task

from pipeline.kinds.base import Stage
from pipeline.kinds.crawl import PAGES_STAGE
from tasks.app import app
from tasks.flow import RETRY, advance, guarded, send
from tasks.holding import hold_more
from tasks.runtime import runtime
from workers import crawl_stages
from workers.crawl_session import PageEntry
from workers.crawl_stages import PageParser, crawl_parser


def _entries(raw: list[list[Any]], waited: float) -> list[PageEntry]:
    return [PageEntry(str(i), str(url), int(depth), waited) for i, url, depth in raw]


def run_pages(
    task: Task, job_id: str, entries: list[list[Any]], sent_at: float, stage: Stage, parser: PageParser
) -> None:
    """A batch of a crawling kind's pages (``stage``), topping itself up from the job's frontier."""
    batch = _entries(entries, time.time() - sent_at)
    held = [(e.id, e.url) for e in batch]  # grows with refills: a bug fails them all, so the job still ends
    task_id = task.request.id  # refills run on other threads, where task.request is not this one

    def refill(wanted: int) -> list[PageEntry]:
        """Claim pages this batch can start now; anything else claimed (images) is sent."""
        taken: list[PageEntry] = []
        others = []
        for claimed in runtime().frontier.claim(job_id, now=time.time(), limit=wanted):
            if claimed.stage == stage:
                taken += _entries(claimed.items, 0.0)
            else:
                others.append(claimed)
        send(others)
        held.extend((e.id, e.url) for e in taken)
        hold_more(task_id, job_id, [e.id for e in taken])  # taken over if this worker dies
        return taken

    def work() -> None:
        _, finished = crawl_stages.crawl_batch(runtime(), job_id, batch, refill, parser)
        advance(job_id, finished)

    guarded(job_id, held, work, kind=lambda: "page")


@app.task(name=PAGES_STAGE.task, bind=True, **RETRY)
def pages(self: Task, job_id: str, entries: list[list[Any]], sent_at: float) -> None:
    run_pages(self, job_id, entries, sent_at, PAGES_STAGE, crawl_parser)
