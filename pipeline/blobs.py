"""Where large payloads wait between stages, so messages only carry references.

A fetched image body is written here by the fetch task and read back by the
transform task, possibly on another machine. ``RedisBlobStore`` is the real one
(shared by every worker, entries expire); ``MemoryBlobStore`` is its double for
unit tests of stage logic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import redis

BLOB_PREFIX = "pl:blob:"


def blob_key(job_id: str, item_id: str) -> str:
    return f"{BLOB_PREFIX}{job_id}:{item_id}"


class BlobStore(Protocol):
    def put_many(self, blobs: Mapping[str, bytes], ttl_s: int) -> None: ...
    def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...
    def delete_many(self, keys: Sequence[str]) -> None: ...


class RedisBlobStore:
    """Blobs as Redis strings with a TTL; one pipeline round trip per batch."""

    def __init__(self, client: redis.Redis) -> None:
        self.client: Any = client  # a binary (non-decoding) client: values are bytes

    def put_many(self, blobs: Mapping[str, bytes], ttl_s: int) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key, data in blobs.items():
            pipe.set(key, data, ex=ttl_s)
        pipe.execute()

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        return list(self.client.mget(list(keys)))

    def delete_many(self, keys: Sequence[str]) -> None:
        if keys:
            self.client.unlink(*keys)


class MemoryBlobStore:
    """In-process double of ``RedisBlobStore`` (no expiry)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def put_many(self, blobs: Mapping[str, bytes], ttl_s: int) -> None:
        self.blobs.update(blobs)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [self.blobs.get(k) for k in keys]

    def delete_many(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.blobs.pop(key, None)
