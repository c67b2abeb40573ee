"""Several real `pipeline scheduler` processes on one Redis: every fire time becomes exactly one outcome.

Schedules tick every second. Each test reads back what Redis holds: the
schedule's history (one entry per fire time: submitted, skipped, missed) and
the ledger's jobs linked to the schedule. Exactly once means both: no fire time
twice in the history, no gap between consecutive fire times, and exactly one
ledger job per `submitted` entry. A session worker runs the one-image jobs, so
most ticks find the previous job finished and submit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from pipeline.cluster import WorkerProcess
from pipeline.config import Settings
from pipeline.ledger import Ledger
from pipeline.ledger.connection import connect
from pipeline.producer import Producer, new_job_id
from pipeline.scheduler import keys
from pipeline.scheduler.claims import Claims
from pipeline.scheduler.store import ScheduleStore, now_ms
from tests.helpers import make_images, wait_until
from tests.integration.schedulers import (
    SchedulerProc,
    assert_one_outcome_per_tick,
    define,
    scheduled_jobs,
    scheduler_env,
    submitted,
    wipe_schedules,
)

pytestmark = pytest.mark.slow
Start = Callable[[str], SchedulerProc]


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = connect(redis_url)
    wipe_schedules(client)
    yield client
    wipe_schedules(client)
    client.close()


@pytest.fixture
def store(client: redis.Redis) -> ScheduleStore:
    return ScheduleStore(client)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    make_images(tmp_path / "photos", 1, size=(64, 48))
    return tmp_path


@pytest.fixture
def start(redis_url: str) -> Iterator[Start]:
    """Start schedulers by name; any still running at the end are stopped."""
    started: list[SchedulerProc] = []

    def start(name: str) -> SchedulerProc:
        proc = SchedulerProc.start(name, scheduler_env(redis_url))
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def add(store: ScheduleStore, cwd: Path, name: str, every: str, **policy: object) -> None:
    define(store, name, ["images", "photos", "--ops", "thumbnail:32"], cwd, every=every, **policy)


@pytest.mark.parametrize("replicas", [2, 3])
def test_replicas_together_fire_each_tick_exactly_once(
    replicas: int, worker: WorkerProcess, store: ScheduleStore, ledger: Ledger, workdir: Path, start: Start
) -> None:
    name = f"tick{replicas}"
    # --no-coalesce: a tick a slow machine reaches late is still handled, so "no gap" is exact. The ticks
    # that pass while the replicas start are handled in a burst: the first submits, the rest find it running.
    add(store, workdir, name, "1s", coalesce=False)
    schedulers = [start(f"replica{i}") for i in range(replicas)]
    for scheduler in schedulers:
        scheduler.wait_ready()
    wait_until(lambda: len(submitted(store, name)) >= 4, 30, "four jobs submitted")
    for scheduler in schedulers:
        assert scheduler.stop() == 0, scheduler.log()
        assert scheduler.lines[-1] == f"scheduler {scheduler.name} stopped"
        assert not store.client.exists(keys.ALIVE + scheduler.name)  # its heartbeat is withdrawn

    fires = store.history(name)
    assert_one_outcome_per_tick(fires)
    assert {fire.outcome for fire in fires} <= {"submitted", "skipped"}
    jobs = [fire.job for fire in submitted(store, name)]
    assert sorted(meta.job_id for meta in scheduled_jobs(ledger, name)) == sorted(jobs)
    fired = [s.count(f"schedule {name} fired at") for s in schedulers]
    assert sum(fired) == len(jobs)
    print(f"\n{replicas} replicas: {len(fires)} ticks, {len(jobs)} jobs, fired per replica {fired}")


def test_a_killed_scheduler_restarted_misses_nothing_and_fires_nothing_twice(
    worker: WorkerProcess, store: ScheduleStore, ledger: Ledger, workdir: Path, start: Start
) -> None:
    add(store, workdir, "burst", "1s", coalesce=False)
    add(store, workdir, "once", "1s")  # the default: coalesce missed fire times into one run
    first = start("before").wait_ready()
    wait_until(lambda: min(len(store.history(n)) for n in ("burst", "once")) >= 2, 20, "two ticks of each")
    first.kill()
    killed_ms = now_ms()
    time.sleep(2.5)  # not a readiness wait: fire times must pass while no scheduler runs
    second = start("after").wait_ready()
    restarted_ms = now_ms()
    wait_until(lambda: all(store.history(n)[-1].fire_ms > restarted_ms for n in ("burst", "once")), 20,
               "both schedules firing again")  # fmt: skip
    # A kill that landed between claiming and submitting leaves a pending fire; it is adopted, not lost.
    wait_until(lambda: not Claims(store.client).pending(), 20, "no pending fires")
    assert second.stop() == 0, second.log()

    burst = store.history("burst")
    assert_one_outcome_per_tick(burst)  # every tick of the downtime was handled, once
    assert sum(killed_ms < fire.fire_ms < restarted_ms for fire in burst) >= 2

    once = store.history("once")
    assert len({fire.fire_ms for fire in once}) == len(once)
    last_before = max(fire.fire_ms for fire in once if fire.fire_ms <= killed_ms)
    catch_up = min(fire.fire_ms for fire in once if fire.fire_ms > killed_ms)
    coalesced = (catch_up - last_before) // 1000 - 1
    assert coalesced >= 2  # the downtime became one run, not a burst ...
    assert f"schedule once catches up: {coalesced} earlier fire times coalesced" in second.log()  # ... of all of it

    for name in ("burst", "once"):
        jobs = sorted(fire.job or "" for fire in submitted(store, name))
        assert sorted(meta.job_id for meta in scheduled_jobs(ledger, name)) == jobs


def test_a_fire_left_pending_by_a_dead_scheduler_is_submitted_once_by_another(
    store: ScheduleStore, ledger: Ledger, producer: Producer, settings: Settings, workdir: Path, start: Start
) -> None:
    add(store, workdir, "orphan-new", "1d")
    add(store, workdir, "orphan-done", "1d")
    claims, fire_ms = Claims(store.client), now_ms() + 1000  # after both schedules' creation instant
    # A scheduler claimed both fires, then died: before submitting one, after submitting the other.
    fresh, done = (claims.claim(name, fire_ms, owner="ghost@gone", job_id=new_job_id(), overlap="skip", late=False)
                   for name in ("orphan-new", "orphan-done"))  # fmt: skip
    assert fresh.pending is not None and done.pending is not None
    producer.submit(store.get("orphan-done").job, schedule="orphan-done", job_id=done.pending.job_id)

    adopter = start("adopter").wait_ready()
    adopter.wait_for("from ghost@gone, which stopped before submitting it", times=2)
    wait_until(lambda: not claims.pending(), 20, "both orphaned fires committed")

    for name, claim in (("orphan-new", fresh), ("orphan-done", done)):
        assert claim.pending is not None
        assert [(f.fire_ms, f.outcome, f.job) for f in store.history(name)] == [
            (fire_ms, "submitted", claim.pending.job_id)
        ]
        assert [meta.job_id for meta in scheduled_jobs(ledger, name)] == [claim.pending.job_id]
    assert "was already submitted; recording it" in adopter.log()
