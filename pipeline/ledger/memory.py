"""How full Redis is, and what that leaves for fetched bytes.

Redis with ``maxmemory`` and ``noeviction`` refuses every write that could grow
memory once it is full (``OOM command not allowed``). Workers, the broker and
the ledger share that one Redis, so pipeline keeps its own large values (the
blobs between fetch and transform) under a budget well inside the limit, and
shows the figures in `pipeline workers` and `pipeline top`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The share of maxmemory fetched bytes may take by default: the rest is for the
# queues, the ledger, the result cache and Redis's own overhead.
BLOB_SHARE = 0.5
# Without maxmemory nothing stops Redis growing into the machine's memory: this much by default.
UNLIMITED_BLOB_BUDGET = 512 * 2**20
CACHE_SHARE = 0.25  # and the result cache this much: what is left is for queues, the ledger and Redis itself
NEAR_FULL = 0.9  # from here on `workers` and `top` warn


@dataclass(frozen=True)
class RedisMemory:
    """``INFO memory``: bytes used, the limit (0 = none) and the policy when it is reached."""

    used: int
    limit: int
    policy: str = "noeviction"

    @classmethod
    def of(cls, info: dict[str, Any]) -> RedisMemory:
        return cls(int(info.get("used_memory", 0)), int(info.get("maxmemory", 0) or 0),
                   str(info.get("maxmemory_policy", "noeviction")))  # fmt: skip

    @property
    def fraction(self) -> float | None:
        return self.used / self.limit if self.limit else None

    @property
    def near_full(self) -> bool:
        return self.limit > 0 and self.used >= NEAR_FULL * self.limit

    def describe(self) -> str:
        """``used 60.2 MiB of 64.0 MiB (94%)``, or ``used 60.2 MiB (no maxmemory)``."""
        if not self.limit:
            return f"used {_mib(self.used)} (no maxmemory)"
        return f"used {_mib(self.used)} of {_mib(self.limit)} ({100 * self.used / self.limit:.0f}%)"

    def to_json(self) -> dict[str, Any]:
        return {"used": self.used, "maxmemory": self.limit, "policy": self.policy, "near_full": self.near_full}


def read_memory(client: Any) -> RedisMemory:
    return RedisMemory.of(client.info("memory"))


def blob_budget(memory: RedisMemory, configured: int | None) -> int:
    """Bytes of fetched images all workers together may keep in Redis.

    ``PIPELINE_BLOB_BUDGET_BYTES`` when set; else half of ``maxmemory``; else
    ``UNLIMITED_BLOB_BUDGET``. A configured budget over the maxmemory share is
    still lowered to it: Redis would refuse the writes anyway, Celery's first.
    """
    share = int(memory.limit * BLOB_SHARE) if memory.limit else 0
    if configured is not None:
        return min(configured, share) if share else configured
    return share or UNLIMITED_BLOB_BUDGET


def cache_cap(memory: RedisMemory, configured: int) -> int:
    """Bytes the result cache may keep in Redis: ``PIPELINE_CACHE_MAX_TOTAL_BYTES`` (0 = no cap), and never
    more than a quarter of ``maxmemory`` (entries live for days: uncapped, they would fill a small Redis)."""
    share = int(memory.limit * CACHE_SHARE) if memory.limit else 0
    if not share:
        return configured
    return min(configured, share) if configured else share


def memory_report(memory: RedisMemory, blobs_held: int, configured_budget: int | None) -> dict[str, Any]:
    """Redis's memory against its limit, and the fetched bytes held against their budget (`top`, `workers`)."""
    return {**memory.to_json(), "blobs_held": blobs_held, "blob_budget": blob_budget(memory, configured_budget)}


def memory_line(report: dict[str, Any]) -> str:
    """``Redis memory: used 12.0 MiB of 64.0 MiB (19%) · fetched bytes 3.0 MiB of 32.0 MiB budget``."""
    memory = RedisMemory(int(report["used"]), int(report["maxmemory"]), str(report["policy"]))
    line = f"Redis memory: {memory.describe()} · fetched bytes {_mib(int(report['blobs_held']))} of " \
           f"{_mib(int(report['blob_budget']))} budget"  # fmt: skip
    if memory.near_full:
        line += f" · NEARLY FULL ({memory.policy}): {FULL_HINT}"
    return line


FULL_HINT = ("raise Redis maxmemory, lower PIPELINE_BLOB_BUDGET_BYTES or PIPELINE_CACHE_MAX_TOTAL_BYTES, "
             "or empty the result cache (`pipeline cache --clear`)")  # fmt: skip


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"
