"""Submitting jobs: validate, register in the ledger, send what may run, seal.

The producer never imports worker code: it builds a sending-only Celery app
and sends tasks by name. It knows no job kind: it asks the spec's kind to
resolve it and to list its items, and the frontier what to send. Items are
admitted a chunk at a time and sent a window at a time, so a 100,000-item job
keeps the producer's memory flat and never fills the queues ahead of another
job; the ledger's item set dedups sources listed twice.

A job that runs the user's own code (``JobSpec.plugins``) is admitted only
when a live worker can import every plugin it names: the workers are asked
(``tasks.control``), not the submitting machine. No live worker to ask: the job
is admitted with a warning (nothing can be verified, and the job waits for a
worker anyway); a worker that cannot import the plugin then fails those items
with the reason ``plugin_unavailable``.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable
from pathlib import Path

from celery import Celery
from kombu.exceptions import OperationalError

from pipeline.config import Settings
from pipeline.core.errors import BrokerUnavailable, RedisFull, UsageError
from pipeline.frontier import Batch, Frontier
from pipeline.kinds import JobSpec, kind_named
from pipeline.ledger import Ledger
from pipeline.ledger.connection import connect, redact
from pipeline.ledger.memory import FULL_HINT
from pipeline.output_dirs import check_not_another_jobs, check_output_dir
from pipeline.plugins import PluginError
from tasks.control import Answers, ask_importable
from tasks.factory import create_app
from tasks.names import JOB_FINALIZE

log = logging.getLogger(__name__)


def new_job_id() -> str:
    """Sortable and short enough to type: ``20261123-081502-3fa9c1``."""
    return time.strftime("%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(3)


class Producer:
    def __init__(self, settings: Settings, redis_url: str) -> None:
        self.settings, self.url = settings, redis_url
        self.ledger = Ledger(connect(redis_url))
        self.frontier = Frontier(self.ledger, settings)
        self._app: Celery | None = None

    @property
    def app(self) -> Celery:
        if self._app is None:
            self._app = create_app(self.settings, self.url)
        return self._app

    def close(self) -> None:
        self.ledger.close()
        if self._app is not None:
            self._app.close()

    def _send(self, task: str, args: list[object]) -> None:
        try:
            self.app.send_task(task, args=args, retry=True, retry_policy={"max_retries": 3})
        except OperationalError as exc:
            if "maxmemory" in str(exc):  # kombu's wrapping of redis-py's OutOfMemoryError
                raise RedisFull(f"Redis at {redact(self.url)} is full: cannot publish; {FULL_HINT}") from None
            raise BrokerUnavailable(f"broker unreachable: cannot publish to {redact(self.url)}: {exc}") from None

    def _send_batches(self, batches: Iterable[Batch]) -> None:
        for batch in batches:
            self._send(batch.task, batch.args)

    def _advance(self, job_id: str) -> None:
        self._send_batches(self.frontier.claim(job_id, now=time.time()))

    def output_dir(self, spec: JobSpec, job_id: str) -> Path:
        return (spec.output_dir or self.settings.outputs / job_id).expanduser().resolve()

    def check_plugins(self, spec: JobSpec) -> list[str]:
        """Ask the live workers whether they can import each plugin ``spec`` names.

        Raises ``PluginError`` (exit 2) naming the plugin and the workers' reason
        when none that answered can; returns warnings (one line each) for what
        could not be verified or works on only some workers.
        """
        wanted = spec.plugins()
        if not wanted:
            return []
        live = [str(worker.get("name", "")) for worker in self.ledger.workers()]
        if not live:
            return [f"{role} {ref!r} not checked: no live worker to ask (a worker that cannot import it "
                    "fails those items with plugin_unavailable)" for role, ref in wanted]  # fmt: skip
        warnings: list[str] = []
        for role, ref in wanted:
            answers = ask_importable(self.app, role, ref, live)
            warnings += _verdict(answers)
        return warnings

    def submit(
        self, spec: JobSpec, *, schedule: str | None = None, job_id: str | None = None, plugins_checked: bool = False
    ) -> str:
        """Submit a job of any kind; returns its id.

        ``schedule`` links the job to the schedule that fired it; ``job_id`` is
        the id the scheduler claimed for the fire (so an adopted fire reuses it).
        Usage errors (a bad op chain, no sources, a plugin no live worker can
        import) are raised before anything is created; ``plugins_checked``: the
        caller already asked (``check_plugins``) and showed the warnings.
        """
        kind = kind_named(spec.kind)
        job_id = job_id or new_job_id()
        output_dir = self.output_dir(spec, job_id)
        check_output_dir(output_dir, self.settings.output_root)
        job = kind.resolve(spec, self.settings, output_dir)
        if not plugins_checked:
            for warning in self.check_plugins(spec):
                log.warning("%s", warning)
        chunks = kind.chunks(spec)
        first = next(chunks)  # a source that names nothing fails here, before the job exists
        owner = self.ledger.claim_output_dir(str(output_dir), job_id, schedule=schedule, overwrite=spec.overwrite)
        if not spec.overwrite:
            check_not_another_jobs(output_dir, job_id, schedule, owner)
        fields = kind.ledger_fields(spec, self.settings) | ({"schedule": schedule} if schedule else {})
        self.ledger.create_job(job_id, kind.name, kind.job_json(job), str(output_dir), **fields)
        self.ledger.activate(job_id)
        kind.admit(self.ledger, job_id, first)
        self._advance(job_id)
        for chunk in chunks:
            kind.admit(self.ledger, job_id, chunk)
            self._advance(job_id)
        if self.ledger.seal(job_id):
            self._send(JOB_FINALIZE, [job_id])
        else:
            self._advance(job_id)
        return job_id

    def retry(self, job_id: str) -> int:
        """Re-run only the failed items of a finished job; returns how many were put back.

        The ledger takes them out of the aggregate and back into the job's
        frontier (one Lua call), so each counts once again when it is recorded
        (ok if it now works, failed if not), and they are leased and sent like
        any other item: a send cut short is completed by the workers' ticker.
        """
        meta = self.ledger.meta(job_id)
        kind = kind_named(meta.kind)
        if not kind.retryable:
            raise UsageError(f"a {kind.name} job cannot be retried item by item; submit it again")
        failed = [result.id for result in self.ledger.results(job_id, failed_only=True)]
        taken = self.ledger.retry(job_id, failed)
        if taken:
            self._advance(job_id)
        return taken

    def cancel(self, job_id: str) -> bool:
        cancelled = self.ledger.cancel(job_id)
        if cancelled:
            self._send(JOB_FINALIZE, [job_id])
        return cancelled


def _verdict(answers: Answers) -> list[str]:
    """Refuse a plugin no answering worker can import; warn when only some can, or none answered."""
    what = f"{answers.role} {answers.ref!r}"
    if not answers.able and answers.unable:
        by_reason: dict[str, list[str]] = {}
        for node, reason in answers.unable.items():
            by_reason.setdefault(reason, []).append(node)
        said = "; ".join(f"{', '.join(nodes)}: {reason}" for reason, nodes in by_reason.items())
        raise PluginError(f"{what} cannot be imported by any live worker ({said})")
    if not answers.able:
        return [f"{what} not checked: no live worker answered ({', '.join(answers.silent)})"]
    return [f"{what} cannot be imported on {node}: {reason} (its items there fail with plugin_unavailable)"
            for node, reason in answers.unable.items()]  # fmt: skip
