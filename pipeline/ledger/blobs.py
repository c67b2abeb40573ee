"""Where large payloads wait between stages, so messages only carry references.

A fetched image body is written here by the fetch task and read back by the
transform task, possibly on another machine: Redis strings shared by every
worker, keyed by job and item.

They share Redis with the broker and the ledger, so they live under a
cluster-wide budget (``lua/blob_reserve.lua``): room is reserved, atomically
across workers, before a blob is written, and given back when it is deleted
(``lua/blob_release.lua``) — as soon as its item is recorded. A reservation
expires with its blob, so a worker that dies holding some leaks them only
until then. ``put_many`` is the one place that waits for room.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from pipeline.ledger.connection import translated
from pipeline.ledger.keys import BLOB_HELD, BLOB_SIZES, BLOB_TOTAL, blob_key
from pipeline.ledger.memory import FULL_HINT, read_memory
from pipeline.ledger.scripts import lua

log = logging.getLogger(__name__)
_BUDGET_KEYS = [BLOB_HELD, BLOB_SIZES, BLOB_TOTAL]
_CHUNK = 500


@dataclass
class Stored:
    """What ``put_many`` did with each item: written, over the whole budget, or no room in time."""

    written: list[str] = field(default_factory=list)
    too_large: list[str] = field(default_factory=list)  # larger than the budget itself: can never fit
    no_room: list[str] = field(default_factory=list)  # the budget stayed spent for the whole wait


@dataclass(frozen=True)
class BudgetState:
    held: int  # bytes reserved now, all workers together
    blobs: int  # blobs held


@translated
class BlobStore:
    """Blobs as Redis strings with a TTL, under the budget; one round trip per batch and step."""

    POLL_S = (0.05, 1.0)  # first and longest pause between attempts while the budget is spent
    WARN_EVERY_S = 30.0

    def __init__(self, client: redis.Redis) -> None:
        self.client: Any = client  # a binary (non-decoding) client: values are bytes
        self._reserve = client.register_script(lua("blob_reserve.lua"))
        self._release = client.register_script(lua("blob_release.lua"))
        self._warned_at = float("-inf")  # a lost update between threads costs one extra line, no more

    def put_many(
        self, job_id: str, blobs: Mapping[str, bytes], ttl_s: int, *, budget: int, wait_s: float = 0.0
    ) -> Stored:
        """Keep each item's bytes (item id -> bytes) for up to ``ttl_s``, within ``budget`` bytes held in all.

        Waits up to ``wait_s`` for room (other workers' transforms delete blobs
        as they record them); what is still waiting then comes back as
        ``no_room``, and a blob larger than the whole budget as ``too_large``.
        Redis refusing a write as out of memory counts as no room.
        """
        stored = Stored(too_large=[i for i, data in blobs.items() if len(data) > budget])
        waiting = {i: data for i, data in blobs.items() if len(data) <= budget}
        deadline = time.monotonic() + wait_s
        pause, announced = self.POLL_S[0], False
        while waiting:
            granted = self._try_put(job_id, waiting, ttl_s, budget)
            stored.written += granted
            for item_id in granted:
                del waiting[item_id]
            if not waiting or time.monotonic() + pause > deadline:
                break
            if not announced:
                announced = True
                log.info("blob budget spent: waiting for room", extra={
                    "job_id": job_id, "waiting": len(waiting), "budget": budget, "wait_s": wait_s})  # fmt: skip
            time.sleep(pause)
            pause = min(pause * 2, self.POLL_S[1])
        stored.no_room = list(waiting)
        return stored

    def _try_put(self, job_id: str, blobs: Mapping[str, bytes], ttl_s: int, budget: int) -> list[str]:
        """Reserve what fits now, then write it; returns the item ids written."""
        ids = list(blobs)
        keys = [blob_key(job_id, i) for i in ids]
        args: list[Any] = [repr(time.time()), ttl_s, budget]
        for key, item_id in zip(keys, ids, strict=True):
            args += [key, len(blobs[item_id])]
        try:
            positions = self._reserve(keys=_BUDGET_KEYS, args=args)
        except redis.OutOfMemoryError:
            self._full("reserving room for fetched bytes")
            return []
        granted = [ids[int(p) - 1] for p in positions]
        if not granted:
            return []
        pipe = self.client.pipeline(transaction=False)
        for item_id in granted:
            pipe.set(blob_key(job_id, item_id), blobs[item_id], ex=ttl_s)
        results = pipe.execute(raise_on_error=False)
        refused = [i for i, r in zip(granted, results, strict=True) if isinstance(r, Exception)]
        if refused:
            if not all(isinstance(r, redis.OutOfMemoryError) for r in results if isinstance(r, Exception)):
                raise next(r for r in results if isinstance(r, Exception))
            self._full("writing fetched bytes")
            self._release(keys=_BUDGET_KEYS, args=[blob_key(job_id, i) for i in refused])
        return [i for i in granted if i not in refused]

    def _full(self, doing: str) -> None:
        """Redis refused a write as out of memory: say so (every ``WARN_EVERY_S`` at most), with the figures
        and what to do."""
        now = time.monotonic()
        if now - self._warned_at < self.WARN_EVERY_S:
            return
        self._warned_at = now
        try:
            memory = read_memory(self.client).describe()
        except redis.RedisError:
            memory = "unknown"
        log.warning("Redis is full (OOM) while %s: waiting for room", doing,
                    extra={"redis_memory": memory, "what_to_do": FULL_HINT})  # fmt: skip

    def get_many(self, job_id: str, item_ids: Sequence[str]) -> list[bytes | None]:
        if not item_ids:
            return []
        return list(self.client.mget([blob_key(job_id, i) for i in item_ids]))

    def delete_many(self, job_id: str, item_ids: Sequence[str]) -> int:
        """Delete blobs and give their room back; returns the bytes released. Works when Redis is full."""
        released = 0
        for start in range(0, len(item_ids), _CHUNK):
            keys = [blob_key(job_id, i) for i in item_ids[start : start + _CHUNK]]
            released += int(self._release(keys=_BUDGET_KEYS, args=keys))
        return released

    def delete_job(self, job_id: str) -> int:
        """Every blob a job still has (it ended, or was cancelled); returns how many."""
        found = self.client.scan_iter(match=blob_key(job_id, "") + "*", count=1000)
        keys = [k.decode() if isinstance(k, bytes) else k for k in found]
        for start in range(0, len(keys), _CHUNK):
            self._release(keys=_BUDGET_KEYS, args=keys[start : start + _CHUNK])
        return len(keys)

    def may_fetch(self, job_id: str, item_ids: Sequence[str], budget: int) -> bool:
        """Worth fetching these now: the budget has room, or one of them holds room already (a dead
        worker's items sent again: storing them trades their old room for the new)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(BLOB_TOTAL)
        for item_id in item_ids:
            pipe.zscore(BLOB_HELD, blob_key(job_id, item_id))
        total, *held = pipe.execute()
        return int(total or 0) < budget or any(score is not None for score in held)

    def budget_state(self) -> BudgetState:
        pipe = self.client.pipeline(transaction=False)
        pipe.get(BLOB_TOTAL)
        pipe.zcard(BLOB_HELD)
        total, count = pipe.execute()
        return BudgetState(max(0, int(total or 0)), int(count))

    def close(self) -> None:
        self.client.close()
