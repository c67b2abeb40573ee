"""Starting and stopping a local cluster: a private Redis and worker processes.

Used by `pipeline up`, `pipeline demo` and the test fixtures, so the way a
worker is started in the tests is the way users start it. Readiness is a
handshake (the worker's heartbeat record appears in Redis), never a sleep.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pipeline.children import ChildProcess, spawn
from pipeline.config import Settings
from pipeline.core.errors import PipelineError
from pipeline.ledger import Ledger
from pipeline.ledger.connection import connect
from pipeline.localredis import RedisServer, read_state_pid, start_redis, write_state
from tasks.names import QUEUES

log = logging.getLogger(__name__)


def worker_command(
    name: str,
    *,
    concurrency: int | None = None,
    queues: Sequence[str] = QUEUES,
    loglevel: str = "INFO",
) -> list[str]:
    """The celery command line for one pipeline worker (threads pool, events on)."""
    command = [
        sys.executable, "-m", "celery", "-A", "tasks.app", "worker",
        "--pool", "threads", "--hostname", name, "--queues", ",".join(queues),
        "--loglevel", loglevel, "--task-events", "--without-mingle", "--without-gossip",
    ]  # fmt: skip
    if concurrency:
        command += ["--concurrency", str(concurrency)]
    return command


class WorkerProcess(ChildProcess):
    """A `celery worker` child we started; ``terminate`` is Celery's warm shutdown."""


def start_worker(
    redis_url: str,
    name: str,
    *,
    env: Mapping[str, str] | None = None,
    processes: int | None = None,
    log_path: Path | None = None,
    die_with_parent: bool = False,
    queues: Sequence[str] = QUEUES,
) -> WorkerProcess:
    """Start a worker subprocess (does not wait for it; see ``wait_ready``)."""
    child_env = {**(env or {}), "PIPELINE_REDIS_URL": redis_url}
    if processes:
        child_env["PIPELINE_PROCESSES"] = str(processes)
    process = spawn(worker_command(name, queues=queues), child_env, log_path, die_with_parent=die_with_parent)
    return WorkerProcess(name, process, log_path)


def wait_ready(ledger: Ledger, workers: Sequence[WorkerProcess], timeout: float = 60.0) -> None:
    """Block until every worker has published its heartbeat, or fail with its log tail."""
    deadline = time.monotonic() + timeout
    waiting = {w.name: w for w in workers}
    while waiting:
        for name, worker in list(waiting.items()):
            if ledger.worker_alive(name):
                del waiting[name]
            elif not worker.alive():
                raise PipelineError(f"worker {name} exited during start-up{worker.log_tail()}")
        if waiting and time.monotonic() > deadline:
            raise PipelineError(f"workers not ready after {timeout:g} s: {', '.join(waiting)}")
        if waiting:
            time.sleep(0.05)


@dataclass
class LocalCluster:
    """Redis (private unless configured) plus N workers on this machine."""

    settings: Settings
    redis_url: str = ""
    redis_server: RedisServer | None = None
    workers: list[WorkerProcess] = field(default_factory=list)
    log_dir: Path | None = None
    private_dir: Path | None = None  # where a private Redis keeps its files
    record_state: bool = True  # publish a private Redis in HOME/redis.json for other commands
    started_count: int = 0  # only grows: a replacement worker never reuses a live worker's name
    die_with_parent: bool = False  # children get SIGTERM when this process dies (`up`, `demo`)

    def start_redis(self) -> str:
        """Use PIPELINE_REDIS_URL, or start a private Redis (never adopt one another `up` left running)."""
        if self.settings.redis_url:
            self.redis_url = self.settings.redis_url
        else:
            if self.record_state and (leftover := read_state_pid(self.settings.state_dir)):
                raise PipelineError(
                    f"a private Redis from an earlier `pipeline up` still runs on this PIPELINE_HOME (pid {leftover}); "
                    "stop it with `pipeline down`"
                )
            self.redis_server = start_redis(self.private_dir or self.settings.state_path("redis"),
                                            die_with_parent=self.die_with_parent)  # fmt: skip
            if self.record_state:
                write_state(self.settings.state_dir, self.redis_server)
            self.redis_url = self.redis_server.url
        ledger = Ledger(connect(self.redis_url))
        try:
            ledger.ping()
        finally:
            ledger.close()
        return self.redis_url

    def redis_exited(self) -> int | None:
        """The exit code of the private Redis if it has died, else None (also when Redis is not ours)."""
        server = self.redis_server
        return None if server is None else server.process.poll()

    def restart_redis(self) -> None:
        """Start the private Redis again, on its port, with its password and its files (the AOF)."""
        server = self.redis_server
        assert server is not None
        parts = urlsplit(server.url)
        self.redis_server = start_redis(server.directory, port=parts.port, password=parts.password or "",
                                        die_with_parent=self.die_with_parent)  # fmt: skip
        if self.record_state:
            write_state(self.settings.state_dir, self.redis_server)

    def start_workers(self, count: int, processes: int | None = None, timeout: float = 60.0) -> None:
        host = socket.gethostname()
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        started = []
        for index in range(self.started_count + 1, self.started_count + count + 1):
            log_path = self.log_dir / f"worker{index}.log" if self.log_dir else None
            worker = start_worker(self.redis_url, f"worker{index}-{os.getpid()}@{host}",
                                  processes=processes, log_path=log_path,
                                  die_with_parent=self.die_with_parent)  # fmt: skip
            started.append(worker)
        self.started_count += count
        self.workers += started
        ledger = Ledger(connect(self.redis_url))
        try:
            wait_ready(ledger, started, timeout)
        finally:
            ledger.close()

    def stop(self, timeout: float = 30.0) -> None:
        """Warm-stop every worker, then stop the Redis we started (if we did)."""
        for worker in self.workers:
            worker.terminate()
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            if not worker.wait(max(0.1, deadline - time.monotonic())):
                log.warning("worker %s did not stop in time; killing it", worker.name)
                worker.kill()
        self.workers.clear()
        if self.redis_server is not None:
            self.redis_server.stop()
            self.redis_server = None
