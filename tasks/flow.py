"""What every stage task does around its work: retries, failing a batch on a bug, and what runs next.

After a batch, a task either hands its output to the next stage of the same
items (``hand_off``), or ends the job (the reduce step, ``finalize``), or asks
the frontier for whatever the job may run now and sends it (``advance``). The
ticker on every worker advances every active job every few seconds, which is
what re-sends items whose lease ran out (a lost message, a dead worker).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import redis
from celery import Task

from pipeline.core.errors import BrokerUnavailable
from pipeline.finalize import finalize_job
from pipeline.frontier import Batch
from tasks.app import app
from tasks.crashes import crashed_batch, no_kind
from tasks.names import JOB_FINALIZE
from tasks.redis_full import patiently, torn_channel
from tasks.runtime import runtime

log = logging.getLogger(__name__)
# Redis trouble is retried with backoff: a batch is idempotent (the ledger's first write wins).
RETRY = {"autoretry_for": (redis.RedisError, BrokerUnavailable), "retry_backoff": 1, "retry_backoff_max": 30,
         "retry_jitter": True, "max_retries": 30}  # fmt: skip


def _publish(task: str, args: list[Any]) -> None:
    """Send a task; while Redis is full, wait and retry (``tasks.redis_full``) rather than drop the batch."""
    patiently(f"sending {task}", lambda: app.send_task(task, args=args), runtime().redis_memory_figures,
              also=torn_channel)  # fmt: skip


def send(batches: Iterable[Batch]) -> None:
    for batch in batches:
        _publish(batch.task, batch.args)


def advance(job_id: str, finished: bool) -> None:
    """After a batch: end the job if it just finished, else send what may run now."""
    if finished:
        _publish(JOB_FINALIZE, [job_id])
    else:
        send(runtime().frontier.claim(job_id, now=time.time()))


def hand_off(task: str, job_id: str, items: list[list[Any]]) -> None:
    """Pass a batch's output straight to the next stage of the same items (fetch -> transform)."""
    _publish(task, [job_id, items, time.time()])


def guarded(
    job_id: str,
    items: Sequence[tuple[str, str]],
    work: Callable[[], None],
    kind: Callable[[], str | None] = no_kind,
) -> None:
    """Run ``work``; on a bug, fail the batch's items (first write wins) so the job ends.

    A full Redis is not a bug: the batch waits and runs again (``patiently``; it is idempotent).
    ``kind`` names what the items are (a crawl's ``page``/``image``), asked only on failure, so
    the job's document counts them where they belong (a crawl's pages failed, not unnamed items).
    """
    try:
        patiently(f"a batch of job {job_id}", work, runtime().redis_memory_figures)
    except (redis.RedisError, BrokerUnavailable):
        raise  # retried by Celery with backoff
    except Exception as exc:
        log.exception("batch failed unexpectedly", extra={"job_id": job_id})
        _, finished = runtime().ledger.record(job_id, crashed_batch(job_id, items, exc, kind))
        if finished:
            _publish(JOB_FINALIZE, [job_id])


def advance_all() -> None:
    """The ticker's job: advance every active job (re-sends expired leases)."""
    rt = runtime()
    for job_id in rt.ledger.active_jobs():
        send(rt.frontier.claim(job_id, now=time.time()))


@app.task(name=JOB_FINALIZE, bind=True, **RETRY)
def finalize(self: Task, job_id: str) -> None:
    rt = runtime()
    finalize_job(rt.ledger, job_id, rt.settings.retention_s, rt.settings.output_root)
    rt.blobs.delete_job(job_id)  # bytes of re-delivered duplicates, if any: nothing will read them now
