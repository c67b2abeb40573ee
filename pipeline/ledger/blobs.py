"""Where large payloads wait between stages, so messages only carry references.

A fetched image body is written here by the fetch task and read back by the
transform task, possibly on another machine: Redis strings shared by every
worker, keyed by job and item, which expire if their item is never recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import redis

from pipeline.ledger.connection import translated
from pipeline.ledger.keys import blob_key


@translated
class BlobStore:
    """Blobs as Redis strings with a TTL; one round trip per batch."""

    def __init__(self, client: redis.Redis) -> None:
        self.client: Any = client  # a binary (non-decoding) client: values are bytes

    def put_many(self, job_id: str, blobs: Mapping[str, bytes], ttl_s: int) -> None:
        """Keep each item's bytes (item id -> bytes) for up to ``ttl_s``."""
        pipe = self.client.pipeline(transaction=False)
        for item_id, data in blobs.items():
            pipe.set(blob_key(job_id, item_id), data, ex=ttl_s)
        pipe.execute()

    def get_many(self, job_id: str, item_ids: Sequence[str]) -> list[bytes | None]:
        if not item_ids:
            return []
        return list(self.client.mget([blob_key(job_id, i) for i in item_ids]))

    def delete_many(self, job_id: str, item_ids: Sequence[str]) -> None:
        if item_ids:
            self.client.unlink(*(blob_key(job_id, i) for i in item_ids))

    def close(self) -> None:
        self.client.close()
