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
result; a batch never raises for an item's sake. How a batch runs on the
pool (chunk sizes, crashed or stuck children, the deadline) is
``workers.pool_batch``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from pipeline.core.aggregate import ItemResult
from pipeline.core.bodies import Hold, current_hold
from pipeline.core.errors import FetchError
from pipeline.core.fetch import current_user_agent, fetch_url
from pipeline.core.sources import Item
from pipeline.core.ssrf import current_policy
from pipeline.kinds.images import ImageWork
from pipeline.output_dirs import refusal
from workers.job_context import live_job, request_context
from workers.pool_batch import Handoff, PoolBatch
from workers.processes import trim_memory
from workers.runtime import Runtime

log = logging.getLogger(__name__)
DEFER_S = 2.0  # items given back (no room for their bytes, or their bytes lost) go out again after this


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

    group = rt.bodies.group()  # the batch keeps its bodies to its end: it waits for room only while it holds none
    holds = [group.hold() for _ in items]

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

    deadline_s = rt.settings.task_deadline_s

    async def all_items() -> list[Outcome]:
        """Every item's outcome; one still fetching at the batch's deadline fails alone (``deadline``)."""
        started = time.perf_counter()
        tasks = [asyncio.ensure_future(one(item, hold)) for item, hold in zip(items, holds, strict=True)]
        if not tasks:
            return []
        try:
            _, late = await asyncio.wait(tasks, timeout=deadline_s)
        finally:  # past the deadline, or this coroutine cancelled: no fetch goes on without its batch
            for task in tasks:
                if not task.done():
                    task.cancel()
        past = FetchError("deadline", f"still fetching when the batch reached its deadline ({deadline_s:g} s)")
        return [task.result() if task not in late else (item, past, time.perf_counter() - started)
                for item, task in zip(items, tasks, strict=True)]  # fmt: skip

    try:
        outcomes = rt.loop.run(all_items(), timeout=deadline_s + 30)  # the inner deadline ends it first
    except BaseException:
        for hold in holds:
            hold.release()
        raise
    # Fetching runs on the event loop, not on a core: counted under the "io" pseudo-slot.
    rt.metrics.observe_io("fetch", sum(seconds for _, _, seconds in outcomes), len(outcomes))
    return outcomes, holds


def _split(
    outcomes: list[Outcome], queue_s: float, kind: str | None
) -> tuple[list[Handoff], dict[str, bytes], list[ItemResult], list[str]]:
    """The fetched items (hand-off entries and their bytes) apart from the failed ones (their results)
    and the deferred ones (no room for their bodies in this batch: ids to give back)."""
    handoff: list[Handoff] = []
    blobs: dict[str, bytes] = {}  # item id -> fetched bytes
    failures: list[ItemResult] = []
    deferred: list[str] = []
    for item, outcome, seconds in outcomes:
        if isinstance(outcome, FetchError):
            if outcome.reason == "cancelled":
                continue
            if outcome.reason == "deferred":
                deferred.append(item.id)
                continue
            failures.append(ItemResult.failure(
                item.id, item.src, outcome.reason, outcome.detail,
                timings={"queue": queue_s, "fetch": seconds},
                kind=kind,
            ))  # fmt: skip
        else:
            blobs[item.id] = outcome
            handoff.append(Handoff(item.id, item.src, seconds, queue_s))
    return handoff, blobs, failures, deferred


def _let_go(holds: list[Hold]) -> None:
    """Release a batch's room in the body budget; after large bodies, hand their memory back at once.

    Collected first: the worker's raised collector thresholds (``workers.heap``) let cycles keep a
    batch's bodies alive for a while. Four jobs of 40 photos of 3.8 MB from URLs, worker main: RSS
    after them 295 MB and peak 339 without this (198 / 272 with the default thresholds), 99-124 /
    275 with it.
    """
    large = any(hold.taken for hold in holds)
    for hold in holds:
        hold.release()
    if large:
        trim_memory()


def _give_back(rt: Runtime, job_id: str, deferred: list[str]) -> None:
    """Items whose bodies found no room in this batch's share of the body budget: fetched again soon."""
    if deferred:
        log.info("no room for more large bodies in this batch: items given back to be fetched again",
                 extra={"job_id": job_id, "items": len(deferred)})  # fmt: skip
        rt.ledger.defer(job_id, deferred, DEFER_S)


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
        outcomes.clear()  # the last references to the bodies, so _let_go can hand their memory back
        _let_go(holds)  # the bytes are in the blob store (or the item failed): the budget is free again


def fetch_and_transform(rt: Runtime, job_id: str, items: Sequence[Item], queue_s: float) -> tuple[int, bool]:
    """Fetch URL items and transform them in this worker's own pool, no blob store; returns (items counted,
    job ended). The fetched bytes count against the worker's body budget until they are transformed."""
    work = live_images(rt, job_id)
    if work is None:
        return 0, False
    outcomes, holds = _fetch_all(rt, job_id, work, items)
    try:
        return _transform_fetched(rt, job_id, work, outcomes, queue_s, len(items))
    finally:
        outcomes.clear()  # the last references to the bodies, so _let_go can hand their memory back
        _let_go(holds)


def _transform_fetched(
    rt: Runtime, job_id: str, work: ImageWork, outcomes: list[Outcome], queue_s: float, count: int
) -> tuple[int, bool]:
    entries, fetched, failures, deferred = _split(outcomes, queue_s, work.label)
    _give_back(rt, job_id, deferred)
    progress = {"fetched": count - len(deferred), "transformed": len(entries)}
    return _transform(rt, job_id, work, entries, fetched, failures, progress)


def _store_fetched(
    rt: Runtime,
    job_id: str,
    kind: str | None,
    queue_s: float,
    count: int,
    outcomes: list[Outcome],
) -> tuple[list[Handoff], bool]:
    """Fetched bytes into the blob store, failures into the ledger; the hand-off to the transform stage."""
    handoff, blobs, failures, deferred = _split(outcomes, queue_s, kind)
    _give_back(rt, job_id, deferred)
    if blobs:
        handoff = _spill(rt, job_id, kind, blobs, handoff, failures)
    fetched = count - len(deferred) - len(blobs) + len(handoff)
    _, finished = rt.ledger.record(job_id, failures, progress={"fetched": fetched})
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
    batch = PoolBatch(rt, job_id, work)
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
