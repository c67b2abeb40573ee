"""Turning fire times into jobs: apply the policies, claim in Redis, submit, record the outcome."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from pipeline.config import Settings
from pipeline.core.errors import JobNotFound, PipelineError
from pipeline.ledger.connection import REDIS_TROUBLE
from pipeline.producer import Producer, new_job_id
from pipeline.scheduler import keys
from pipeline.scheduler.claims import Claim, Claims, PendingFire
from pipeline.scheduler.definition import Schedule
from pipeline.scheduler.triggers import from_ms

log = logging.getLogger("pipeline.scheduler")


def _when(ms: int) -> str:
    return from_ms(ms).strftime("%Y-%m-%dT%H:%M:%SZ")


class FireHandler:
    """One per scheduler replica, shared by its fire threads."""

    def __init__(self, settings: Settings, producer: Producer, claims: Claims, owner: str) -> None:
        self.settings, self.producer, self.claims, self.owner = settings, producer, claims, owner
        self._busy: set[str] = set()  # pending fields this process is submitting right now
        self._busy_lock = threading.Lock()
        self._submit_lock = threading.Lock()  # one submission at a time through the one Producer (and Celery app)

    def reserve(self, field: str) -> bool:
        """Mark a pending fire as ours to work on (so the sweep leaves it alone); False if it already is."""
        with self._busy_lock:
            if field in self._busy:
                return False
            self._busy.add(field)
            return True

    def release(self, field: str) -> None:
        with self._busy_lock:
            self._busy.discard(field)

    @contextmanager
    def _reserved(self, field: str) -> Iterator[None]:
        try:
            yield
        finally:
            self.release(field)

    def fire(self, schedule: Schedule, fire_times: Sequence[int]) -> None:
        """Handle due fire times (epoch ms, ascending) of one schedule; the caller serializes per schedule."""
        policy = schedule.policy(self.settings)
        for fire_ms in fire_times:
            # APScheduler's executors would drop a late run time; ours hands it over, so the grace is applied here.
            late = policy.misfire_grace_s is not None and time.time() - fire_ms / 1000 > policy.misfire_grace_s
            field = keys.pending_field(schedule.name, fire_ms)
            if not self.reserve(field):
                continue  # another thread of this process has it already
            with self._reserved(field):
                claim = self.claims.claim(schedule.name, fire_ms, owner=self.owner, job_id=new_job_id(),
                                          overlap=policy.overlap, late=late)  # fmt: skip
                self._report(schedule, fire_ms, claim)
                if claim.pending is not None:
                    self._submit(schedule, claim.pending)

    def adopted(self, schedule: Schedule, fire: PendingFire) -> None:
        """Submit a fire adopted by the sweep (already reserved by the caller)."""
        with self._reserved(fire.field):
            self._submit(schedule, fire)

    def _report(self, schedule: Schedule, fire_ms: int, claim: Claim) -> None:
        name, when = schedule.name, _when(fire_ms)
        if claim.status in ("taken", "paused", "gone"):
            log.debug("fire of %s at %s: %s", name, when, claim.status)
            return
        if claim.previous_ms:
            skipped = schedule.trigger.count_between(claim.previous_ms, fire_ms)
            if skipped:
                log.info("schedule %s catches up: %d earlier fire times coalesced into the one at %s",
                         name, skipped, when)  # fmt: skip
        if claim.status == "missed":
            log.warning("schedule %s missed its fire at %s (later than the misfire grace time)", name, when)
        elif claim.status == "skipped":
            why = f"previous job {claim.detail} still running" if claim.detail else "an earlier fire is waiting"
            log.info("schedule %s skipped its fire at %s: %s", name, when, why)
        elif claim.status == "deferred":
            log.info("schedule %s: fire at %s waits for job %s to end", name, when, claim.detail)

    def _submit(self, schedule: Schedule, fire: PendingFire) -> None:
        try:
            if self._already_submitted(fire.job_id):
                log.warning("schedule %s: job %s of the fire at %s was already submitted; recording it",
                            schedule.name, fire.job_id, _when(fire.fire_ms))  # fmt: skip
            else:
                with self._submit_lock:
                    self.producer.submit(schedule.job, schedule=schedule.name, job_id=fire.job_id)
        except REDIS_TROUBLE:
            raise  # transient: the entry stays pending, and the sweep retries it
        except PipelineError as exc:  # e.g. the sources are gone: this fire fails, the next may not
            log.error("schedule %s: fire at %s failed: %s", schedule.name, _when(fire.fire_ms), exc.message)
            self.claims.commit(fire, "failed", exc.message)
            return
        except Exception as exc:  # a bug must not turn into a retry every second
            log.exception("schedule %s: fire at %s failed", schedule.name, _when(fire.fire_ms))
            self.claims.commit(fire, "failed", f"internal error: {type(exc).__name__}: {exc}")
            return
        if self.claims.commit(fire, "submitted"):
            log.info("schedule %s fired at %s: job %s", schedule.name, _when(fire.fire_ms), fire.job_id)
        else:
            log.warning("schedule %s: job %s submitted, but the schedule was removed or the fire adopted meanwhile",
                        schedule.name, fire.job_id)  # fmt: skip

    def _already_submitted(self, job_id: str) -> bool:
        """True if a previous owner registered all the job's items (the ledger's ``total``, written by the
        producer's seal of an image job or seed of a crawl): then it must be recorded, not submitted again.
        A job created but not yet complete is submitted again under the same id; the ledger's item set
        enqueues only items it has not seen."""
        try:
            return self.producer.ledger.meta(job_id).total is not None
        except JobNotFound:
            return False
