"""A worker that meets a full Redis waits and says why, instead of exiting.

With ``maxmemory`` and ``noeviction``, Redis answers every write that could
grow memory with ``OOM command not allowed when used memory > 'maxmemory'``
(redis-py: ``OutOfMemoryError``, a ``ResponseError``). Reproduced against a
real worker (64 MiB Redis, large images over HTTP), three of the worker's own
writes meet it:

* **the consumer's ack** (kombu ``redis.QoS.ack``): ZREM + HDEL in a MULTI
  pipeline. Inside MULTI, Redis refuses *every* queued command when over the
  limit, even ones that free memory. Celery's ``Request.acknowledge`` passes
  only the transport's *connection* errors to ``Message.ack_log_error``;
  kombu counts ``ResponseError`` as a *channel* error (``kombu.transport.redis.
  get_redis_error_classes``), so the error escapes the consumer's event loop,
  and ``WorkController.start`` logs "Unrecoverable error" and stops the worker
  (celery/celery#5716 describes the same family: a worker stuck or gone on a
  Redis OOM). A fresh worker dies the same way on its first ack.
* **the consumer's delivery** (``redis.QoS.append``): ZADD + HSET in MULTI after
  BRPOP has already taken the message: same escape, and that message is gone
  (our ledger's lease sends its items again).
* **a task's own publish** (the hand-off to the next stage, the frontier's
  batches, Celery's retry): LPUSH refused. Celery's ``Task.retry`` turns a
  failed re-publish into ``Reject(requeue=False)``, dropping the batch. Worse,
  kombu's Redis transport declares no *recoverable* error classes, so
  ``Connection.recoverable_connection_errors`` falls back to connection +
  channel errors: the refusal counts as a lost connection, ``ensure`` closes
  every channel of the app's shared connection (``collect``), and another
  thread publishing at that moment fails with ``AttributeError: 'NoneType'
  object has no attribute 'client'`` (seen: 5 items failed as
  ``internal_error``).

So, in the worker process only (``install``, from the worker app):

* the ack runs as a plain pipeline (no MULTI): ZREM and HDEL are allowed on a
  full Redis, and they free memory;
* the delivery waits and retries with back-off while Redis is full, logging
  the figures and what to do (the consumer takes no new work meanwhile, which
  is what a full Redis needs);
* our publishes and batches retry with back-off (``patiently``) before Celery
  ever sees the error; a batch is idempotent (the ledger's first write wins).

Every wait logs one structured warning naming Redis's memory and the remedy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from celery.worker import state as worker_state
from kombu.exceptions import OperationalError
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual

from pipeline.core.errors import RedisFull
from pipeline.ledger.memory import FULL_HINT, RedisMemory

log = logging.getLogger(__name__)
T = TypeVar("T")
PAUSE_S = (0.5, 8.0)  # first and longest pause between attempts
PATIENCE_S = 120.0  # how long a batch or a publish waits for Redis before giving up to Celery's retry
REPEAT_S = 30.0  # while waiting, the warning again this often


def is_full(exc: BaseException) -> bool:
    """Redis refused a write as out of memory (directly, or wrapped by kombu)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (redis.OutOfMemoryError, RedisFull)):
            return True
        if isinstance(seen, (redis.ResponseError, OperationalError)) and "maxmemory" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class _Waiting:
    """Back-off and rate-limited warnings for one wait on a full Redis."""

    def __init__(self, doing: str, memory: Callable[[], RedisMemory | None]) -> None:
        self.doing, self.memory = doing, memory
        self.started = time.monotonic()
        self.pause = PAUSE_S[0]
        self.warned_at = float("-inf")

    @property
    def waited(self) -> float:
        return time.monotonic() - self.started

    def sleep(self) -> None:
        if time.monotonic() - self.warned_at >= REPEAT_S:
            self.warned_at = time.monotonic()
            figures = self.memory()
            log.warning(
                "Redis is full (OOM): waiting, then %s again", self.doing,
                extra={"redis_memory": figures.describe() if figures else "unknown", "waited_s": round(self.waited, 1),
                       "retry_in_s": self.pause, "what_to_do": FULL_HINT},
            )  # fmt: skip
        time.sleep(self.pause)
        self.pause = min(self.pause * 2, PAUSE_S[1])


def torn_channel(exc: BaseException) -> bool:
    """A publish whose channel another thread's refused publish closed under it (see above)."""
    return isinstance(exc, AttributeError) and "'NoneType' object has no attribute 'client'" in str(exc)


def patiently(
    doing: str,
    fn: Callable[[], T],
    memory: Callable[[], RedisMemory | None],
    patience_s: float = PATIENCE_S,
    *,
    also: Callable[[BaseException], bool] = lambda _: False,
) -> T:
    """``fn()``, retried with back-off while Redis refuses it as full (or ``also(error)``), for up to
    ``patience_s``."""
    waiting: _Waiting | None = None
    while True:
        try:
            result = fn()
        except Exception as exc:
            if not (is_full(exc) or also(exc)):
                raise
            waiting = waiting or _Waiting(doing, memory)
            if waiting.waited >= patience_s:
                raise
            waiting.sleep()
            continue
        if waiting is not None:
            log.info("Redis has room again: %s went through", doing, extra={"waited_s": round(waiting.waited, 1)})
        return result


def _memory_of(client: Any) -> Callable[[], RedisMemory | None]:
    def read() -> RedisMemory | None:
        try:
            return RedisMemory.of(client.info("memory"))
        except redis.RedisError:
            return None

    return read


class PatientQoS(kombu_redis.QoS):
    """kombu's Redis QoS, with an ack that works on a full Redis and a delivery that waits for room."""

    def ack(self, delivery_tag: str) -> None:
        with self.channel.conn_or_acquire() as client:
            pipe = client.pipeline(transaction=False)  # not MULTI: Redis refuses all of a MULTI when full
            pipe.zrem(self.unacked_index_key, delivery_tag).hdel(self.unacked_key, delivery_tag).execute()
        virtual.QoS.ack(self, delivery_tag)

    def append(self, message: Any, delivery_tag: str) -> None:
        waiting: _Waiting | None = None
        while True:
            try:
                super().append(message, delivery_tag)
            except redis.OutOfMemoryError:
                waiting = waiting or _Waiting("recording a delivered message", _memory_of(self.channel.client))
                if _stopping():
                    raise
                waiting.sleep()
                continue
            if waiting is not None:
                log.info("Redis has room again: consuming", extra={"waited_s": round(waiting.waited, 1)})
            return


def _stopping() -> bool:
    return bool(worker_state.should_stop or worker_state.should_terminate)


def install() -> None:
    """Use ``PatientQoS`` for every Redis channel of this process (the worker's only)."""
    kombu_redis.Channel.QoS = PatientQoS
