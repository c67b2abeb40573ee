"""Thin task bindings for the image stages (``workers.image_stages``).

Each task: decode the JSON message, call the stage, then hand off or advance
(``tasks.flow``).
"""

from __future__ import annotations

import time
from typing import Any

from celery import Task

from pipeline.core.sources import Item
from pipeline.kinds.images import FETCH_STAGE, TRANSFORM_STAGE
from tasks.app import app
from tasks.flow import RETRY, advance, guarded, hand_off
from tasks.runtime import runtime
from workers import image_stages
from workers.pool_batch import Handoff


def _label(job_id: str) -> str | None:
    """The ``kind`` of the job's image results (a crawl's are "image"), for a failed batch's items."""
    work = image_stages.live_images(runtime(), job_id)
    return work.label if work is not None else None


@app.task(name=FETCH_STAGE.task, bind=True, **RETRY)
def fetch(self: Task, job_id: str, items: list[list[str]], sent_at: float) -> None:
    batch = [Item.from_json(raw) for raw in items]

    def work() -> None:
        rt = runtime()
        if rt.transforms_fetched:  # no blobs, no second message: this worker's pool takes the bytes
            _, ended = image_stages.fetch_and_transform(rt, job_id, batch, time.time() - sent_at)
            advance(job_id, ended)
            return
        handoff, finished = image_stages.fetch_batch(rt, job_id, batch, time.time() - sent_at)
        if handoff and FETCH_STAGE.then:
            hand_off(FETCH_STAGE.then, job_id, [h.to_json() for h in handoff])
        else:
            advance(job_id, finished)

    guarded(job_id, [(i.id, i.src) for i in batch], work, kind=lambda: _label(job_id))


@app.task(name=TRANSFORM_STAGE.task, bind=True, **RETRY)
def transform(self: Task, job_id: str, entries: list[list[Any]], sent_at: float) -> None:
    waited = time.time() - sent_at
    batch = [Handoff.from_json(raw) for raw in entries]
    batch = [Handoff(e.id, e.src, e.fetch_s, e.queue_s + waited) for e in batch]

    def work() -> None:
        _, finished = image_stages.transform_batch(runtime(), job_id, batch)
        advance(job_id, finished)

    guarded(job_id, [(e.id, e.src) for e in batch], work, kind=lambda: _label(job_id))
