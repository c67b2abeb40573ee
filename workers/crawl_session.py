"""A crawl batch's session: when its pages are claimed, fetched and recorded (scheduling only).

A batch is a session: its pages are recorded as they finish, a few at a time,
never held back by the slowest one, and the session tops itself up from the
job's frontier (``refill``) for a few seconds, so a crawl is not paced by the
round trip of a task message per batch. What a fetch and a recording are is
the caller's (``workers.crawl_stages``: the worker's fetch on its event loop,
the pool's parse and one ledger call); this module only decides when.

Claims, fetches and the recording overlap: while one group is parsed and
recorded, the pages it freed room for are claimed and fetched, so a crawl is
paced by the slower of fetching and recording rather than by their sum.
Measured on the ``throughput`` crawl (paired rounds against the session that
claimed only between recordings): wall time -0.047 s (20 rounds) and -0.072 s
(12 rounds) a crawl of ~1.1 s. Tried and not kept: parsing one group while the
one before is in its ledger call (+0.01 s, +0.085 s worker CPU), three times the
concurrency unrecorded (+0.06 s), pool children recording their own chunks
(+0.05 s: two ledger calls a group), the ledger call on the event loop's own
Redis client (+0.05 s: building the results there delays fetches).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pipeline.core.bodies import LARGE_BYTES, Hold
from pipeline.core.errors import FetchError
from pipeline.core.fetch import Fetched
from workers.processes import TRIM_AFTER_BYTES, trim_memory

log = logging.getLogger(__name__)
T = TypeVar("T")
SESSION_S = 3.0  # how long a batch keeps taking pages from the frontier (other jobs wait behind it)
# How long finished pages wait for others to share their parse and ledger calls. A group costs a
# pool round trip and a Lua call whatever its size (measured: ~1.5 pages per group without this,
# and recording cost more CPU than fetching). A thin frontier (under GATHER_MIN_IN_FLIGHT in
# flight) goes on at once, as its discoveries are what the crawl waits for.
GATHER_S = 0.005
GATHER_MIN_IN_FLIGHT = 8


@dataclass(frozen=True)
class PageEntry:
    id: str
    url: str
    depth: int
    queue_s: float


FetchOutcome = tuple[PageEntry, Fetched | FetchError, float]  # a page, its body or why not, seconds fetching
Fetch = Callable[[PageEntry, Hold], Coroutine[Any, Any, FetchOutcome]]  # on the loop; hold: the body room
Record = Callable[[list[FetchOutcome]], tuple[int, bool]]  # on a thread: (items counted, job ended)
Refill = Callable[[int], list[PageEntry]]  # on a thread: claim up to n more pages of the job


class Session:
    """One batch's pages: up to ``target`` fetching, the fetched ones recorded a group at a time.

    The fetches go on while a group is recorded: slots freed meanwhile are claimed
    again at once (when an eighth of the target is free), so the crawl is paced
    by the slower of fetching and recording, not by their sum. What is fetched but
    not yet recorded is bounded (``target`` more pages), as each page holds its body.
    """

    def __init__(
        self,
        fetch: Fetch,
        record: Record,
        hold: Callable[[], Hold],
        refill: Refill | None,
        target: int,
        deadline_s: float,
    ) -> None:
        self.fetch, self.record_group, self.hold, self.refill = fetch, record, hold, refill
        self.started = time.monotonic()
        self.deadline = self.started + deadline_s
        self.target = target
        self.pending: dict[asyncio.Task[FetchOutcome], PageEntry] = {}
        self.finished: list[asyncio.Task[FetchOutcome]] = []
        self.ready: list[FetchOutcome] = []  # fetched, waiting to be recorded
        self.ready_since = 0.0
        self.recording: list[FetchOutcome] = []
        self.holds: dict[str, Hold] = {}  # each page's claim on the worker's body budget, until it is recorded
        self.wake = asyncio.Event()
        self.claim: asyncio.Future[list[PageEntry]] | None = None
        self.asked = 0
        self.record: asyncio.Future[tuple[int, bool]] | None = None
        self.dry = False  # the last claim came back short: ask again only once a recording may have admitted more
        self.recordings = 0  # recordings accounted for so far
        self.claim_epoch = 0  # ``recordings`` when the claim in flight was asked for
        self.stale = False  # the short claim overlapped a recording: its answer may be out of date
        self.counted = 0
        self.freed = 0  # bytes of bodies dropped since memory was last handed back

    def _done(self, task: asyncio.Task[FetchOutcome]) -> None:
        self.finished.append(task)
        self.wake.set()

    def _start(self, batch: Sequence[PageEntry]) -> None:
        for entry in batch:
            hold = self.holds[entry.id] = self.hold()
            task = asyncio.create_task(self.fetch(entry, hold))
            self.pending[task] = entry
            task.add_done_callback(self._done)

    def _unrecorded(self) -> int:
        return len(self.pending) + len(self.ready) + len(self.recording)

    def _wanted(self) -> int:
        """How many pages a claim should ask for now (0: none).

        Claims wait until an eighth of the target is free (any room once nothing is
        fetching), so a busy session makes one claim per several pages, not one per page.
        """
        if self.refill is None or self.claim is not None or self.dry:
            return 0
        now = time.monotonic()
        if now - self.started >= SESSION_S or now >= self.deadline:  # past the deadline a page could only fail
            return 0
        wanted = min(self.target - len(self.pending), 2 * self.target - self._unrecorded())
        if wanted <= 0 or (wanted < max(1, self.target // 8) and self.pending):
            return 0
        return wanted

    async def run(self, entries: Sequence[PageEntry]) -> tuple[int, bool]:
        if not entries:  # a batch is never sent empty; if one were, it claims nothing either
            return 0, False
        self.target = max(len(entries), self.target)
        self._start(entries)
        try:
            while True:
                self._collect()
                if self.record is not None and self.record.done() and await self._recorded():
                    return self.counted, True
                if self.claim is not None and self.claim.done():
                    more = self.claim.result()
                    self.claim = None
                    # Short: nothing more until the next recording, or, if a recording ended while it ran
                    # (it may have admitted pages after the claim read the frontier), once more before
                    # the session ends (asking again at once costs the recording time: +0.03 s a crawl).
                    self.dry = len(more) < self.asked
                    self.stale = self.dry and self.recordings != self.claim_epoch
                    self._start(more)
                if time.monotonic() >= self.deadline and self.pending:
                    self._fail_late()
                if self.refill is not None and (wanted := self._wanted()):
                    self.asked, self.claim_epoch = wanted, self.recordings
                    self.claim = self._in_thread(self.refill, wanted)
                if self.record is None and self.ready and self._group_complete():
                    self.recording, self.ready = self.ready, []
                    self.record = self._in_thread(self.record_group, self.recording)
                if not (self.pending or self.ready or self.record or self.claim):
                    if not self.stale:
                        return self.counted, False
                    self.dry = self.stale = False
                    continue
                await self._wait()
        finally:
            for task in self.pending:
                task.cancel()
            # Threads cannot be stopped: wait for them, so a claim's pages are held by the task (and
            # failed by it on an error) and a recording never lands after the task has given up.
            try:
                if running := [f for f in (self.claim, self.record) if f is not None]:
                    await asyncio.wait(running)
                    raised = sys.exc_info()[1]
                    for future in running:  # a second thread's error is logged, not "never retrieved"
                        if not future.cancelled() and (error := future.exception()) not in (None, raised):
                            log.warning("a session thread failed as the session ended", exc_info=error)
            finally:  # even if cancelled again while waiting: the body budget must get its room back
                for hold in self.holds.values():
                    hold.release()
                if self.freed >= LARGE_BYTES:
                    trim_memory()  # a collection and malloc_trim, a few ms; not awaited, as the session may be ending

    def _in_thread(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """``fn(*args)`` on a thread; its end wakes the session."""
        future = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        future.add_done_callback(lambda _: self.wake.set())
        return future

    def _collect(self) -> None:
        """Move finished fetches to ``ready`` (fetches cancelled earlier may still report in: not ours)."""
        if not self.finished:
            return
        if not self.ready:
            self.ready_since = time.monotonic()
        self.ready += [task.result() for task in self.finished if self.pending.pop(task, None) is not None]
        self.finished.clear()

    def _group_complete(self) -> bool:
        """Whether the pages ready now are worth one parse call and one ledger call (see ``GATHER_S``)."""
        return len(self.pending) < GATHER_MIN_IN_FLIGHT or time.monotonic() - self.ready_since >= GATHER_S

    async def _recorded(self) -> bool:
        """Account for the group just recorded; True if the job ended (anything pending was recorded elsewhere)."""
        assert self.record is not None
        record, self.record = self.record, None
        added, ended = record.result()
        self.freed += sum(len(f.data) for _, f, _ in self.recording if isinstance(f, Fetched))
        for entry, _, _ in self.recording:
            if (hold := self.holds.pop(entry.id, None)) is not None:
                hold.release()
        self.recording = []
        self.counted += added
        self.recordings += 1
        self.dry = self.stale = False  # this recording may have admitted the pages to go on with
        if self.freed >= TRIM_AFTER_BYTES:  # big pages: give their memory back to the system now
            self.freed = 0
            await asyncio.to_thread(trim_memory)
        return ended

    def _fail_late(self) -> None:
        """Past the deadline: what is still fetching fails, so the job still ends."""
        late = FetchError("deadline", "the batch ran past its deadline")
        if not self.ready:
            self.ready_since = time.monotonic()
        self.ready += [(entry, late, time.monotonic() - self.started) for entry in self.pending.values()]
        for task in self.pending:
            task.cancel()
        self.pending.clear()

    async def _wait(self) -> None:
        """Until a fetch, the claim or the recording finishes, a group is due, or the deadline."""
        until = self.deadline if self.pending else math.inf  # past it, only threads are waited for
        if self.ready and self.record is None:
            until = min(until, self.ready_since + GATHER_S)
        self.wake.clear()
        if (
            self.finished
            or (self.record is not None and self.record.done())
            or (self.claim is not None and self.claim.done())
        ):
            return
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation arriving as it ends.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(None if until == math.inf else max(0.0, until - time.monotonic())):
                await self.wake.wait()
