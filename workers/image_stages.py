"""The image job's stages as they run inside a worker.

    fetch_batch      URLs on the event loop (aiohttp) -> blob store -> hand-off
    transform_batch  claim output names (one round trip) -> per item, in a pool
                     child: read (local file) or take the fetched bytes, Pillow,
                     write the output -> one ledger write for the batch

Image bytes never pass through the worker's main process for local files,
and cross the pipe once for fetched ones. Every failure becomes that item's
result; a batch never raises for an item's sake.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from pipeline.blobs import blob_key
from pipeline.core.aggregate import ItemResult
from pipeline.core.document import FINAL_STATES
from pipeline.core.errors import FetchError, ItemError
from pipeline.core.fetch import fetch_url
from pipeline.core.imaging import TransformPlan
from pipeline.core.names import output_name
from pipeline.core.sources import Item
from pipeline.core.ssrf import current_policy
from workers.child import Rendered, render
from workers.job_context import item_kind, request_context
from workers.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fetched:
    """An item whose bytes are in the blob store, on its way to the transform queue."""

    id: str
    src: str
    fetch_s: float
    queue_s: float

    def to_json(self) -> list[Any]:
        return [self.id, self.src, round(self.fetch_s, 6), round(self.queue_s, 6)]

    @classmethod
    def from_json(cls, raw: Sequence[Any]) -> Fetched:
        return cls(str(raw[0]), str(raw[1]), float(raw[2]), float(raw[3]))


def live_spec(rt: Runtime, job_id: str) -> dict[str, Any] | None:
    """The job's spec, or None when the job is gone, cancelled or already final."""
    state, spec = rt.ledger.job_state_and_spec(job_id)
    if state is None or spec is None or state in FINAL_STATES:
        log.info("skipping batch", extra={"job_id": job_id, "state": state})
        return None
    if state == "queued":
        rt.ledger.mark_running(job_id)
    return spec


def fetch_batch(rt: Runtime, job_id: str, items: Sequence[Item], queue_s: float) -> tuple[list[Fetched], bool]:
    """Fetch URL items into the blob store; returns the hand-off and whether the job ended."""
    spec = live_spec(rt, job_id)
    if spec is None:
        return [], False
    policy, gate = request_context(rt, job_id, spec)
    kind = item_kind(spec)

    async def slot(url: str, hop: int) -> AbstractAsyncContextManager[None] | None:
        return gate.slot(url) if gate is not None else None

    async def one(item: Item) -> tuple[Item, bytes | FetchError, float]:
        token = current_policy.set(policy)  # a crawl's images pass its SSRF guard too
        started = time.perf_counter()
        try:
            fetched = await fetch_url(rt.session, item.src, rt.limits, gate=slot)
            return item, fetched.data, time.perf_counter() - started
        except FetchError as exc:
            return item, exc, time.perf_counter() - started
        finally:
            current_policy.reset(token)

    async def all_items() -> list[tuple[Item, bytes | FetchError, float]]:
        return await asyncio.gather(*(one(item) for item in items))

    outcomes = rt.loop.run(all_items(), timeout=rt.settings.task_deadline_s)
    # Fetching runs on the event loop, not on a core: counted under the "io" pseudo-slot.
    rt.metrics.observe_io("fetch", sum(seconds for _, _, seconds in outcomes), len(outcomes))
    blobs: dict[str, bytes] = {}
    handoff: list[Fetched] = []
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
            blobs[blob_key(job_id, item.id)] = outcome
            handoff.append(Fetched(item.id, item.src, seconds, queue_s))
    if blobs:
        rt.blobs.put_many(blobs, rt.settings.blob_ttl_s)
    rt.ledger.advance(job_id, "fetched", len(items))
    _, finished = rt.ledger.record(job_id, failures)
    return handoff, finished


class _Batch:
    """The state of one transform batch while its pool calls are in flight.

    Each item is one call into the pool (``workers.child.render``): the child
    reads a local file (or takes fetched bytes), transforms and writes the
    output itself. Output names are claimed for the whole batch up front, in
    one Redis round trip.
    """

    def __init__(self, rt: Runtime, job_id: str, spec: dict[str, Any]) -> None:
        self.rt, self.job_id = rt, job_id
        self.plan = TransformPlan.from_json(spec["plan"])
        self.plan_json = self.plan.to_json()
        self.out_dir = str(spec["output_dir"])
        self.pending: dict[Future[Any], tuple[Fetched, dict[str, Any]]] = {}
        self.results: list[ItemResult] = []
        self.attempts: dict[str, int] = {}
        self.kind = item_kind(spec)
        self.names: dict[str, str] = {}

    def claim_names(self, items: Sequence[Fetched]) -> None:
        ext = self.plan.extension
        wanted = [(i.id, output_name(i.src, ext), output_name(i.src, ext, i.id[:8]), output_name(i.src, ext, i.id))
                  for i in items]  # fmt: skip
        self.names = dict(zip([i.id for i in items], self.rt.ledger.claim_names(self.job_id, wanted), strict=True))

    def fail(self, item: Fetched, error: ItemError, timings: dict[str, Any]) -> None:
        self.results.append(ItemResult.failure(
            item.id, item.src, error.reason, error.detail, timings=_stage_times(timings),
            bytes_in=int(timings.get("bytes_in", 0)), kind=self.kind,
        ))  # fmt: skip

    def submit(self, item: Fetched, source: str | bytes, timings: dict[str, Any]) -> None:
        self.attempts[item.id] = self.attempts.get(item.id, 0) + 1
        args = (source, self.plan_json, self.out_dir, self.names[item.id], self.rt.settings.max_body_bytes)
        generation: int | None
        if self.attempts[item.id] > 1:  # a retry after a crash runs alone: a poison neighbour cannot fail it
            generation, future = None, self.rt.processes.isolated(render, *args)
        else:
            generation, future = self.rt.processes.submit(render, *args)
        timings["generation"], timings["source"] = generation, source
        self.pending[future] = (item, timings)

    def on_done(self, future: Future[Any]) -> None:
        item, timings = self.pending.pop(future)
        try:
            done: Rendered = future.result()
        except BrokenProcessPool:
            self._crashed(item, timings)
            return
        except ItemError as exc:
            self.fail(item, exc, timings)
            return
        except Exception as exc:
            log.exception("unexpected error rendering", extra={"item": item.id})
            self.fail(item, ItemError("transform_error", f"{type(exc).__name__}: {exc}"), timings)
            return
        timings.pop("source", None)
        if "://" not in item.src:
            timings["fetch"] = done.read_s
        timings.update(transform=done.transform_s, store=done.write_s)
        isolated = timings.get("generation") is None  # a one-off child has no slot of its own
        slot = 0 if isolated else self.rt.processes.slot_of(done.pid)
        # The child read (a local file), transformed and wrote: all of it busy time on that core.
        if "://" not in item.src:
            self.rt.metrics.observe(slot, "fetch", done.read_s)
        self.rt.metrics.observe(slot, "transform", done.transform_s)
        self.rt.metrics.observe(slot, "store", done.write_s)
        self.results.append(ItemResult(
            id=item.id, ok=True, source=item.src, output=self.names[item.id], bytes_in=done.bytes_in,
            bytes_out=done.bytes_out, format=self.plan.format, width=done.width, height=done.height,
            timings=_stage_times(timings), slot=slot, kind=self.kind,
        ))  # fmt: skip

    def _crashed(self, item: Fetched, timings: dict[str, Any]) -> None:
        """A pool child died: rebuild the pool and retry, up to the attempt cap."""
        if timings["generation"] is not None:
            self.rt.processes.recover(int(timings["generation"]))
        source = timings.pop("source")
        if self.attempts.get(item.id, 0) >= self.rt.settings.transform_attempts:
            self.fail(item, ItemError("worker_crashed", "the image process died on every attempt"), timings)
            return
        self.submit(item, source, timings)


def _stage_times(timings: dict[str, Any]) -> dict[str, float]:
    return {k: round(float(timings[k]), 6) for k in ("queue", "fetch", "transform", "store") if k in timings}


def transform_batch(rt: Runtime, job_id: str, entries: Sequence[Fetched]) -> tuple[int, bool]:
    """Load, transform, store and record a batch; returns (items counted, job ended)."""
    spec = live_spec(rt, job_id)
    if spec is None:
        return 0, False
    batch = _Batch(rt, job_id, spec)
    batch.claim_names(entries)
    url_items = [e for e in entries if "://" in e.src]
    blobs = rt.blobs.get_many([blob_key(job_id, e.id) for e in url_items])
    for entry, data in zip(url_items, blobs, strict=True):
        timings: dict[str, Any] = {"queue": entry.queue_s, "fetch": entry.fetch_s}
        if data is None:
            batch.fail(entry, FetchError("blob_missing", "fetched bytes expired or were lost"), timings)
        else:
            timings["bytes_in"] = len(data)
            batch.submit(entry, data, timings)
    del blobs
    for entry in entries:
        if "://" not in entry.src:
            batch.submit(entry, entry.src, {"queue": entry.queue_s, "fetch": entry.fetch_s})
    deadline = time.monotonic() + rt.settings.task_deadline_s
    while batch.pending:
        done, _ = wait(list(batch.pending), timeout=max(0.0, deadline - time.monotonic()),
                       return_when=FIRST_COMPLETED)  # fmt: skip
        if not done:
            for future, (item, timings) in list(batch.pending.items()):
                future.cancel()
                batch.fail(item, ItemError("deadline", "the batch ran past its deadline"), timings)
            batch.pending.clear()
            break
        for future in done:
            batch.on_done(future)
    counted, finished = rt.ledger.record(job_id, batch.results)
    rt.ledger.advance(job_id, "transformed", len(entries))
    if len(entries) > len(url_items):  # local files are "fetched" (read) here
        rt.ledger.advance(job_id, "fetched", len(entries) - len(url_items))
    if url_items:
        rt.blobs.delete_many([blob_key(job_id, e.id) for e in url_items])
    return counted, finished
