"""A worker's budget for fetched bodies in memory, all requests together (not only per body).

Each body is capped (``PIPELINE_MAX_BODY_BYTES``), but 24 links to a 30 MB page once
held 24 such bodies at once (1.27 GB in the worker). Small bodies -- nearly every
page and image -- are read freely. A body that grows past ``LARGE_BYTES`` (or
declares it will) must hold one of the budget's large slots while it is read and
until its owner is done with it (its page recorded, its image in the blob store);
without a free slot it waits. There are ``budget // max_body_bytes`` slots (at
least one), so the large bodies a worker holds never exceed the budget.

A body takes its slot once and then reads to the end, so waiters cannot deadlock:
every holder finishes without waiting again. The budget is reached through a
ContextVar, like the SSRF policy: each request's task carries its own ``Hold``.
"""

from __future__ import annotations

import asyncio
import threading
from contextvars import ContextVar

LARGE_BYTES = 2**20


class BodyBudget:
    """Large-body slots of one worker; lives on the worker's event loop."""

    def __init__(self, budget_bytes: int, max_body_bytes: int) -> None:
        self.slots = max(1, budget_bytes // max(1, max_body_bytes))
        self._free = asyncio.Semaphore(self.slots)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def _take(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._free.acquire()

    def _give_back(self) -> None:
        loop = self._loop
        if loop is None:  # pragma: no cover - never taken
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._free.release()
        else:  # from a recording thread: the semaphore belongs to the loop
            loop.call_soon_threadsafe(self._free.release)

    def hold(self) -> Hold:
        return Hold(self)


class Hold:
    """One request's claim on the budget: taken when its body turns large, released once (idempotent)."""

    def __init__(self, budget: BodyBudget) -> None:
        self.budget = budget
        self.taken = False
        self.closed = False  # released by its owner: a request still reading (past a deadline) takes nothing
        self._lock = threading.Lock()

    async def take(self) -> None:
        if self.taken or self.closed:
            return
        await self.budget._take()
        if not self._mark_taken():
            self.budget._give_back()  # released while we waited: hand the slot straight back

    def _mark_taken(self) -> bool:
        with self._lock:
            if self.closed:
                return False
            self.taken = True
            return True

    def release(self) -> None:
        with self._lock:
            taken, self.taken, self.closed = self.taken, False, True
        if taken:
            self.budget._give_back()


current_hold: ContextVar[Hold | None] = ContextVar("current_hold", default=None)
