"""Cluster-wide politeness for a crawl: concurrency per job and per host, delay per host.

Each request first takes a slot in Redis (``lua/acquire.lua``): limits hold
across all workers, not per worker. A local semaphore per host in front of it
keeps the number of coroutines polling Redis for a busy host small.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

from pipeline.core.errors import FetchError
from pipeline.core.urls import host_of
from pipeline.ledger import job_key


@dataclass(frozen=True)
class Limits:
    concurrency: int = 64  # requests in flight for the whole job
    per_host: int = 8
    delay_s: float = 0.0  # between request starts on one host
    slot_ttl_s: float = 120.0  # a slot held longer than this is presumed dead


class Gate:
    """Slots for one job's requests; one instance per batch, sharing the worker's async client."""

    def __init__(self, client: Any, script: Any, job_id: str, limits: Limits) -> None:
        self.client, self.script, self.job_id, self.limits = client, script, job_id, limits
        self._local: dict[str, asyncio.Semaphore] = {}

    @staticmethod
    def register(client: Any) -> Any:
        return client.register_script(resources.files("pipeline.lua").joinpath("acquire.lua").read_text())

    @asynccontextmanager
    async def slot(self, url: str) -> AsyncIterator[None]:
        host = host_of(url)
        local = self._local.setdefault(host, asyncio.Semaphore(self.limits.per_host))
        async with local:
            keys = [job_key(self.job_id), job_key(self.job_id, "slots"), job_key(self.job_id, f"host:{host}"),
                    job_key(self.job_id, f"next:{host}")]  # fmt: skip
            token = uuid.uuid4().hex
            pause = 0.005
            while True:
                args = [repr(time.time()), token, self.limits.slot_ttl_s, self.limits.concurrency,
                        self.limits.per_host, self.limits.delay_s]  # fmt: skip
                wait_ms = int(await self.script(keys=keys, args=args))
                if wait_ms == 0:
                    break
                if wait_ms < 0:
                    raise FetchError("cancelled", "the job was cancelled or has ended")
                await asyncio.sleep(max(wait_ms / 1000, pause) * (0.8 + 0.4 * random.random()))
                pause = min(0.1, pause * 1.5)
            try:
                yield
            finally:
                pipe = self.client.pipeline(transaction=False)
                pipe.zrem(keys[1], token)
                pipe.zrem(keys[2], token)
                await pipe.execute()
