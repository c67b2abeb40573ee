"""One transform batch in the worker's process pool: chunks sized by cost, retries, deadline.

Split from ``workers.image_stages`` (which decides *what* a batch is: local
files, fetched bytes from this worker or from the blob store) so that the
mechanics of running it on the pool (how many items per pool call, a child
that crashes or sticks, output names claimed up front) live in one place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, as_completed
from concurrent.futures.process import BrokenProcessPool
from types import MappingProxyType
from typing import Any, NamedTuple

from pipeline.core.aggregate import ItemResult
from pipeline.core.errors import ItemError
from pipeline.core.names import output_name, source_stem
from pipeline.kinds.images import ImageWork
from workers.chunk import RenderOutcome, render_chunk
from workers.runtime import Runtime

log = logging.getLogger(__name__)


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


class PoolBatch:
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
        wanted = [claim_candidates(i, self.plan.extension) for i in items]
        self.names = dict(zip([i.id for i in items], self.rt.ledger.claim_names(self.job_id, wanted), strict=True))

    def fail(self, item: Handoff, error: ItemError, timings: dict[str, Any]) -> None:
        self.results.append(ItemResult.failure(
            item.id, item.src, error.reason, error.detail, timings=stage_times(timings),
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


def claim_candidates(item: Handoff, ext: str) -> tuple[str, str, str, str]:
    """(id, name, name with a short hash, name with the whole id): what ``claim_names`` may pick."""
    if not (item.id.isascii() and item.id.isalnum()):  # not one of our hex ids: the general rule
        return (item.id, output_name(item.src, ext), output_name(item.src, ext, item.id[:8]),
                output_name(item.src, ext, item.id))  # fmt: skip
    stem = source_stem(item.src)  # once, not three times (it parses the source)
    return item.id, f"{stem}{ext}", f"{stem}-{item.id[:8]}{ext}", f"{stem}-{item.id}{ext}"


def stage_times(timings: dict[str, Any]) -> dict[str, float]:
    return {k: round(float(timings[k]), 6) for k in ("queue", "fetch", "transform", "store") if k in timings}
