"""One scheduler replica: APScheduler says *when*, Redis decides *who* fires.

Why a ``BackgroundScheduler`` with a ``MemoryJobStore`` rebuilt from Redis,
and not APScheduler's ``RedisJobStore``: a 3.x job store must never be shared
between schedulers -- sharing one "will lead to incorrect scheduler behavior
like duplicate execution or the scheduler missing jobs", because APScheduler has
no interprocess locking or signalling (APScheduler FAQ; agronholm/apscheduler#231).
A RedisJobStore per replica would still have every replica run every job, and
pickles jobs besides. So each replica keeps its own in-memory copy of the
definitions, purely as a timer, and every fire time it reaches goes through one
atomic Lua claim in Redis (``claims.py``): the first replica moves the
schedule's cursor past that time, the others find it taken.

The cursor is also the catch-up point. When a replica (re)loads a schedule,
its APScheduler job starts at the first fire time after the cursor, which may
lie in the past: APScheduler then hands over the missed run times at once
(only the latest when ``coalesce`` is on -- the default, so a scheduler that was
down runs a schedule once, not in a burst), and ``FireHandler.fire`` applies the
misfire grace time that APScheduler's own executors would have applied.

Every ``PIPELINE_SCHEDULER_SYNC_S`` (1 s) the main thread renews this replica's
heartbeat, re-reads the definitions if their revision moved (so add, pause,
resume and remove reach running replicas without a restart; the claim itself
also refuses paused and removed schedules at once), and sweeps the pending
fires for ones to adopt: orphans of a dead replica, and fires that waited for
the previous job (overlap ``queue``). SIGTERM stops the loop; in-flight
submissions finish before the process exits.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from pipeline import health
from pipeline.config import Settings
from pipeline.ledger.connection import REDIS_TROUBLE, connect
from pipeline.producer import Producer
from pipeline.scheduler.claims import Claims, PendingFire
from pipeline.scheduler.definition import Schedule
from pipeline.scheduler.executor import FireExecutor
from pipeline.scheduler.firing import FireHandler
from pipeline.scheduler.store import ScheduleStore, now_ms
from pipeline.scheduler.triggers import from_ms, to_ms

log = logging.getLogger("pipeline.scheduler")
FIRE_THREADS = 4
MAX_INSTANCES = 1000  # overlap is decided in Redis; APScheduler must never drop a due fire itself
STOP_CHECK_S = 0.1
HEARTBEAT_MISSES = 5  # a replica silent for this many sync periods (at least 5 s) counts as dead


class SchedulerService:
    def __init__(self, settings: Settings, redis_url: str, owner: str) -> None:
        self.settings, self.owner = settings, owner
        self.client = connect(redis_url)
        self.store = ScheduleStore(self.client)
        self.claims = Claims(self.client)
        self.producer = Producer(settings, redis_url)
        self.fires = FireHandler(settings, self.producer, self.claims, owner)
        self.executor = FireExecutor(FIRE_THREADS)
        self.aps = BackgroundScheduler(
            timezone=UTC, jobstores={"default": MemoryJobStore()}, executors={"default": self.executor},
            job_defaults={"coalesce": settings.scheduler_coalesce, "max_instances": MAX_INSTANCES,
                          "misfire_grace_time": None},
        )  # fmt: skip
        self.heartbeat_ttl_s = max(5.0, HEARTBEAT_MISSES * settings.scheduler_sync_s)
        self._revision: str | None = None
        self._active: dict[str, str] = {}  # name -> definition JSON with an APScheduler job
        self._known: dict[str, Schedule] = {}  # every definition, paused ones too
        self._invalid: set[str] = set()  # definitions that do not load (reported once each)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._stale: set[str] = set()  # schedules to reload from their cursor (a fire hit a Redis error)

    # -- lifecycle ---------------------------------------------------------------------
    def run(self, stop: threading.Event, on_ready: Callable[[int, int], None]) -> None:
        """Serve until ``stop`` is set; ``on_ready(active, paused)`` once the schedules are loaded."""
        self.client.ping()
        try:
            self._beat()
            self._sync()
            self.aps.start()
            on_ready(len(self._active), len(self._known) - len(self._active))
            next_tick = time.monotonic() + self.settings.scheduler_sync_s
            # Short waits: SIGTERM may land on another thread, and then only wakes this one at its next check.
            while not stop.wait(min(STOP_CHECK_S, max(0.0, next_tick - time.monotonic()))):
                if time.monotonic() >= next_tick:
                    self.tick()
                    next_tick = time.monotonic() + self.settings.scheduler_sync_s
        finally:
            self.close()

    def tick(self) -> None:
        try:
            self._beat()
            self._sync()
            self._sweep()
        except REDIS_TROUBLE as exc:  # Redis restarting: keep the timers, try again next tick
            log.warning("scheduler %s cannot reach Redis: %s", self.owner, exc)

    def close(self) -> None:
        if self.aps.running:
            self.aps.shutdown(wait=True)  # in-flight submissions finish first
        with contextlib.suppress(*REDIS_TROUBLE):
            self.claims.stop_beating(self.owner)
        health.remove(self.settings.health_file)
        self.producer.close()
        self.client.close()

    def _beat(self) -> None:
        self.claims.beat(self.owner, {"schedules": len(self._active)}, self.heartbeat_ttl_s)
        health.touch(self.settings.health_file)  # after the beat reached Redis (the container healthcheck)

    # -- definitions -> APScheduler jobs ------------------------------------------------------
    def _sync(self) -> None:
        revision = self.store.revision()
        with self._locks_guard:
            stale, self._stale = self._stale, set()
        if revision == self._revision and not stale:
            return
        (definitions, invalid), paused = self.store.read(), self.store.paused()
        for name, problem in invalid.items():
            if name not in self._invalid:
                log.error("%s; it is skipped, the other schedules keep firing", problem.message)
        self._invalid = set(invalid)
        for name in stale & set(self._active):
            self._active[name] = ""  # differs from any definition: reloaded below, from its cursor
        for name in set(self._active) - set(definitions):
            self._unschedule(name, "removed schedule %s")
        self._known = definitions
        for name, schedule in definitions.items():
            if name in paused:
                if name in self._active:
                    self._unschedule(name, "paused schedule %s")
            elif self._active.get(name) != schedule.dumps():
                try:
                    self._schedule(schedule)
                except REDIS_TROUBLE:
                    raise
                except Exception:  # one unloadable definition must not stop the others
                    log.exception("cannot schedule %s", name)
        self._revision = revision  # only now: a sync cut short by Redis is redone at the next tick

    def _schedule(self, schedule: Schedule) -> None:
        cursor = self.store.state(schedule.name).cursor_ms or now_ms()
        first = schedule.trigger.next_after(cursor)
        if first is None:
            self._unschedule(schedule.name, "schedule %s has no fire times left")
            return
        self.aps.add_job(
            self._on_fire, trigger=schedule.trigger.build(), args=[schedule.name], id=schedule.name,
            name=schedule.name, replace_existing=True, next_run_time=from_ms(first),
            coalesce=schedule.policy(self.settings).coalesce, misfire_grace_time=None, max_instances=MAX_INSTANCES,
        )  # fmt: skip
        verb = "rescheduled" if schedule.name in self._active else "scheduled"
        self._active[schedule.name] = schedule.dumps()
        log.info("%s %s (%s), next fire %s", verb, schedule.name, schedule.trigger.describe(),
                 from_ms(first).strftime("%Y-%m-%dT%H:%M:%SZ"))  # fmt: skip

    def _unschedule(self, name: str, message: str) -> None:
        """Drop the schedule's timer (if it has one) and say why: ``message`` % name."""
        if self._active.pop(name, None) is not None and self.aps.get_job(name) is not None:
            self.aps.remove_job(name)
        log.info(message, name)

    def _lock_for(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(name, threading.Lock())

    def _on_fire(self, name: str, run_times: Sequence[datetime] = ()) -> None:
        """Called by FireExecutor on a fire thread with the due run times.

        (The default only satisfies APScheduler's check of ``args`` against the signature.)
        """
        schedule = self._known.get(name)
        if schedule is None:
            return
        try:
            with self._lock_for(name):
                self.fires.fire(schedule, [to_ms(moment) for moment in run_times])
        except REDIS_TROUBLE:
            # A fire time whose claim did not happen is still after the cursor: reloading the schedule
            # from the cursor at the next tick catches it up (per the coalescing policy). One that was
            # claimed is pending in Redis, and the sweep finishes it.
            with self._locks_guard:
                self._stale.add(name)
            raise

    # -- adopting pending fires ---------------------------------------------------------------
    def _sweep(self) -> None:
        pending = self.claims.pending()
        if not pending:
            return
        alive = self.claims.alive(fire.owner for fire in pending)
        for fire in pending:
            orphaned = fire.owner in ("", self.owner) or fire.owner not in alive
            schedule = self._known.get(fire.name)
            if not orphaned or schedule is None or not self.fires.reserve(fire.field):
                continue
            adopted = None
            try:
                adopted = self.claims.adopt(fire, self.owner)
                if adopted is not None:
                    self._announce(fire)
                    self.executor.run_soon(self._submit_adopted, schedule, adopted)  # releases it when done
            finally:
                if adopted is None:
                    self.fires.release(fire.field)

    def _announce(self, fire: PendingFire) -> None:
        when = from_ms(fire.fire_ms).strftime("%Y-%m-%dT%H:%M:%SZ")
        if fire.after:
            log.info("schedule %s: job %s has ended; submitting the fire at %s", fire.name, fire.after, when)
        elif fire.owner != self.owner:
            log.warning("schedule %s: adopting the fire at %s from %s, which stopped before submitting it",
                        fire.name, when, fire.owner)  # fmt: skip

    def _submit_adopted(self, schedule: Schedule, fire: PendingFire) -> None:
        with self._lock_for(schedule.name):
            self.fires.adopted(schedule, fire)
