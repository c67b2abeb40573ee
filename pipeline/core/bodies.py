"""A worker's budget for fetched bodies in memory, all requests together (not only per body).

Each body is capped (``PIPELINE_MAX_BODY_BYTES``), but 24 links to a 30 MB page once
held 24 such bodies at once (1.27 GB in the worker). Small bodies -- nearly every
page and image -- are read freely. A body that grows past ``LARGE_BYTES`` (or
declares it will) must reserve its bytes in the budget while it is read and until
its owner is done with it (its page recorded, its image transformed or in the blob
store); without room it waits, first come first served. It reserves its declared
length, or the cap when it declares none (it may grow to that), so the large bodies
a worker holds never exceed the budget, and a body of the cap always fits alone.
Bytes, not whole-cap slots: 256 MiB holds fifty 5 MB photos at once, where slots of
the 50 MiB cap held five.

A body reserves once and then reads to the end. A crawl session releases each
page's bytes when that page is recorded, so its waiters cannot deadlock: every
holder finishes without waiting again. A batch of images keeps all its bodies until
the batch is transformed, so its holds form a ``HoldGroup``: it may wait for room
only while it holds nothing. Otherwise two batches each holding bytes and waiting
for more would wait for ever, and so would one batch with more large images than the
budget holds (it once hung a job of 12 photos until every waiting fetch timed out).
A large body of a group that already holds some and finds no room is refused
(``FetchError("deferred")``): the stage gives that item back to be fetched later.
The budget is reached through a ContextVar, like the SSRF policy: each request's
task carries its own ``Hold``.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from contextvars import ContextVar

from pipeline.core.errors import FetchError

LARGE_BYTES = 2**20


class BodyBudget:
    """Bytes of large bodies one worker holds; lives on the worker's event loop."""

    def __init__(self, budget_bytes: int, max_body_bytes: int) -> None:
        self.max_body_bytes = max(1, max_body_bytes)
        self.capacity = max(budget_bytes, self.max_body_bytes)  # a body of the cap always fits alone
        self.used = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None

    def has_room(self, nbytes: int) -> bool:
        """Whether ``nbytes`` can be reserved now (never ahead of a body already waiting)."""
        return not any(not f.done() for _, f in self._waiters) and self.used + nbytes <= self.capacity

    async def _take(self, nbytes: int) -> None:
        loop = self._loop = asyncio.get_running_loop()
        if self.has_room(nbytes):
            self.used += nbytes
            return
        granted: asyncio.Future[None] = loop.create_future()
        self._waiters.append((nbytes, granted))
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._release(nbytes)  # room came as we were cancelled: hand it on
            else:
                granted.cancel()
                self._wake()  # a body behind this one may fit now
            raise

    def _wake(self) -> None:
        while self._waiters:
            nbytes, granted = self._waiters[0]
            if granted.done():  # cancelled while waiting
                self._waiters.popleft()
                continue
            if self.used + nbytes > self.capacity:
                return
            self._waiters.popleft()
            self.used += nbytes
            granted.set_result(None)

    def _release(self, nbytes: int) -> None:
        self.used -= nbytes
        self._wake()

    def _give_back(self, nbytes: int) -> None:
        loop = self._loop
        if loop is None:  # pragma: no cover - never taken
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._release(nbytes)
        else:  # from a recording thread: the budget belongs to the loop
            loop.call_soon_threadsafe(self._release, nbytes)

    def hold(self) -> Hold:
        return Hold(self)

    def group(self) -> HoldGroup:
        """Holds for a batch whose bodies are all released together, at its end (see the module)."""
        return HoldGroup(self)


class HoldGroup:
    """The holds of one batch: it waits for room only while it holds nothing, else refuses."""

    def __init__(self, budget: BodyBudget) -> None:
        self.budget = budget
        self.taken = 0  # bodies with room reserved by the group's holds (all released with the batch)
        self._deciding: asyncio.Lock | None = None  # one of the group's bodies at a time takes or refuses

    def hold(self) -> Hold:
        return Hold(self.budget, self)

    async def _take(self, nbytes: int) -> None:
        if self._deciding is None:
            self._deciding = asyncio.Lock()
        async with self._deciding:
            if self.taken and not self.budget.has_room(nbytes):
                raise FetchError("deferred", "no room for another large body while this batch holds some: "
                                             "fetched again once the batch is done")  # fmt: skip
            await self.budget._take(nbytes)  # at once if there is room; else wait, holding nothing
            self.taken += 1


class Hold:
    """One request's claim on the budget: taken when its body turns large, released once (idempotent)."""

    def __init__(self, budget: BodyBudget, group: HoldGroup | None = None) -> None:
        self.budget, self.group = budget, group
        self.taken = False
        self.nbytes = 0
        self.closed = False  # released by its owner: a request still reading (past a deadline) takes nothing
        self._lock = threading.Lock()

    async def take(self, nbytes: int | None = None) -> None:
        """Reserve ``nbytes`` (default: the cap, all a body with no declared length may grow to)."""
        if self.taken or self.closed:
            return
        size = min(nbytes or self.budget.max_body_bytes, self.budget.capacity)
        await (self.budget._take(size) if self.group is None else self.group._take(size))
        if not self._mark_taken(size):
            self.budget._give_back(size)  # released while we waited: hand the room straight back

    async def take_at_least(self, nbytes: int) -> None:
        """Hold room for ``nbytes``: a hold already holding less gives it back first, then waits for the
        new size like any body (never waiting while holding: that is what keeps the budget deadlock-free).

        A retried request may meet a bigger body than its first attempt declared.
        """
        with self._lock:
            if self.closed or (self.taken and self.nbytes >= min(nbytes, self.budget.capacity)):
                return
            taken, held, self.taken, self.nbytes = self.taken, self.nbytes, False, 0
        if taken:
            self.budget._give_back(held)
            if self.group is not None:
                self.group.taken -= 1
        await self.take(nbytes)

    def _mark_taken(self, nbytes: int) -> bool:
        with self._lock:
            if self.closed:
                return False
            self.taken, self.nbytes = True, nbytes
            return True

    def release(self) -> None:
        with self._lock:
            taken, self.taken, self.closed = self.taken, False, True
        if taken:
            self.budget._give_back(self.nbytes)


current_hold: ContextVar[Hold | None] = ContextVar("current_hold", default=None)
