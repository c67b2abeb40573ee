"""What the result cache holds, and emptying it (``pipeline cache``).

Entries are written by the pool children (``workers/result_cache.py`` and
``lua/cache_put.lua``), which keep an index (entry -> expiry time), each
entry's size and the bytes kept. Reading those is enough for the figures; an
entry found by a scan but not in the index (written before the index existed)
is still removed by ``clear``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.ledger.keys import CACHE_INDEX, CACHE_PREFIX, CACHE_SIZES, CACHE_TOTAL

_CHUNK = 500


@dataclass(frozen=True)
class CacheStats:
    entries: int  # live: not yet expired
    bytes: int  # kept, as counted at the last write (expired entries leave the count at the next one)
    ttl_s: int
    max_total_bytes: int  # 0: no cap

    def to_json(self) -> dict[str, int]:
        return asdict(self)


def cache_stats(client: Any, *, ttl_s: int, max_total_bytes: int) -> CacheStats:
    pipe = client.pipeline(transaction=False)
    pipe.zcount(CACHE_INDEX, f"({time.time()!r}", "+inf")  # entries whose expiry is still ahead
    pipe.get(CACHE_TOTAL)
    entries, kept = pipe.execute()
    return CacheStats(int(entries), max(0, int(kept or 0)), ttl_s, max_total_bytes)


def clear_cache(client: Any) -> int:
    """Remove every entry and the bookkeeping; returns how many entries there were.

    While workers run, an entry written during the clear may stay, uncounted
    in the total until it expires: the cap is then loose by that much, never
    tight.
    """
    removed = 0
    while keys := client.zrange(CACHE_INDEX, 0, _CHUNK - 1):  # the index, a chunk at a time
        pipe = client.pipeline(transaction=False)
        pipe.unlink(*keys)
        pipe.zrem(CACHE_INDEX, *keys)
        pipe.hdel(CACHE_SIZES, *keys)
        removed += int(pipe.execute()[0])
    leftovers = list(client.scan_iter(match=CACHE_PREFIX + "*", count=1000))
    for start in range(0, len(leftovers), _CHUNK):
        removed += int(client.unlink(*leftovers[start : start + _CHUNK]))
    client.unlink(CACHE_INDEX, CACHE_SIZES, CACHE_TOTAL)
    return removed
