"""The claim rules in Redis, spelled out call by call against a real redis-server.

Two ``Claims`` objects stand for two scheduler replicas: they share nothing but
Redis, exactly like two processes. The process-level tests
(test_scheduler_replicas.py) show the same rules hold with real schedulers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from pipeline.kinds.images import ImagesSpec
from pipeline.ledger import Ledger
from pipeline.ledger.connection import connect
from pipeline.ledger.keys import job_key
from pipeline.scheduler.claims import Claims
from pipeline.scheduler.definition import Schedule
from pipeline.scheduler.errors import ScheduleExists, ScheduleNotFound
from pipeline.scheduler.store import ScheduleStore, now_ms
from pipeline.scheduler.triggers import parse_trigger
from tests.integration.schedulers import wipe_schedules

START = time.time()
T0 = now_ms(START) + 10_000  # a fire time after the schedule's creation


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


def every_second(store: ScheduleStore, name: str = "tick", **policy: object) -> Schedule:
    job = ImagesSpec(sources=("/nowhere",))
    schedule = Schedule(name, parse_trigger(None, "1s", "UTC", START), job, created_at=START, **policy)
    store.add(schedule, now=START)
    return schedule


def test_a_fire_time_is_claimed_by_exactly_one_of_two_replicas(client: redis.Redis, store: ScheduleStore) -> None:
    every_second(store)
    first, second = Claims(client), Claims(client)
    results = [c.claim("tick", T0, owner=o, job_id=f"job-{o}", overlap="skip", late=False)
               for c, o in ((first, "a"), (second, "b"))]  # fmt: skip
    assert [r.status for r in results] == ["submit", "taken"]
    assert store.state("tick").cursor_ms == T0


def test_a_fire_time_behind_the_cursor_is_never_claimed_again(client: redis.Redis, store: ScheduleStore) -> None:
    every_second(store)
    claims = Claims(client)
    assert claims.claim("tick", T0 + 1000, owner="a", job_id="j1", overlap="skip", late=False).status == "submit"
    assert claims.claim("tick", T0, owner="b", job_id="j2", overlap="skip", late=False).status == "taken"


def test_paused_and_removed_schedules_refuse_claims_at_once(client: redis.Redis, store: ScheduleStore) -> None:
    every_second(store)
    claims = Claims(client)
    store.pause("tick")
    assert claims.claim("tick", T0, owner="a", job_id="j", overlap="skip", late=False).status == "paused"
    store.remove("tick")
    assert claims.claim("tick", T0, owner="a", job_id="j", overlap="skip", late=False).status == "gone"


def test_resume_does_not_catch_up_fire_times_that_passed_while_paused(store: ScheduleStore) -> None:
    every_second(store)
    store.pause("tick")
    store.resume("tick", now=START + 60)
    assert store.state("tick").cursor_ms == now_ms(START + 60)


def test_a_late_fire_is_recorded_as_missed_and_moves_the_cursor(client: redis.Redis, store: ScheduleStore) -> None:
    every_second(store)
    claim = Claims(client).claim("tick", T0, owner="a", job_id="j", overlap="skip", late=True)
    assert claim.status == "missed"
    assert [(f.fire_ms, f.outcome) for f in store.history("tick")] == [(T0, "missed")]


def test_overlap_skip_records_a_skip_while_the_previous_job_runs(client: redis.Redis, store: ScheduleStore) -> None:
    every_second(store)
    claims, ledger = Claims(client), Ledger(client)
    first = claims.claim("tick", T0, owner="a", job_id="sched-job-1", overlap="skip", late=False)
    assert first.pending is not None
    ledger.create_job("sched-job-1", "images", {}, "/tmp/out", schedule="tick")
    assert claims.commit(first.pending, "submitted")
    second = claims.claim("tick", T0 + 1000, owner="a", job_id="sched-job-2", overlap="skip", late=False)
    assert (second.status, second.detail) == ("skipped", "sched-job-1")
    client.hset(job_key("sched-job-1"), "state", "succeeded")
    third = claims.claim("tick", T0 + 2000, owner="a", job_id="sched-job-3", overlap="skip", late=False)
    assert third.status == "submit"
    client.delete(job_key("sched-job-1"))


def test_overlap_queue_holds_one_fire_until_the_previous_job_ends(client: redis.Redis, store: ScheduleStore) -> None:
    every_second(store, overlap="queue")
    claims, ledger = Claims(client), Ledger(client)
    first = claims.claim("tick", T0, owner="a", job_id="queue-job-1", overlap="queue", late=False)
    assert first.pending is not None
    ledger.create_job("queue-job-1", "images", {}, "/tmp/out")
    claims.commit(first.pending, "submitted")
    assert claims.claim("tick", T0 + 1000, owner="a", job_id="queue-job-2", overlap="queue", late=False).status == (
        "deferred"
    )
    assert claims.claim("tick", T0 + 2000, owner="a", job_id="queue-job-3", overlap="queue", late=False).status == (
        "skipped"
    )
    [waiting] = claims.pending()
    assert (waiting.job_id, waiting.after, waiting.owner) == ("queue-job-2", "queue-job-1", "")
    assert claims.adopt(waiting, "b") is None  # queue-job-1 still runs
    client.hset(job_key("queue-job-1"), "state", "succeeded")
    adopted = claims.adopt(waiting, "b")
    assert adopted is not None
    assert claims.adopt(waiting, "c") is None  # taken by b
    client.delete(job_key("queue-job-1"))


def test_a_pending_fire_is_committed_only_by_its_owner(client: redis.Redis, store: ScheduleStore) -> None:
    every_second(store)
    claims = Claims(client)
    claim = claims.claim("tick", T0, owner="dead", job_id="j", overlap="skip", late=False)
    assert claim.pending is not None
    adopted = claims.adopt(claim.pending, "alive")
    assert adopted is not None
    assert not claims.commit(claim.pending, "submitted")  # the dead owner's stale entry
    assert claims.commit(adopted, "submitted")
    assert [(f.outcome, f.job) for f in store.history("tick")] == [("submitted", "j")]
    assert claims.pending() == []


def test_names_are_unique_unless_replaced(store: ScheduleStore) -> None:
    every_second(store)
    with pytest.raises(ScheduleExists):
        every_second(store)
    store.add(Schedule("tick", parse_trigger(None, "5m", "UTC", START), ImagesSpec(sources=("/x",))), replace=True)
    assert store.get("tick").trigger.expr == "5m"


def test_unknown_names_raise_schedule_not_found_with_exit_code_4(store: ScheduleStore) -> None:
    for action in (store.pause, store.resume, store.remove, store.get):
        with pytest.raises(ScheduleNotFound) as caught:
            action("nope")
        assert caught.value.exit_code == 4
        assert "no schedule 'nope'" in caught.value.message
