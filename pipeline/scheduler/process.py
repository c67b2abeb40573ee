"""Running `pipeline scheduler` as a child process (what `pipeline up --scheduler` does).

Readiness is a handshake, as for workers: the child's heartbeat key appears in
Redis once it has loaded the schedules.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from pipeline.core.errors import PipelineError
from pipeline.scheduler import keys


def scheduler_command(name: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", "scheduler", "--name", name]


@dataclass
class SchedulerProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (in-flight submissions finish), then SIGKILL after ``timeout``."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def wait_ready(self, client: redis.Redis, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not client.exists(keys.ALIVE + self.name):
            if not self.alive():
                tail = self.log_path.read_text(errors="replace").splitlines()[-10:] if self.log_path else []
                raise PipelineError(f"scheduler {self.name} exited during start-up" + "".join(f"\n  {t}" for t in tail))
            if time.monotonic() > deadline:
                raise PipelineError(f"scheduler {self.name} not ready after {timeout:g} s")
            time.sleep(0.05)


def start_scheduler(redis_url: str, name: str, *, log_path: Path | None = None) -> SchedulerProcess:
    env = {**os.environ, "PIPELINE_REDIS_URL": redis_url}
    out = log_path.open("ab") if log_path else subprocess.DEVNULL
    try:
        process = subprocess.Popen(scheduler_command(name), env=env, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    finally:
        if log_path and not isinstance(out, int):
            out.close()
    return SchedulerProcess(name, process, log_path)
