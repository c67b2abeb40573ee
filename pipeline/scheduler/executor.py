"""An APScheduler executor that passes the fire times themselves to the fire function.

APScheduler 3's executors run ``job.func(*job.args)`` once per due run time
(``apscheduler.executors.base.run_job``) and never say which run time it was,
but claiming a fire time needs exactly that. This executor calls
``job.func(*job.args, run_times)`` on a thread pool instead.

Bypassing ``run_job`` also bypasses its misfire check: APScheduler's
``misfire_grace_time`` is enforced only there, so our jobs carry
``misfire_grace_time=None`` and the fire function applies the grace time itself
(``firing.FireHandler.fire``). Coalescing still happens before the executor (the
scheduler hands over only the latest run time when ``coalesce`` is set), and
``max_instances`` is set high because overlap is decided in Redis, per
schedule and across replicas, not per process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from functools import partial
from typing import Any

from apscheduler.executors.base import BaseExecutor

log = logging.getLogger(__name__)


class FireExecutor(BaseExecutor):  # type: ignore[misc]
    def __init__(self, threads: int = 4) -> None:
        super().__init__()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="fire")

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        func: Callable[..., None] = job.func
        future = self._pool.submit(func, *job.args, list(run_times))
        future.add_done_callback(partial(self._finished, job.id))

    def _finished(self, job_id: str, future: Future[None]) -> None:
        exc = future.exception()
        if exc is None:
            self._run_job_success(job_id, [])
        else:
            self._run_job_error(job_id, exc, exc.__traceback__)

    def run_soon(self, func: Callable[..., None], *args: Any) -> None:
        """Run other fire work (an adopted fire) on the same pool, so shutdown waits for it too."""
        self._pool.submit(func, *args).add_done_callback(_log_failure)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait)


def _log_failure(future: Future[None]) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("fire work failed: %s", exc, exc_info=exc)
