"""Running `pipeline scheduler` as a child process (what `pipeline up --scheduler` does).

Readiness is a handshake, as for workers: the child's heartbeat key appears in
Redis once it has loaded the schedules.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import redis

from pipeline.children import ChildProcess, spawn
from pipeline.core.errors import PipelineError
from pipeline.scheduler import keys


def scheduler_command(name: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", "scheduler", "--name", name]


class SchedulerProcess(ChildProcess):
    """A `pipeline scheduler` child; SIGTERM lets its in-flight submissions finish."""

    def wait_ready(self, client: redis.Redis, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not client.exists(keys.ALIVE + self.name):
            if not self.alive():
                raise PipelineError(f"scheduler {self.name} exited during start-up{self.log_tail(10)}")
            if time.monotonic() > deadline:
                raise PipelineError(f"scheduler {self.name} not ready after {timeout:g} s")
            time.sleep(0.05)


def start_scheduler(
    redis_url: str, name: str, *, log_path: Path | None = None, die_with_parent: bool = False
) -> SchedulerProcess:
    process = spawn(scheduler_command(name), {"PIPELINE_REDIS_URL": redis_url}, log_path,
                    die_with_parent=die_with_parent)  # fmt: skip
    return SchedulerProcess(name, process, log_path)
