"""The image job's stages as they run inside a worker.

    fetch_batch          URLs on the event loop (aiohttp) -> blob store (within the
                         cluster's budget for fetched bytes, ``pipeline.ledger.blobs``)
                         -> hand-off
    transform_batch      claim output names (one round trip) -> per item, in a pool
                         child: read (local file) or take the fetched bytes, Pillow,
                         write the output -> one ledger write for the batch
    fetch_and_transform  both in one task: the fetched bytes go straight to this
                         worker's own pool, and one ledger write records the batch

A worker that transforms (it serves the transform queue) takes the third way:
the bytes it fetched never travel to Redis and back (measured on the docs site:
~56 MB per crawl, a blob write, read and delete and a task message per batch).
Only a worker that leaves transforming to others spills them to the blob store,
within the budget. Exactly-once is unchanged: the items stay leased and held by
this worker until they are recorded, so if it dies with bytes only in its
memory, the takeover (or the lease) re-sends the items, and a re-sent ``i``
item is a fetch: it is fetched again.

Image bytes never pass through the worker's main process for local files,
and cross the pipe once for fetched ones. Every failure becomes that item's
result; a batch never raises for an item's sake.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from pipeline.core.aggregate import ItemResult
from pipeline.core.bodies import Hold, current_hold
from pipeline.core.errors import FetchError, ItemError
from pipeline.core.fetch import current_user_agent, fetch_url
from pipeline.core.names import output_name, source_stem
from pipeline.core.sources import Item
from pipeline.core.ssrf import current_policy
from pipeline.kinds.images import ImageWork
from pipeline.output_dirs import refusal
from workers.chunk import RenderOutcome, render_chunk
from workers.job_context import live_job, request_context
from workers.runtime import Runtime

log = logging.getLogger(__name__)
DEFER_S = 2.0  # items given back (no room for their bytes, or their bytes lost) go out again after this


class Handoff(NamedTuple):
    """An item on its way to the transform stage (a URL's bytes are in the blob store).

    A named tuple, not a frozen dataclass: the transform task builds two per item
    (decoded, then with its queue time), and a tuple is built in a third of the time.
    """

    id: str
    src: str
    fetch_s: float
    queue_s: float

    def to_json(self) -> list[Any]:
        return [self.id, self.src, round(self.fetch_s, 6), round(self.queue_s, 6)]

    @classmethod
    def from_json(cls, raw: Sequence[Any]) -> Handoff:
        return cls(str(raw[0]), str(raw[1]), float(raw[2]), float(raw[3]))


def live_images(rt: Runtime, job_id: str) -> ImageWork | None:
    """What the image stages need of the job, or None when it is gone, cancelled or final."""
    job = live_job(rt, job_id)
    return None if job is None else job.images


Outcome = tuple[Item, bytes | FetchError, float]  # an item, its body or why not, seconds fetching


def _fetch_all(rt: Runtime, job_id: str, work: ImageWork, items: Sequence[Item]) -> tuple[list[Outcome], list[Hold]]:
    """Fetch every item on the event loop; the caller releases the holds once the bytes are handed on."""
    policy, gate = request_context(rt, job_id, work.guard)

    async def slot(url: str, hop: int) -> AbstractAsyncContextManager[None] | None:
        return gate.slot(url) if gate is not None else None

    holds = [rt.bodies.hold() for _ in items]  # large images wait for the worker's body budget

    async def one(item: Item, hold: Hold) -> Outcome:
        token = current_policy.set(policy)  # a crawl's images pass its SSRF guard too
        hold_token = current_hold.set(hold)
        agent = current_user_agent.set(work.guard.user_agent if work.guard else None)
        started = time.perf_counter()
        try:
            fetched = await fetch_url(rt.session, item.src, rt.limits, gate=slot)
            return item, fetched.data, time.perf_counter() - started
        except FetchError as exc:
            return item, exc, time.perf_counter() - started
        finally:
            current_user_agent.reset(agent)
            current_hold.reset(hold_token)
            current_policy.reset(token)

    async def all_items() -> list[Outcome]:
        return await asyncio.gather(*(one(item, hold) for item, hold in zip(items, holds, strict=True)))

    try:
        outcomes = rt.loop.run(all_items(), timeout=rt.settings.task_deadline_s)
    except BaseException:
        for hold in holds:
            hold.release()
        raise
    # Fetching runs on the event loop, not on a core: counted under the "io" pseudo-slot.
    rt.metrics.observe_io("fetch", sum(seconds for _, _, seconds in outcomes), len(outcomes))
    return outcomes, holds


def _split(
    outcomes: list[Outcome], queue_s: float, kind: str | None
) -> tuple[list[Handoff], dict[str, bytes], list[ItemResult]]:
    """The fetched items (hand-off entries and their bytes) apart from the failed ones (their results)."""
    handoff: list[Handoff] = []
    blobs: dict[str, bytes] = {}  # item id -> fetched bytes
    failures: list[ItemResult] = []
    for item, outcome, seconds in outcomes:
        if isinstance(outcome, FetchError):
            if outcome.reason == "cancelled":
                continue
            failures.append(ItemResult.failure(
                item.id, item.src, outcome.reason, outcome.detail,
                timings={"queue": queue_s, "fetch": seconds},
                kind=kind,
            ))  # fmt: skip
        else:
            blobs[item.id] = outcome
            handoff.append(Handoff(item.id, item.src, seconds, queue_s))
    return handoff, blobs, failures


def fetch_batch(rt: Runtime, job_id: str, items: Sequence[Item], queue_s: float) -> tuple[list[Handoff], bool]:
    """Fetch URL items into the blob store, for any worker to transform; returns the hand-off and whether
    the job ended."""
    work = live_images(rt, job_id)
    if work is None:
        return [], False
    if not rt.blobs.may_fetch(job_id, [item.id for item in items], rt.blob_budget()):  # no room: not now
        rt.ledger.defer(job_id, [item.id for item in items], DEFER_S)
        return [], False
    outcomes, holds = _fetch_all(rt, job_id, work, items)
    try:
        return _store_fetched(rt, job_id, work.label, queue_s, len(items), outcomes)
    finally:
        for hold in holds:  # the bytes are in the blob store (or the item failed): the budget is free again
            hold.release()


def fetch_and_transform(rt: Runtime, job_id: str, items: Sequence[Item], queue_s: float) -> tuple[int, bool]:
    """Fetch URL items and transform them in this worker's own pool, no blob store; returns (items counted,
    job ended). The fetched bytes count against the worker's body budget until they are transformed."""
    work = live_images(rt, job_id)
    if work is None:
        return 0, False
    outcomes, holds = _fetch_all(rt, job_id, work, items)
    try:
        entries, fetched, failures = _split(outcomes, queue_s, work.label)
        del outcomes
        progress = {"fetched": len(items), "transformed": len(entries)}
        return _transform(rt, job_id, work, entries, fetched, failures, progress)
    finally:
        for hold in holds:
            hold.release()


def _store_fetched(
    rt: Runtime,
    job_id: str,
    kind: str | None,
    queue_s: float,
    count: int,
    outcomes: list[Outcome],
) -> tuple[list[Handoff], bool]:
    """Fetched bytes into the blob store, failures into the ledger; the hand-off to the transform stage."""
    handoff, blobs, failures = _split(outcomes, queue_s, kind)
    if blobs:
        handoff = _spill(rt, job_id, kind, blobs, handoff, failures)
    _, finished = rt.ledger.record(job_id, failures, progress={"fetched": count - len(blobs) + len(handoff)})
    return handoff, finished


def _spill(
    rt: Runtime,
    job_id: str,
    kind: str | None,
    blobs: dict[str, bytes],
    handoff: list[Handoff],
    failures: list[ItemResult],
) -> list[Handoff]:
    """Fetched bytes into Redis within the cluster's blob budget; returns the hand-off of those stored.

    Waits up to ``PIPELINE_BLOB_WAIT_S`` for room (``BlobStore.put_many``), then
    gives the rest back to be sent again in a moment (``Ledger.defer``), so a
    full budget never holds a task thread for long and never loses an item. A
    body larger than the whole budget can never pass through Redis: it fails,
    saying so.
    """
    budget = rt.blob_budget()
    # A quarter of the task deadline at most: the batch must still hand off well within its visibility timeout.
    wait_s = min(rt.settings.blob_wait_s, rt.settings.task_deadline_s / 4)
    stored = rt.blobs.put_many(job_id, blobs, rt.settings.blob_expiry_s, budget=budget, wait_s=wait_s)
    by_id = {h.id: h for h in handoff}
    for item_id in stored.too_large:
        item = by_id[item_id]
        failures.append(ItemResult.failure(
            item.id, item.src, "too_large_for_redis",
            f"{len(blobs[item_id])} bytes fetched; the Redis blob budget is {budget} bytes "
            "(raise PIPELINE_BLOB_BUDGET_BYTES or Redis maxmemory)",
            timings={"queue": item.queue_s, "fetch": item.fetch_s}, kind=kind,
        ))  # fmt: skip
    if stored.no_room:
        log.warning("blob budget spent: items given back to be fetched again", extra={
            "job_id": job_id, "items": len(stored.no_room), "budget": budget,
            "redis_memory": rt.redis_memory_figures().describe()})  # fmt: skip
        rt.ledger.defer(job_id, stored.no_room, DEFER_S)
    written = set(stored.written)
    return [h for h in handoff if h.id in written]


class ItemCost:
    """A running estimate of one item's time in a pool child (read + transform + write).

    It sizes pool calls: items that cost a fraction of a pool call's own
    overhead (~0.2 ms) go in chunks of about ``CHUNK_S`` of work; photos
    (tens of ms each) keep one call per item, which balances the pool best.
    Profiled on 20,000 16x16 PNGs with 10 ms chunks, a sixth of the children's
    time and of the worker's went to the pool's own pipes, locks and futures;
    the batch's tail a chunk can leave on one child is filled by the other
    batches in flight. One per worker process; threads update it without a
    lock (a lost update only delays the estimate).
    """

    CHUNK_S = 0.04
    MAX_CHUNK = 256

    def __init__(self) -> None:
        self.seconds: float | None = None  # unknown until the first items come back: one per call

    def observe(self, seconds: float, items: int) -> None:
        if items:
            mean = seconds / items
            self.seconds = mean if self.seconds is None else 0.8 * self.seconds + 0.2 * mean

    def chunk_size(self, items: int, processes: int) -> int:
        if self.seconds is None or items <= 1:
            return 1
        fits = int(self.CHUNK_S / max(self.seconds, 1e-6))
        return max(1, min(fits, self.MAX_CHUNK, -(-items // processes)))


ITEM_COST = ItemCost()
# Shared, never mutated: every rendered item's ``meta`` is one of these.
_CACHED: Mapping[str, Any] = MappingProxyType({"cached": True})
_NOT_CACHED: Mapping[str, Any] = MappingProxyType({})
Call = list[tuple[Handoff, dict[str, Any]]]  # the items of one pool call, with their timings


class _Batch:
    """The state of one transform batch while its pool calls are in flight.

    Items go to the pool in chunks (``workers.chunk.render_chunk``, sized by
    ``ItemCost``): the child reads a local file (or takes fetched bytes),
    transforms and writes the output itself. Output names are claimed for the
    whole batch up front, in one Redis round trip.
    """

    def __init__(self, rt: Runtime, job_id: str, work: ImageWork) -> None:
        self.rt, self.job_id = rt, job_id
        self.plan = work.plan
        self.plan_json = self.plan.to_json()
        self.out_dir = work.output_dir
        self.pending: dict[Future[Any], Call] = {}
        self.results: list[ItemResult] = []
        self.attempts: dict[str, int] = {}
        self.kind = work.label
        self.names: dict[str, str] = {}

    def claim_names(self, items: Sequence[Handoff]) -> None:
        wanted = [_names(i, self.plan.extension) for i in items]
        self.names = dict(zip([i.id for i in items], self.rt.ledger.claim_names(self.job_id, wanted), strict=True))

    def fail(self, item: Handoff, error: ItemError, timings: dict[str, Any]) -> None:
        self.results.append(ItemResult.failure(
            item.id, item.src, error.reason, error.detail, timings=_stage_times(timings),
            bytes_in=int(timings.get("bytes_in", 0)), kind=self.kind,
        ))  # fmt: skip

    def submit_all(self, calls: Sequence[tuple[Handoff, str | bytes, dict[str, Any]]]) -> None:
        """First attempt of each item, in chunks of about ``ItemCost.CHUNK_S`` of work."""
        size = ITEM_COST.chunk_size(len(calls), self.rt.processes.size)
        for start in range(0, len(calls), size):
            self.submit(calls[start : start + size])

    def submit(self, calls: Sequence[tuple[Handoff, str | bytes, dict[str, Any]]]) -> None:
        pairs = []
        for item, source, timings in calls:
            self.attempts[item.id] = self.attempts.get(item.id, 0) + 1
            timings["source"] = source
            pairs.append((source, self.names[item.id]))
        args = (pairs, self.plan_json, self.out_dir, self.rt.settings.max_body_bytes)
        generation: int | None
        if any(self.attempts[item.id] > 1 for item, _, _ in calls):
            # A retry after a crash runs alone: a poison neighbour cannot fail it.
            generation, future = None, self.rt.processes.isolated(render_chunk, *args)
        else:
            generation, future = self.rt.processes.submit(render_chunk, *args)
        for _, _, timings in calls:
            timings["generation"] = generation
        self.pending[future] = [(item, timings) for item, _, timings in calls]

    def on_done(self, future: Future[Any]) -> None:
        call = self.pending.pop(future)
        try:
            result: tuple[int, list[RenderOutcome]] = future.result()
        except BrokenProcessPool:
            for item, timings in call:
                self._crashed(item, timings)
            return
        except Exception as exc:
            log.exception("unexpected error rendering", extra={"items": len(call)})
            for item, timings in call:
                self.fail(item, ItemError("transform_error", f"{type(exc).__name__}: {exc}"), timings)
            return
        pid, outcomes = result
        # A one-off child (a retry) has no slot of its own: its work counts under slot 0.
        slot = 0 if call[0][1].get("generation") is None else self.rt.processes.slot_of(pid)
        read = transform = store = 0.0
        local = rendered = 0
        fmt, kind, names, results = self.plan.format, self.kind, self.names, self.results
        for (item, timings), done in zip(call, outcomes, strict=True):
            is_local = "://" not in item.src
            local += is_local
            if isinstance(done, ItemError):
                timings.pop("source", None)
                self.fail(item, done, timings)
                continue
            bytes_in, bytes_out, width, height, read_s, transform_s, write_s, cached = done
            if is_local:  # the child read the file: that is this item's fetch
                read += read_s
                fetch = read_s
            else:
                fetch = timings["fetch"]
            transform += transform_s
            store += write_s
            rendered += 1
            stage_times = {"queue": round(timings["queue"], 6), "fetch": round(fetch, 6),
                           "transform": round(transform_s, 6), "store": round(write_s, 6)}  # fmt: skip
            results.append(ItemResult(
                id=item.id, ok=True, source=item.src, output=names[item.id], bytes_in=bytes_in,
                bytes_out=bytes_out, format=fmt, width=width, height=height, timings=stage_times, slot=slot,
                kind=kind, meta=_CACHED if cached else _NOT_CACHED,
            ))  # fmt: skip
        # The child read (a local file), transformed and wrote: all of it busy time on that core,
        # and one item each (counted by its transform), not three.
        metrics = self.rt.metrics
        if local:
            metrics.observe(slot, "fetch", read, local, counted=False)
        if rendered:
            metrics.observe(slot, "transform", transform, rendered)
            metrics.observe(slot, "store", store, rendered, counted=False)
        ITEM_COST.observe(read + transform + store, rendered)

    def _crashed(self, item: Handoff, timings: dict[str, Any]) -> None:
        """A pool child died: rebuild the pool and retry the item alone, up to the attempt cap."""
        if timings["generation"] is not None:
            self.rt.processes.recover(int(timings["generation"]))
        source = timings.pop("source")
        if self.attempts.get(item.id, 0) >= self.rt.settings.transform_attempts:
            self.fail(item, ItemError("worker_crashed", "the image process died on every attempt"), timings)
            return
        self.submit([(item, source, timings)])

    def wait(self, deadline: float) -> None:
        """Collect every call (retries included) until done or ``deadline`` (monotonic)."""
        while self.pending:
            try:
                for future in as_completed(list(self.pending), timeout=max(0.0, deadline - time.monotonic())):
                    self.on_done(future)
            except TimeoutError:
                stuck = {}
                for future, call in list(self.pending.items()):
                    if not future.cancel():  # running: its child is stuck, and is killed below
                        stuck[future] = call[0][1].get("generation")
                    for item, timings in call:
                        self.fail(item, ItemError("deadline", "the batch ran past its deadline"), timings)
                self.pending.clear()
                if stuck and (killed := self.rt.processes.abandon(stuck)):
                    log.warning("killed stuck pool processes at the deadline", extra={"processes": killed})


def _names(item: Handoff, ext: str) -> tuple[str, str, str, str]:
    """(id, name, name with a short hash, name with the whole id): what ``claim_names`` may pick."""
    if not (item.id.isascii() and item.id.isalnum()):  # not one of our hex ids: the general rule
        return (item.id, output_name(item.src, ext), output_name(item.src, ext, item.id[:8]),
                output_name(item.src, ext, item.id))  # fmt: skip
    stem = source_stem(item.src)  # once, not three times (it parses the source)
    return item.id, f"{stem}{ext}", f"{stem}-{item.id[:8]}{ext}", f"{stem}-{item.id}{ext}"


def _stage_times(timings: dict[str, Any]) -> dict[str, float]:
    return {k: round(float(timings[k]), 6) for k in ("queue", "fetch", "transform", "store") if k in timings}


def transform_batch(rt: Runtime, job_id: str, entries: Sequence[Handoff]) -> tuple[int, bool]:
    """Load (local files, or fetched bytes from the blob store), transform, store and record a batch;
    returns (items counted, job ended)."""
    url_ids = [e.id for e in entries if "://" in e.src]
    try:
        work = live_images(rt, job_id)
        if work is None:
            return 0, False
        fetched: dict[str, bytes] = {}
        missing: list[str] = []
        for item_id, data in zip(url_ids, rt.blobs.get_many(job_id, url_ids), strict=True):
            if data is None:
                missing.append(item_id)
            else:
                fetched[item_id] = data
        if missing:  # expired, or deleted by a re-delivered copy of this batch: fetch them again, soon
            log.info("fetched bytes missing: items given back to be fetched again",
                     extra={"job_id": job_id, "items": len(missing)})  # fmt: skip
            rt.ledger.defer(job_id, missing, DEFER_S)
            entries = [e for e in entries if "://" not in e.src or e.id in fetched]
        progress = {"transformed": len(entries)}
        if len(entries) > len(fetched):  # local files are "fetched" (read) here
            progress["fetched"] = len(entries) - len(fetched)
        return _transform(rt, job_id, work, entries, fetched, [], progress)
    finally:
        # Recorded (or failed, or the job is gone): the bytes are of no more use, and their room is
        # the budget's again. Deleting needs no memory, so this works when Redis is full.
        if url_ids:
            rt.blobs.delete_many(job_id, url_ids)


def _transform(
    rt: Runtime,
    job_id: str,
    work: ImageWork,
    entries: Sequence[Handoff],
    fetched: Mapping[str, bytes | None],
    failures: list[ItemResult],
    progress: dict[str, int],
) -> tuple[int, bool]:
    """Transform ``entries`` (a URL's bytes in ``fetched``, None when lost) in the pool and record them,
    with ``failures`` (items that failed before), in one ledger write."""
    refused = refusal(Path(work.output_dir), rt.settings.output_root)
    if refused is not None:  # this worker's own rule, whatever the message says (pipeline.output_dirs)
        log.warning("refusing to write outside the output root", extra={"job_id": job_id, "why": refused})
        failures += [ItemResult.failure(e.id, e.src, "output_refused", refused, kind=work.label) for e in entries]
        return rt.ledger.record(job_id, failures, progress=progress)
    batch = _Batch(rt, job_id, work)
    batch.results.extend(failures)
    batch.claim_names(entries)
    calls: list[tuple[Handoff, str | bytes, dict[str, Any]]] = []
    for entry in entries:
        if "://" not in entry.src:
            continue
        timings: dict[str, Any] = {"queue": entry.queue_s, "fetch": entry.fetch_s}
        data = fetched.get(entry.id)
        if data is None:
            batch.fail(entry, FetchError("blob_missing", "fetched bytes expired or were lost"), timings)
        else:
            timings["bytes_in"] = len(data)
            calls.append((entry, data, timings))
    calls += [(e, e.src, {"queue": e.queue_s, "fetch": e.fetch_s}) for e in entries if "://" not in e.src]
    batch.submit_all(calls)
    del calls
    batch.wait(time.monotonic() + rt.settings.task_deadline_s)
    # Pre-encoded (``to_json_text``: what ``Ledger.record`` would send, in half its encoding time).
    return rt.ledger.record_raw(job_id, [r.to_json_text() for r in batch.results], progress)
