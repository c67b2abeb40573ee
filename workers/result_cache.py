"""The result cache as a pool child uses it: one Redis GET before decoding, one Lua call after encoding.

Outputs are kept in Redis under ``pl:cache:DIGEST`` (``pipeline.core.cache_key``)
for ``PIPELINE_CACHE_TTL_S`` after they were made, shared by every worker, so
the same image content with the same ops is transformed once across jobs. All
entries together stay under ``PIPELINE_CACHE_MAX_TOTAL_BYTES`` (the ones
closest to expiry leave first, ``lua/cache_put.lua``): the cache shares Redis's
memory with queues and ledgers that must never be evicted.

The cache only ever saves work: a Redis error, a slow Redis or a malformed
entry is logged and the item is transformed as if the cache were off (and the
entry written afresh). After a connection error or timeout the child leaves
the cache alone for ``PAUSE_S``, so an outage costs one timeout per child
rather than one per item.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import redis

from pipeline.core.cache_key import CachedOutput, cache_digest, decode_entry, encode_entry, plan_digest
from pipeline.ledger.keys import CACHE_INDEX, CACHE_SIZES, CACHE_TOTAL, cache_entry_key
from pipeline.ledger.memory import RedisMemory, cache_cap

if TYPE_CHECKING:  # pool children import this module: keep pydantic out of them
    from pipeline.config import Settings

log = logging.getLogger(__name__)
PAUSE_S = 15.0
# A cache lookup must cost far less than the transform it saves: fail fast.
CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class CacheSettings:
    """What a pool child needs to reach the cache (passed through the pool initializer)."""

    redis_url: str
    ttl_s: int
    max_bytes: int
    max_total_bytes: int = 0  # 0: no cap

    @classmethod
    def of(cls, settings: Settings, redis_url: str, memory: RedisMemory | None = None) -> CacheSettings | None:
        """None when the cache is off (``PIPELINE_CACHE_TTL_S=0``); its total within a quarter of
        Redis's ``maxmemory`` as read at start-up (``pipeline.ledger.memory.cache_cap``)."""
        if settings.cache_ttl_s <= 0:
            return None
        total = settings.cache_max_total_bytes if memory is None else cache_cap(memory, settings.cache_max_total_bytes)
        return cls(redis_url, settings.cache_ttl_s, settings.cache_max_bytes, total)


class ResultCache:
    """One per pool child; its Redis connection is opened on first use."""

    def __init__(self, config: CacheSettings) -> None:
        self.config = config
        self._client: Any = None
        self._put: Any = None
        self._paused_until = 0.0

    def key(self, source: bytes, plan_json: Mapping[str, Any]) -> str:
        return cache_entry_key(cache_digest(source, plan_digest(plan_json)))

    def get(self, key: str) -> CachedOutput | None:
        client = self._redis()
        if client is None:
            return None
        try:
            raw = client.get(key)
        except redis.RedisError as exc:
            self._pause("read", exc)
            return None
        entry = decode_entry(raw)
        if raw is not None and entry is None:
            log.warning("ignoring a malformed result-cache entry %s (it will be replaced)", key)
        return entry

    def put(self, key: str, output: CachedOutput) -> None:
        """Keep ``output`` unless it is over the size cap; overwrites (and so repairs) what was there."""
        if len(output.data) > self.config.max_bytes:
            return
        client = self._redis()
        if client is None:
            return
        keys = [key, CACHE_INDEX, CACHE_SIZES, CACHE_TOTAL]
        try:
            self._put(keys, [encode_entry(output), self.config.ttl_s, time.time(), self.config.max_total_bytes])
        except redis.RedisError as exc:
            self._pause("write", exc)

    def _redis(self) -> Any:
        if time.monotonic() < self._paused_until:
            return None
        if self._client is None:
            self._client = redis.Redis.from_url(
                self.config.redis_url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=READ_TIMEOUT_S
            )
            self._put = self._client.register_script(
                resources.files("pipeline.ledger.lua").joinpath("cache_put.lua").read_text()
            )
        return self._client

    def _pause(self, what: str, exc: Exception) -> None:
        if isinstance(exc, redis.ResponseError):  # this key's trouble (WRONGTYPE...): Redis itself is fine
            log.warning("result cache %s failed, transforming instead: %s", what, exc)
            return
        self._paused_until = time.monotonic() + PAUSE_S
        log.warning("result cache %s failed, transforming without it for %g s: %s", what, PAUSE_S, exc)


_current: ResultCache | None = None


def install(config: CacheSettings | None) -> None:
    """Called by the pool initializer in each child: the cache this child uses, or none."""
    global _current
    _current = ResultCache(config) if config is not None else None


def current() -> ResultCache | None:
    return _current
