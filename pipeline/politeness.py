"""Cluster-wide politeness for a crawl: concurrency per job and per host, delay per host.

Each request holds a slot in Redis (``lua/acquire.lua``): limits hold across
all workers, not per worker. In front of it, local semaphores for the job and
for each host, shared by every batch of the job in this process, make
requests that must wait anyway queue here, woken the moment a local request
ends, instead of polling Redis with backoff: with one worker, Redis never has
to refuse; with several, only the requests that could run do poll.

A freed slot is not given back to Redis at once: for up to LINGER_S it is
kept for the job's next request to the same host, which then starts without
a Redis round trip (a busy crawl would otherwise make two per page). Counts in
Redis are unchanged by such a hand-over, so the limits still hold for the
whole cluster. A slot is handed over only while it is younger than
``REUSE_S``: then it goes back to Redis, whose answer is also how a
cancelled job stops its requests. With a per-host delay every request goes
to Redis, which spaces their starts.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from pipeline.core.errors import FetchError
from pipeline.core.urls import host_of
from pipeline.ledger.keys import politeness_keys
from pipeline.ledger.scripts import lua
from pipeline.throttle import AutoThrottle

REUSE_S = 0.5  # how long a slot taken in Redis may pass from request to request on this worker
# How long a freed slot waits for the next request to its host before going back. A crawl session
# starts its requests in waves (a group is recorded, then the next one starts), ~70 ms apart on small
# pages: at 20 ms most slots went back to Redis and were asked for again every wave (624 acquire
# calls a 1,140-page crawl); at 100 ms they carry over: worker main CPU -0.13 s, wall -0.08 s a crawl
# (14 paired rounds). The price, with several workers on one host: a worker's idle slots reach the
# others up to ~0.2 s later (the flush runs every LINGER_S); the limits themselves hold as before.
LINGER_S = 0.1


@dataclass(frozen=True)
class Limits:
    concurrency: int = 64  # requests in flight for the whole job
    per_host: int = 8
    delay_s: float = 0.0  # between request starts on one host (a host's robots.txt Crawl-delay may raise it)
    slot_ttl_s: float = 120.0  # a slot held longer than this is presumed dead
    autothrottle: bool = False  # the delay follows each host's latency (pipeline.throttle)


@dataclass
class _Slot:
    token: str
    taken_at: float  # monotonic, when Redis granted it
    freed_at: float = 0.0


_TOKEN_PREFIX = uuid.uuid4().hex[:12] + "-"  # slot tokens: unique per process, then a counter
_tokens = itertools.count()


class _LocalSlots:
    """This process's share of one job's limits: semaphores, and freed slots kept for a moment."""

    def __init__(self, client: Any, job_id: str, limits: Limits) -> None:
        self.client, self.job_id, self.limits = client, job_id, limits
        self.job = asyncio.Semaphore(limits.concurrency)
        self.hosts: dict[str, asyncio.Semaphore] = {}
        self.spare: dict[str, list[_Slot]] = {}
        self._flush: asyncio.TimerHandle | None = None
        self._releasing: set[asyncio.Task[None]] = set()
        self.throttle = AutoThrottle(floor_s=limits.delay_s) if limits.autothrottle else None

    def delay_for(self, host: str, floor_s: float) -> float:
        """Seconds between request starts on ``host``: the job's, the host's own floor, or AutoThrottle's."""
        delay = max(self.limits.delay_s, floor_s)
        return max(delay, self.throttle.delay(host)) if self.throttle is not None else delay

    def host(self, host: str) -> asyncio.Semaphore:
        return self.hosts.setdefault(host, asyncio.Semaphore(self.limits.per_host))

    def keys(self, host: str) -> list[str]:
        return politeness_keys(self.job_id, host)

    def reuse(self, host: str) -> _Slot | None:
        spares = self.spare.get(host)
        return spares.pop() if spares else None

    async def free(self, host: str, slot: _Slot, delay_s: float) -> None:
        now = time.monotonic()
        if delay_s > 0 or now - slot.taken_at >= REUSE_S:
            await self.release(host, [slot.token])
            return
        slot.freed_at = now
        self.spare.setdefault(host, []).append(slot)
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(LINGER_S, self._flush_unused)

    def _flush_unused(self) -> None:
        """Give back to Redis the slots no request took within LINGER_S."""
        self._flush = None
        now, later = time.monotonic(), False
        for host, spares in self.spare.items():
            stale = [s for s in spares if now - s.freed_at >= LINGER_S]
            if stale:
                spares[:] = [s for s in spares if now - s.freed_at < LINGER_S]
                task = asyncio.ensure_future(self.release(host, [s.token for s in stale]))
                self._releasing.add(task)
                task.add_done_callback(self._releasing.discard)
            later = later or bool(spares)
        if later:
            self._flush = asyncio.get_running_loop().call_later(LINGER_S, self._flush_unused)

    async def release(self, host: str, tokens: list[str]) -> None:
        keys = self.keys(host)
        pipe = self.client.pipeline(transaction=False)
        pipe.zrem(keys[1], *tokens)
        pipe.zrem(keys[2], *tokens)
        await pipe.execute()


_RECENT_JOBS = 64  # jobs whose local slots are kept; an older job's next batch starts afresh
_local_slots: OrderedDict[str, _LocalSlots] = OrderedDict()


def _slots_for(client: Any, job_id: str, limits: Limits) -> _LocalSlots:
    """The job's local slots, shared by its batches (all on the worker's one event loop)."""
    slots = _local_slots.get(job_id)
    if slots is None or slots.limits != limits:
        slots = _local_slots[job_id] = _LocalSlots(client, job_id, limits)
        while len(_local_slots) > _RECENT_JOBS:
            _local_slots.popitem(last=False)
    _local_slots.move_to_end(job_id)
    return slots


class Gate:
    """Slots for one job's requests; one instance per batch, sharing the worker's async client."""

    def __init__(self, client: Any, script: Any, job_id: str, limits: Limits) -> None:
        self.client, self.script, self.job_id, self.limits = client, script, job_id, limits

    @staticmethod
    def register(client: Any) -> Any:
        return client.register_script(lua("acquire.lua"))

    @asynccontextmanager
    async def slot(self, url: str, floor_s: float = 0.0) -> AsyncIterator[None]:
        """Hold a request slot for ``url``'s host; ``floor_s``: the least delay the host asks (Crawl-delay)."""
        host = host_of(url)
        local = _slots_for(self.client, self.job_id, self.limits)
        delay = local.delay_for(host, floor_s)
        async with local.host(host), local.job:  # host first: a busy host must not hold the job's slots
            slot = (local.reuse(host) if delay <= 0 else None) or await self._acquire(local.keys(host), delay)
            started = time.monotonic()
            status: int | None = 200
            try:
                yield
            except BaseException as exc:
                status = getattr(exc, "status", None)  # an HTTP error status, or no answer at all
                raise
            finally:
                if local.throttle is not None:
                    local.throttle.observe(host, time.monotonic() - started, status)
                await local.free(host, slot, delay)

    async def _acquire(self, keys: list[str], delay_s: float) -> _Slot:
        token = f"{_TOKEN_PREFIX}{next(_tokens)}"
        pause = 0.005
        while True:
            args = [repr(time.time()), token, self.limits.slot_ttl_s, self.limits.concurrency,
                    self.limits.per_host, delay_s]  # fmt: skip
            wait_ms = int(await self.script(keys=keys, args=args))
            if wait_ms == 0:
                return _Slot(token, time.monotonic())
            if wait_ms < 0:
                raise FetchError("cancelled", "the job was cancelled or has ended")
            await asyncio.sleep(max(wait_ms / 1000, pause) * (0.8 + 0.4 * random.random()))
            pause = min(0.1, pause * 1.5)
