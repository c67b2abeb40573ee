"""What a worker does when Redis refuses a write as full (``tasks.redis_full.patiently``)."""

from __future__ import annotations

import logging

import pytest
import redis
from kombu.exceptions import OperationalError

from pipeline.core.errors import RedisFull
from pipeline.ledger.memory import RedisMemory
from tasks import redis_full

OOM = "command not allowed when used memory > 'maxmemory'."


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_full, "PAUSE_S", (0.001, 0.002))


def memory() -> RedisMemory:
    return RedisMemory(17 * 2**20, 16 * 2**20)


KOMBU_WRAPPED = OperationalError(f"Command # 1 (LLEN q) of pipeline caused error: {OOM}")


@pytest.mark.parametrize("error", [redis.OutOfMemoryError(OOM), RedisFull("Redis is full"), KOMBU_WRAPPED])
def test_every_spelling_of_a_full_redis_is_recognised(error: Exception) -> None:
    assert redis_full.is_full(error)


def test_other_redis_errors_are_not_taken_for_a_full_one() -> None:
    assert not redis_full.is_full(redis.ResponseError("WRONGTYPE Operation against a key"))
    assert not redis_full.is_full(ValueError("maxmemory"))


def test_a_write_refused_as_full_is_retried_until_it_goes_through_and_the_wait_is_explained(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempts = []

    def write() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise redis.OutOfMemoryError(OOM)
        return "done"

    with caplog.at_level(logging.INFO, logger="tasks.redis_full"):
        assert redis_full.patiently("sending a batch", write, memory) == "done"
    assert len(attempts) == 3
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert "Redis is full" in warning.getMessage()
    assert warning.redis_memory == "used 17.0 MiB of 16.0 MiB (106%)"  # type: ignore[attr-defined]
    assert "maxmemory" in warning.what_to_do  # type: ignore[attr-defined]


def test_patience_has_an_end_and_then_the_error_goes_up() -> None:
    def never() -> None:
        raise redis.OutOfMemoryError(OOM)

    with pytest.raises(redis.OutOfMemoryError):
        redis_full.patiently("sending a batch", never, memory, patience_s=0.01)


def test_a_publish_on_a_channel_closed_under_it_is_retried_when_asked() -> None:
    calls = []

    def publish() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise AttributeError("'NoneType' object has no attribute 'client'")
        return "sent"

    assert redis_full.patiently("sending", publish, memory, also=redis_full.torn_channel) == "sent"


def test_other_errors_are_not_waited_on() -> None:
    calls = []

    def broken() -> None:
        calls.append(1)
        raise KeyError("bug")

    with pytest.raises(KeyError):
        redis_full.patiently("a batch", broken, memory)
    assert calls == [1]
