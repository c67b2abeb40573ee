"""The Celery side of the takeover: tasks mark their items as held, the ticker sweeps dead holders.

A batch task (fetch, transform, crawl pages) marks its items held by this
worker when it starts (``task_prerun``) and releases them when it ends
(``task_postrun``); a crawl session that tops itself up adds what it took
(``hold_more``). A task that is retried (Redis trouble) leaves them held by
this worker until the retry starts, wherever it does. The ticker (``tick``) first expires the leases held by
dead workers, then advances every job, so what a dead worker held is re-sent in the same
tick (see ``workers.takeover``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from celery import signals

from pipeline.kinds import stages
from pipeline.ledger.connection import REDIS_TROUBLE
from tasks.flow import advance_all
from tasks.runtime import runtime

log = logging.getLogger(__name__)
BATCH_TASKS = frozenset(stages())  # every stage of every kind takes (job_id, items, sent_at)
_held: dict[str, tuple[str, list[str]]] = {}  # task id -> (job id, item ids held for it)
_lock = threading.Lock()


def _batch(task: Any, args: Sequence[Any] | None) -> tuple[str, list[str]] | None:
    """(job id, item ids) of a batch task's arguments ``[job_id, [[id, ...], ...], sent_at]``."""
    if getattr(task, "name", None) not in BATCH_TASKS or not args or len(args) < 2:
        return None
    try:
        return str(args[0]), [str(entry[0]) for entry in args[1]]
    except (TypeError, IndexError, KeyError):
        return None  # a malformed message fails in the task itself, with a clear error


@signals.task_prerun.connect
def hold_batch(sender: Any = None, task_id: str = "", args: Sequence[Any] | None = None, **_: Any) -> None:
    batch = _batch(sender, args)
    if batch is None:
        return
    job_id, ids = batch
    with _lock:
        _held[task_id] = (job_id, list(ids))
    try:
        runtime().takeover.hold(job_id, ids)
    except REDIS_TROUBLE as exc:  # the lease still brings them back, later
        log.warning("cannot mark batch held: %s", exc, extra={"job_id": job_id})


def hold_more(task_id: str, job_id: str, item_ids: Sequence[str]) -> None:
    """A running crawl session took more pages: held by this worker too, released with the batch."""
    if not item_ids:
        return
    with _lock:
        entry = _held.setdefault(task_id, (job_id, []))
        entry[1].extend(item_ids)
    try:
        runtime().takeover.hold(job_id, item_ids)
    except REDIS_TROUBLE as exc:
        log.warning("cannot mark pages held: %s", exc, extra={"job_id": job_id})


@signals.task_postrun.connect
def release_batch(task_id: str = "", state: str | None = None, **_: Any) -> None:
    with _lock:
        entry = _held.pop(task_id, None)
    if entry is None or state == "RETRY":  # held until the retry starts (and its worker holds them)
        return
    job_id, ids = entry
    try:
        runtime().takeover.release(job_id, ids)
    except REDIS_TROUBLE as exc:  # harmless: a sweep finds them recorded, or this worker alive
        log.debug("cannot release batch: %s", exc)


def tick() -> None:
    """Every few seconds on every worker: take over dead workers' items, then advance every active job."""
    rt = runtime()
    rt.takeover.sweep(rt.ledger.active_jobs())
    advance_all()
