"""One per worker process: the pools, the session, the Redis clients, the heartbeat.

Created once when the worker process starts (``Runtime.start``) and kept for its
life; stopped once on shutdown. Stages get everything they need from here, so
a task never builds a pool, a session or a connection of its own.
"""

from __future__ import annotations

import logging
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import redis
import redis.asyncio

from pipeline import __version__
from pipeline.config import Settings
from pipeline.core.bodies import BodyBudget
from pipeline.core.limits import FetchLimits
from pipeline.core.ssrf import GuardedResolver, PinnedResolver
from pipeline.frontier import Frontier
from pipeline.ledger import Ledger
from pipeline.ledger.blobs import BlobStore
from pipeline.ledger.connection import connect
from pipeline.ledger.memory import RedisMemory, read_memory
from pipeline.politeness import Gate
from workers.heartbeat import Heartbeat, core_figures
from workers.loop import EventLoopThread
from workers.metered_ledger import MeteredLedger
from workers.metrics import SlotMetrics
from workers.processes import ProcessPool
from workers.redis_memory import MemoryWatch
from workers.result_cache import CacheSettings
from workers.robots_cache import RobotsCache, robots_limits
from workers.takeover import Takeover

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    node: str
    loop: EventLoopThread
    session: aiohttp.ClientSession
    threads: ThreadPoolExecutor
    processes: ProcessPool
    metrics: SlotMetrics
    ledger: Ledger
    frontier: Frontier
    blobs: BlobStore
    heartbeat: Heartbeat
    takeover: Takeover
    limits: FetchLimits = field(default_factory=FetchLimits)
    aredis: Any = None  # redis.asyncio client living on the event loop (crawl politeness, robots)
    acquire_script: Any = None
    robots: RobotsCache | None = None
    bodies: BodyBudget = field(default_factory=lambda: BodyBudget(256 * 2**20, 50 * 2**20))
    redis_memory: MemoryWatch | None = None  # Redis's memory and the blob budget it allows
    # Fetched images go straight to this worker's pool (``image_stages.fetch_and_transform``), not through
    # Redis: set by the binding when this worker also serves the transform stage (and PIPELINE_HANDOFF=local).
    transforms_fetched: bool = False

    @classmethod
    def start(cls, settings: Settings, redis_url: str, node: str, info: dict[str, Any]) -> Runtime:
        """Build every pool once; ``info`` is what the binding wants shown in `workers`."""
        proxies = settings.proxies  # a proxy variable no request could use stops the worker here, by name
        if proxies is not None:
            log.info("fetching through proxies: %s", proxies.describe())
        cache = CacheSettings.of(settings, redis_url, _memory_at_start(redis_url))
        processes = ProcessPool(settings.pool_processes, crash_dir=settings.test_crash_dir, cache=cache)
        processes.warm_up()  # before our own threads exist, and so the first batch is fast
        loop = EventLoopThread()
        loop.start()

        async def _session() -> aiohttp.ClientSession:
            # DNS answers are cached by the guarded resolver, which re-checks the
            # SSRF policy on every lookup; the connector's own cache would skip it.
            # No per-host cap here: a crawl's --per-host is enforced cluster-wide by
            # the politeness gate, and a second, hidden cap of the connector would
            # silently lower it (measured: it halved crawl throughput).
            # PIPELINE_RESOLVE pins go *inside* the guard: a pinned name is checked like any other.
            resolver = GuardedResolver(PinnedResolver(settings.resolve_pins))
            connector = aiohttp.TCPConnector(limit=512, limit_per_host=0, use_dns_cache=False, resolver=resolver)
            # trust_env=False: with it aiohttp re-reads ~/.netrc on every request
            # (seen in a profile); proxies come from the settings, read once (pipeline.core.proxies).
            return aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": settings.user_agent}, trust_env=False
            )

        session = loop.run(_session())

        async def _async_redis() -> Any:
            return redis.asyncio.Redis.from_url(redis_url, decode_responses=True, socket_connect_timeout=5)

        aredis = loop.run(_async_redis())
        threads = ThreadPoolExecutor(settings.threads, thread_name_prefix="pipeline-io")
        metrics = SlotMetrics(processes.size)
        ledger = MeteredLedger(connect(redis_url), metrics)
        blobs = BlobStore(connect(redis_url, binary=True))
        limits = FetchLimits(
            timeout_s=settings.fetch_timeout_s,
            connect_timeout_s=settings.connect_timeout_s,
            retries=settings.fetch_retries,
            max_body_bytes=settings.max_body_bytes,
            proxies=proxies,
        )
        record = {
            "name": node, "host": socket.gethostname(), "pid": os.getpid(), "version": __version__,
            "processes": processes.size, "threads": settings.threads,
            "egress": proxies.describe() if proxies is not None else "direct",  # how it reaches the web
            **info,
        }  # fmt: skip
        heartbeat = Heartbeat(ledger, node, record, metrics, processes, lost_s=settings.worker_lost_s,
                              health_file=settings.health_file)  # fmt: skip
        # Held-item records outlive any lease they could matter for (see pipeline.ledger.holdings).
        takeover = Takeover(ledger.holdings(), heartbeat.owner, round(2 * settings.visibility_timeout_s))
        runtime = cls(settings, node, loop, session, threads, processes, metrics, ledger, Frontier(ledger, settings),
                      blobs, heartbeat, takeover, limits)  # fmt: skip
        runtime.aredis = aredis
        runtime.acquire_script = Gate.register(aredis)
        runtime.robots = RobotsCache(session, aredis, robots_limits(limits))
        runtime.bodies = BodyBudget(settings.fetch_memory_bytes, settings.max_body_bytes)
        runtime.redis_memory = MemoryWatch(ledger, settings.blob_budget_bytes)
        heartbeat.start()
        log.info("runtime started", extra={"node": node, "processes": processes.size})
        return runtime

    def blob_budget(self) -> int:
        """Bytes of fetched images all workers together may keep in Redis now (``pipeline.ledger.memory``)."""
        return self.redis_memory_watch().blob_budget()

    def redis_memory_figures(self) -> RedisMemory:
        return self.redis_memory_watch().memory()

    def redis_memory_watch(self) -> MemoryWatch:
        if self.redis_memory is None:
            self.redis_memory = MemoryWatch(self.ledger, self.settings.blob_budget_bytes)
        return self.redis_memory

    def core_figures(self) -> dict[str, Any]:
        """Items, busy seconds and items/s per pool slot and stage, plus ``io`` (see ``workers.metrics``).

        The Celery binding publishes this as a monitoring event once a second;
        the heartbeat writes the same figures to Redis.
        """
        return core_figures(self.metrics, self.processes)

    def stop(self) -> None:
        """Stop accepting, finish what is running, release everything (idempotent)."""
        self.heartbeat.stop()
        try:
            self.loop.run(self.session.close(), timeout=5)
            if self.aredis is not None:
                self.loop.run(self.aredis.aclose(), timeout=5)
        except Exception:
            log.debug("session close failed", exc_info=True)
        self.loop.stop()
        self.threads.shutdown(wait=True, cancel_futures=True)
        self.processes.shutdown()
        self.ledger.close()
        self.blobs.close()
        log.info("runtime stopped", extra={"node": self.node})


def _memory_at_start(redis_url: str) -> RedisMemory | None:
    """Redis's memory figures, read once before the pools start (None if Redis does not answer yet)."""
    client = connect(redis_url)
    try:
        return read_memory(client)
    except redis.RedisError:
        return None
    finally:
        client.close()
