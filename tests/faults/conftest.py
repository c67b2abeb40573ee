"""Fixtures for the fault-injection suite: a Redis per test, workers we start and kill.

Every test gets its own redis-server (so a killed or restarted Redis, or a
leftover key, cannot touch another test) and starts its own workers exactly
as `pipeline up` does. Timeouts are short so that re-delivery after a lost
worker happens within seconds; signals go only to pids started here.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pipeline.cluster import WorkerProcess, start_worker, wait_ready
from pipeline.config import Settings
from pipeline.kinds.images import ImagesSpec
from pipeline.ledger import Ledger
from pipeline.ledger.connection import connect
from pipeline.ledger.keys import WORKER_PREFIX
from pipeline.localredis import RedisServer, start_redis
from pipeline.producer import Producer
from tasks.names import QUEUES
from tests.faults.invariants import Verdict, check_job, expected_ids

# Re-delivery within seconds; still valid (visibility > 1.2 x deadline > worst fetch).
FAULT_ENV = {
    "PIPELINE_VISIBILITY_TIMEOUT_S": "8",
    "PIPELINE_TASK_DEADLINE_S": "6",
    "PIPELINE_FETCH_TIMEOUT_S": "2",
    "PIPELINE_FETCH_RETRIES": "0",
    "PIPELINE_PROCESSES": "1",
    "PIPELINE_CONCURRENCY": "2",
}


@dataclass
class FaultCluster:
    """One test's Redis, the workers it started, and a producer and ledger on that Redis."""

    redis: RedisServer
    tmp_path: Path
    env: dict[str, str]
    workers: list[WorkerProcess] = field(default_factory=list)
    _clients: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.connect(self.redis.url)

    def connect(self, url: str) -> None:
        """(Re)build the producer and ledger, e.g. after Redis was restarted."""
        self.settings = Settings.load(redis_url=url)
        self.producer = Producer(self.settings, url)
        self.ledger: Ledger = self.producer.ledger
        self._clients.append(self.producer)

    @property
    def url(self) -> str:
        return self.redis.url

    @property
    def evidence(self) -> Path:
        return self.tmp_path / "evidence"

    def start(
        self, name: str, *, ready: bool = True, url: str | None = None, queues: Sequence[str] = QUEUES, **env: str
    ) -> WorkerProcess:
        worker = start_worker(url or self.url, name, env={**self.env, **env}, queues=queues,
                              log_path=self.tmp_path / f"{name.split('@')[0]}.log")  # fmt: skip
        self.workers.append(worker)
        if ready:
            self.wait_ready(worker)
        return worker

    def wait_ready(self, worker: WorkerProcess) -> None:
        client = connect(self.url)
        try:
            wait_ready(Ledger(client), [worker], timeout=60)
        finally:
            client.close()

    def heartbeat_at(self, worker: WorkerProcess) -> float:
        raw = self.ledger.client.hget(WORKER_PREFIX + worker.name, "seen_at")
        return float(raw) if raw else 0.0

    def signal(self, worker: WorkerProcess, sig: int) -> None:
        assert worker in self.workers, "only signal workers this test started"
        os.kill(worker.pid, sig)

    def submit(self, sources: list[str], **request: Any) -> tuple[str, set[str]]:
        request.setdefault("output_dir", self.tmp_path / "out")
        job_id = self.producer.submit(ImagesSpec(sources=sources, **request))
        return job_id, expected_ids(sources)

    def done(self, job_id: str) -> int:
        return self.ledger.totals(job_id).done

    def check(self, job_id: str, submitted: set[str], *, deadline_s: float, **kw: Any) -> Verdict:
        return check_job(self.ledger, job_id, submitted, self.evidence, deadline_s=deadline_s, **kw)

    def close(self) -> None:
        for worker in self.workers:
            if worker.alive():
                os.kill(worker.pid, signal.SIGCONT)  # a stopped worker cannot act on SIGTERM
                worker.terminate()
        for worker in self.workers:
            if not worker.wait(20):
                worker.kill()
        for producer in self._clients:
            producer.close()
        self.redis.stop()  # a no-op for the fixture's; stops one a test restarted


@pytest.fixture
def fault_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    crash_dir = tmp_path / "crashes"
    crash_dir.mkdir()
    env = {**FAULT_ENV, "PIPELINE_TEST_CRASH_DIR": str(crash_dir)}
    for key, value in env.items():  # the producer in this process sees the same settings
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path / "redis", appendonly=False)
    yield server
    server.stop()


@pytest.fixture
def cluster(own_redis: RedisServer, tmp_path: Path, fault_env: dict[str, str]) -> Iterator[FaultCluster]:
    box = FaultCluster(own_redis, tmp_path, fault_env)
    yield box
    box.close()
