"""The cluster-wide part of the ledger: workers' heartbeats, broker queues, Redis memory, the result cache.

None of it belongs to one job: these are what ``top``, ``status``, the
heartbeat and the takeover read or write about the cluster as a whole. They
live apart from ``jobs`` (the per-job records, items and frontier) to keep
each module readable; ``Ledger`` inherits ``ClusterLedger``, so callers still
reach them all through one ledger. This module must not import ``jobs``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.ledger.cache import CacheStats, cache_stats, clear_cache
from pipeline.ledger.connection import translated
from pipeline.ledger.holdings import Holdings
from pipeline.ledger.keys import BLOB_TOTAL, WORKER_PREFIX, live_key, worker_key
from pipeline.ledger.memory import RedisMemory, memory_report, read_memory

PRIORITY_SEP = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)


@translated  # wraps only the methods defined here: ``Ledger``'s own decorator does not reach inherited ones
class ClusterLedger:
    """Workers, queues, memory and caches; mixed into ``Ledger``, which sets ``client``."""

    # redis-py's annotations cannot say "decode_responses=True returns str".
    client: Any

    # -- workers ----------------------------------------------------------------
    def beat(self, node: str, fields: Mapping[str, str], ttl_s: int, instance: str, lost_s: float) -> None:
        """Refresh a worker's self-description (``pl:worker:NODE``, gone ``ttl_s`` after its last beat)
        and its live instance (``pl:live:NODE``, gone ``lost_s`` after: then its items are taken over)."""
        pipe = self.client.pipeline()
        pipe.hset(worker_key(node), mapping=dict(fields))
        pipe.expire(worker_key(node), ttl_s)
        pipe.set(live_key(node), instance, px=max(1, round(lost_s * 1000)))
        pipe.execute()

    def keep_alive(self, node: str, ttl_s: int, lost_s: float) -> bool:
        """Extend a worker's records without writing anything new: what a beat can do on a full Redis
        (EXPIRE needs no memory; a MULTI would be refused whole). False if they had already expired."""
        pipe = self.client.pipeline(transaction=False)
        pipe.expire(worker_key(node), ttl_s)
        pipe.pexpire(live_key(node), max(1, round(lost_s * 1000)))
        return all(pipe.execute())

    def forget_worker(self, node: str) -> None:
        self.client.delete(worker_key(node), live_key(node))

    def worker_alive(self, node: str) -> bool:
        return bool(self.client.exists(worker_key(node)))

    def workers(self) -> list[dict[str, Any]]:
        """Every live worker's record (decoded), sorted by name."""
        found: list[dict[str, Any]] = []
        for key in self.client.scan_iter(match=WORKER_PREFIX + "*", count=200):
            raw = self.client.hgetall(key)
            if raw:
                found.append({str(k): json.loads(v) for k, v in raw.items()})
        return sorted(found, key=lambda w: str(w.get("name", "")))

    def holdings(self) -> Holdings:
        """Which worker holds which in-flight items (``pipeline.ledger.holdings``), on this ledger's client."""
        return Holdings(self.client)

    # -- the broker's queues, Redis memory, the result cache ----------------------
    def queue_depths(self, queues: Sequence[str]) -> dict[str, int]:
        """Messages waiting in each broker queue (not those a worker holds unacknowledged).

        kombu's Redis transport keeps one list per queue and priority step: NAME for
        priority 0, NAME + "\\x06\\x16" + step for the others. Flower's broker page
        sums them the same way (flower/utils/broker.py, RedisBase).
        """
        pipe = self.client.pipeline()
        for queue in queues:
            for step in PRIORITY_STEPS:
                pipe.llen(queue if step == 0 else f"{queue}{PRIORITY_SEP}{step}")
        lengths = pipe.execute()
        per_queue = len(PRIORITY_STEPS)
        return {queue: sum(lengths[i * per_queue : (i + 1) * per_queue]) for i, queue in enumerate(queues)}

    def memory(self) -> RedisMemory:
        """Redis's ``INFO memory``: used bytes against ``maxmemory``."""
        return read_memory(self.client)

    def memory_report(self, blob_budget_bytes: int | None) -> dict[str, Any]:
        """``memory`` and the fetched bytes held against their budget (``pipeline.ledger.memory.memory_report``)."""
        return memory_report(self.memory(), max(0, int(self.client.get(BLOB_TOTAL) or 0)), blob_budget_bytes)

    def cache_stats(self, *, ttl_s: int, max_total_bytes: int) -> CacheStats:
        return cache_stats(self.client, ttl_s=ttl_s, max_total_bytes=max_total_bytes)

    def clear_cache(self) -> int:
        return clear_cache(self.client)
