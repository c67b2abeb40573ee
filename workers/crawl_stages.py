"""The crawl job's page stage inside a worker.

    fetch (event loop: robots, politeness slot, SSRF guard, manual redirects)
      -> parse HTML (process pool) -> one ledger call that records the pages
         and admits what they link to

A batch is a session: its pages are recorded as they finish, a few at a time,
never held back by the slowest one, and the session tops itself up from the
job's frontier (``refill``) for a few seconds, so a crawl is not paced by the
round trip of a task message per batch. Each page's result carries its
discoveries to the ledger, which admits them atomically with the result
(``lua/record.lua``): a re-delivered batch changes nothing, and the job can
never look finished while a page is still to come.

The session runs as a coroutine on the worker's event loop, so a page's
fetch starts and finishes with no thread hand-off; the claims and the
recording, which block on Redis and the pool, go to threads a group at a time.
Measured against the same session run from the task's thread (each fetch
handed to the loop and its end handed back): worker main CPU per page 561-682
vs 706-914 us, alternating runs, slow page 0 s.

Claims, fetches and the recording overlap (``_Session``): while one group is
parsed and recorded, the pages it freed room for are claimed and fetched, so a
crawl is paced by the slower of fetching and recording rather than by their
sum. Measured on the ``throughput`` crawl (paired rounds against the session
that claimed only between recordings): wall time -0.047 s (20 rounds) and
-0.072 s (12 rounds) a crawl of ~1.1 s. Tried and not kept: parsing one group
while the one before is in its ledger call (+0.01 s, +0.085 s worker CPU),
three times the concurrency unrecorded (+0.06 s), pool children recording their
own chunks (+0.05 s: two ledger calls a group), the ledger call on the event
loop's own Redis client (+0.05 s: building the results there delays fetches).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

from pipeline.core.aggregate import ItemResult
from pipeline.core.bodies import LARGE_BYTES, Hold, current_hold
from pipeline.core.errors import FetchError
from pipeline.core.fetch import Fetched, current_user_agent, fetch_url
from pipeline.core.robots import agent_token
from pipeline.core.ssrf import AddressPolicy, current_policy
from pipeline.kinds.crawl import CrawlJob
from pipeline.politeness import Gate
from workers.job_context import live_job, request_context
from workers.page_parse import ParsedPage, parse_for_crawl
from workers.processes import TRIM_AFTER_BYTES, trim_memory
from workers.runtime import Runtime

log = logging.getLogger(__name__)
T = TypeVar("T")
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
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


async def _fetch_one(
    rt: Runtime,
    entry: PageEntry,
    job: CrawlJob,
    policy: AddressPolicy,
    gate: Gate | None,
    hold: Hold | None = None,
) -> tuple[PageEntry, Fetched | FetchError, float]:
    robots = rt.robots if job.robots else None
    scope = job.scope
    agent = agent_token(job.guard.user_agent or rt.settings.user_agent)

    async def hop_gate(url: str, hop: int) -> AbstractAsyncContextManager[None] | None:
        if hop > 0 and not scope.allows(url):
            raise FetchError("out_of_scope", f"{entry.url} redirects out of scope to {url}")
        floor = 0.0
        if robots is not None:
            if (refused := await robots.refusal(url, agent)) is not None:
                raise refused
            floor = await robots.crawl_delay(url, agent)  # Crawl-delay: a floor under --delay
        return gate.slot(url, floor) if gate is not None else None

    token = current_policy.set(policy)
    hold_token = current_hold.set(hold)  # a large body waits for the worker's body budget
    agent_token_ = current_user_agent.set(job.guard.user_agent)
    started = time.perf_counter()
    try:
        return entry, await fetch_url(rt.session, entry.url, rt.limits, gate=hop_gate), time.perf_counter() - started
    except FetchError as exc:
        return entry, exc, time.perf_counter() - started
    finally:
        current_user_agent.reset(agent_token_)
        current_hold.reset(hold_token)
        current_policy.reset(token)


def _page_payload(
    entry: PageEntry, fetched: Fetched, info: ParsedPage, timings: dict[str, float], parse_limit: int
) -> str:
    meta = {"depth": entry.depth, "title": info.title, "words": info.word_count, "links": info.links}
    if fetched.final_url != entry.url:
        meta["final_url"] = fetched.final_url
    if len(fetched.data) > parse_limit:
        meta["parsed_bytes"] = parse_limit  # a longer page is parsed up to here (PIPELINE_MAX_PARSE_BYTES)
    if info.failure is not None:  # the page failed (a scrape's extractor raised); its links still count
        reason, detail = info.failure
        failed = ItemResult.failure(entry.id, entry.url, reason, detail, kind="page", timings=timings,
                                    bytes_in=len(fetched.data), meta=meta).to_json_text()  # fmt: skip
        return failed[:-1] + info.discoveries + "}"
    result = ItemResult(id=entry.id, ok=True, source=entry.url, bytes_in=len(fetched.data), kind="page",
                        timings=timings, meta=meta | (info.meta or {})).to_json_text()  # fmt: skip
    return result[:-1] + info.discoveries + "}"


# What parses a job's pages in the pool: ``parser(job)`` is called as ``(bodies, scope, images)``
# (a crawl's ``parse_for_crawl``; a scrape's binds its extraction first). Picklable: a module
# function or a partial of one.
PageParser = Callable[[CrawlJob], Callable[..., list[ParsedPage]]]


def crawl_parser(job: CrawlJob) -> Callable[..., list[ParsedPage]]:
    return parse_for_crawl


def _parse_all(
    rt: Runtime, pages: dict[str, Fetched], job: CrawlJob, parser: PageParser = crawl_parser
) -> dict[str, ParsedPage | Exception]:
    """Parse HTML pages, spread over the pool in chunks (one round trip per chunk)."""
    ids = list(pages)
    workers = rt.processes.size
    chunks = [ids[i::workers] for i in range(workers) if ids[i::workers]]
    in_threads = rt.settings.parse_pool == "threads"
    images, scope, parse = job.plan is not None, job.scope.to_json(), parser(job)
    futures: list[tuple[list[str], int | None, Future[list[ParsedPage]]]] = []
    for chunk in chunks:
        # Past max_parse_bytes a page is cut (the slice is the body itself when shorter: no copy).
        limit = rt.settings.max_parse_bytes
        bodies = [(pages[i].data[:limit], pages[i].final_url, pages[i].charset) for i in chunk]
        if in_threads:
            futures.append((chunk, None, rt.threads.submit(parse, bodies, scope, images)))
        else:
            futures.append((chunk, *rt.processes.submit(parse, bodies, scope, images)))
    parsed: dict[str, ParsedPage | Exception] = {}
    deadline = time.monotonic() + rt.settings.task_deadline_s
    for chunk, generation, future in futures:
        try:
            parsed.update(zip(chunk, future.result(timeout=max(0.0, deadline - time.monotonic())), strict=True))
        except TimeoutError as exc:
            parsed.update(dict.fromkeys(chunk, exc))
            if not in_threads:  # a stuck parse must not hold a pool slot for ever
                rt.processes.abandon({future: generation})
        except Exception as exc:
            parsed.update(dict.fromkeys(chunk, exc))
    return parsed


FetchOutcome = tuple[PageEntry, Fetched | FetchError, float]
Refill = Callable[[int], list[PageEntry]]


def crawl_batch(
    rt: Runtime,
    job_id: str,
    entries: Sequence[PageEntry],
    refill: Refill | None = None,
    parser: PageParser = crawl_parser,
) -> tuple[int, bool]:
    """Fetch, parse and record pages as they finish; returns (items counted, job ended).

    ``refill(n)`` claims up to ``n`` more pages of the job; it is called as
    pages finish while the session is young, to keep the job's concurrency in
    flight. ``parser`` picks the pool function that parses the pages (a scrape's
    extracts its items too).
    """
    job: CrawlJob | None = live_job(rt, job_id)
    if job is None:
        return 0, False
    policy, gate = request_context(rt, job_id, job.guard)
    return rt.loop.run(_session(rt, job_id, job, policy, gate, entries, refill, parser))


async def _session(
    rt: Runtime,
    job_id: str,
    job: CrawlJob,
    policy: AddressPolicy,
    gate: Gate | None,
    entries: Sequence[PageEntry],
    refill: Refill | None,
    parser: PageParser = crawl_parser,
) -> tuple[int, bool]:
    """The session itself, on the event loop: a page's fetch starts and ends with no thread hand-off.

    Fetching, claiming and recording overlap: claims and recordings (a pool round
    trip and a Lua call) run in threads, one of each at a time, while the loop
    goes on fetching; a claim fills the fetches back up to the target while the
    pages fetched before are still being recorded (``_Session``).
    """
    return await _Session(rt, job_id, job, policy, gate, refill, parser).run(entries)


class _Session:
    """One batch's pages: up to ``target`` fetching, the fetched ones recorded a group at a time.

    The fetches go on while a group is recorded: slots freed meanwhile are claimed
    again at once (when an eighth of the target is free), so the crawl is paced
    by the slower of fetching and recording, not by their sum. What is fetched but
    not yet recorded is bounded (``target`` more pages), as each page holds its body.
    """

    def __init__(
        self,
        rt: Runtime,
        job_id: str,
        job: CrawlJob,
        policy: AddressPolicy,
        gate: Gate | None,
        refill: Refill | None,
        parser: PageParser,
    ) -> None:
        self.rt, self.job_id, self.job, self.policy, self.gate = rt, job_id, job, policy, gate
        self.refill, self.parser = refill, parser
        self.started = time.monotonic()
        self.deadline = self.started + rt.settings.task_deadline_s
        self.target = job.guard.limits.concurrency
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
            hold = self.holds[entry.id] = self.rt.bodies.hold()
            task = asyncio.create_task(_fetch_one(self.rt, entry, self.job, self.policy, self.gate, hold))
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
                    self.record = self._in_thread(_record, self.rt, self.job_id, self.job, self.recording, self.parser)
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


def _record(
    rt: Runtime, job_id: str, job: CrawlJob, outcomes: list[FetchOutcome], parser: PageParser = crawl_parser
) -> tuple[int, bool]:
    """Parse the HTML among ``outcomes`` and record them all in one ledger call."""
    rt.metrics.observe_io("fetch", sum(seconds for _, _, seconds in outcomes), len(outcomes))
    html = {e.id: f for e, f, _ in outcomes if isinstance(f, Fetched) and f.content_type in HTML_TYPES}
    parsed = _parse_all(rt, html, job, parser) if html else {}
    payload: list[str] = []
    for entry, outcome, seconds in outcomes:
        timings = {"queue": entry.queue_s, "fetch": seconds}
        if isinstance(outcome, FetchError):
            if outcome.reason == "cancelled":
                continue  # the job ended under us: nothing to record
            failure = ItemResult.failure(entry.id, entry.url, outcome.reason, outcome.detail, kind="page",
                                         timings=timings, meta={"depth": entry.depth})  # fmt: skip
            payload.append(json.dumps(failure.to_json()))
        elif entry.id in parsed:
            info = parsed[entry.id]
            if isinstance(info, Exception):
                log.warning("parse failed", extra={"url": entry.url, "error": repr(info)})
                failure = ItemResult.failure(entry.id, entry.url, "parse_error", repr(info), kind="page",
                                             timings=timings, meta={"depth": entry.depth})  # fmt: skip
                payload.append(json.dumps(failure.to_json()))
                continue
            timings["parse"] = info.seconds
            if rt.settings.parse_pool == "processes":
                rt.metrics.observe(rt.processes.slot_of(info.pid), "parse", info.seconds)
            else:
                rt.metrics.observe_io("parse", info.seconds, counted=False)  # its fetch counted the page
            payload.append(_page_payload(entry, outcome, info, timings, rt.settings.max_parse_bytes))
        else:
            meta = {"depth": entry.depth, "content_type": outcome.content_type}
            other = ItemResult(id=entry.id, ok=True, source=entry.url, bytes_in=len(outcome.data), kind="other",
                               timings=timings, meta=meta)  # fmt: skip
            payload.append(json.dumps(other.to_json()))
    return rt.ledger.record_raw(job_id, payload, progress={"fetched": len(outcomes)})
