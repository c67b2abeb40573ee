"""Thin task binding for the scrape's page stage: the crawl's (``tasks.crawl.run_pages``) with the scrape's parser."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from celery import Task

from pipeline.kinds.crawl import CrawlJob
from pipeline.kinds.scrape import SCRAPE_PAGES_STAGE, ScrapeJob
from tasks.app import app
from tasks.crawl import run_pages
from tasks.flow import RETRY
from workers.page_parse import ParsedPage
from workers.scrape_parse import parse_for_scrape


def scrape_parser(job: CrawlJob) -> Callable[..., list[ParsedPage]]:
    """The pool function for a scrape's pages: the crawl's parse plus this job's extraction (a picklable partial)."""
    assert isinstance(job, ScrapeJob)
    return functools.partial(parse_for_scrape, job.extraction)


@app.task(name=SCRAPE_PAGES_STAGE.task, bind=True, **RETRY)
def pages(self: Task, job_id: str, entries: list[list[Any]], sent_at: float) -> None:
    run_pages(self, job_id, entries, sent_at, SCRAPE_PAGES_STAGE, scrape_parser)
