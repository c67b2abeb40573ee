"""Thin task bindings for the image job's stages and the reduce step.

Each task: decode the JSON message, call the stage in ``workers``, hand off to
the next queue. Redis trouble is retried with backoff (the batch is idempotent);
any other surprise records the batch's items as failed so the job still ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis
from celery import Task

from pipeline.core.aggregate import ItemResult
from pipeline.core.sources import Item
from pipeline.finalize import finalize_job
from pipeline.frontier import ACTIVE_CRAWLS
from tasks.app import app
from tasks.names import IMAGES_FETCH, IMAGES_TRANSFORM, JOB_FINALIZE
from tasks.signals import runtime
from workers import image_stages
from workers.image_stages import Fetched

log = logging.getLogger(__name__)
RETRY = {"autoretry_for": (redis.RedisError,), "retry_backoff": 1, "retry_backoff_max": 30,
         "retry_jitter": True, "max_retries": 30}  # fmt: skip


def guarded(job_id: str, items: Sequence[tuple[str, str]], work: Callable[[], None]) -> None:
    """Run ``work``; on a bug, fail the batch's items (first write wins) so the job ends."""
    try:
        work()
    except redis.RedisError:
        raise  # retried by Celery with backoff
    except Exception as exc:
        log.exception("batch failed unexpectedly", extra={"job_id": job_id})
        failures = [ItemResult.failure(i, src, "internal_error", f"{type(exc).__name__}: {exc}")
                    for i, src in items]  # fmt: skip
        _, finished = runtime().ledger.record(job_id, failures)
        if finished:
            finalize.delay(job_id)


def _pump_if_crawl(job_id: str) -> None:
    """A crawl's images free room in its window: let more of the crawl in."""
    if runtime().ledger.client.sismember(ACTIVE_CRAWLS, job_id):
        from tasks.crawl import pump_job

        pump_job(job_id)


@app.task(name=IMAGES_FETCH, bind=True, **RETRY)
def fetch(self: Task, job_id: str, items: list[list[str]], sent_at: float) -> None:
    batch = [Item.from_json(raw) for raw in items]

    def work() -> None:
        handoff, finished = image_stages.fetch_batch(runtime(), job_id, batch, time.time() - sent_at)
        if handoff:
            transform.apply_async((job_id, [h.to_json() for h in handoff], time.time()))
        if finished:
            finalize.delay(job_id)
        elif not handoff:
            _pump_if_crawl(job_id)

    guarded(job_id, [(i.id, i.src) for i in batch], work)


@app.task(name=IMAGES_TRANSFORM, bind=True, **RETRY)
def transform(self: Task, job_id: str, entries: list[list[Any]], sent_at: float) -> None:
    waited = time.time() - sent_at
    batch = [Fetched.from_json(raw) for raw in entries]
    batch = [Fetched(e.id, e.src, e.fetch_s, e.queue_s + waited) for e in batch]

    def work() -> None:
        _, finished = image_stages.transform_batch(runtime(), job_id, batch)
        if finished:
            finalize.delay(job_id)
        else:
            _pump_if_crawl(job_id)

    guarded(job_id, [(e.id, e.src) for e in batch], work)


@app.task(name=JOB_FINALIZE, bind=True, **RETRY)
def finalize(self: Task, job_id: str) -> None:
    rt = runtime()
    finalize_job(rt.ledger, job_id, rt.settings.retention_s)
