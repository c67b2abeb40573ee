"""Helpers for the scheduler tests: real `pipeline scheduler` processes, and reading what they did.

A scheduler is the installed console script run as a user runs it; its stderr
is read line by line on a thread, and readiness is the line it prints once
the schedules are loaded (a handshake, never a sleep). What the schedulers
did is read back from Redis: each schedule's history (one entry per fire
time) and the ledger's jobs linked to the schedule.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import redis

from pipeline.cli.schedule import schedule_spec
from pipeline.config import Settings
from pipeline.core.document import JobMeta
from pipeline.ledger import Ledger
from pipeline.scheduler import keys
from pipeline.scheduler.definition import Schedule
from pipeline.scheduler.store import Fire, ScheduleStore
from pipeline.scheduler.triggers import parse_trigger

PIPELINE = str(Path(sys.executable).parent / "pipeline")
READY_TIMEOUT_S = 30.0


def run_cli(*args: str, env: Mapping[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PIPELINE, *args], env=dict(env), capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, cwd=cwd)  # fmt: skip


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


@dataclass
class SchedulerProc:
    """A running `pipeline scheduler --name NAME`, its stderr collected on a thread."""

    name: str
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    @classmethod
    def start(cls, name: str, env: Mapping[str, str]) -> SchedulerProc:
        command = [PIPELINE, "scheduler", "--name", name]
        process = subprocess.Popen(command, env=dict(env), text=True, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        proc = cls(name, process)
        threading.Thread(target=proc._read, daemon=True).start()
        return proc

    def _read(self) -> None:
        assert self.process.stderr is not None
        with self.process.stderr:
            for line in self.process.stderr:
                with self._changed:
                    self.lines.append(line.rstrip("\n"))
                    self._changed.notify_all()

    def count(self, text: str) -> int:
        with self._changed:
            return sum(text in line for line in self.lines)

    def wait_for(self, text: str, timeout: float = READY_TIMEOUT_S, times: int = 1) -> None:
        """Block until ``text`` has appeared in ``times`` lines of stderr (or the process exits)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while sum(text in line for line in self.lines) < times:
                if self.process.poll() is not None:
                    raise AssertionError(f"scheduler {self.name} exited ({self.process.returncode}):\n{self.log()}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"scheduler {self.name}: no {text!r} after {timeout:g} s:\n{self.log()}")
                self._changed.wait(0.1)

    def wait_ready(self) -> SchedulerProc:
        self.wait_for(f"scheduler {self.name} ready")
        return self

    def log(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"scheduler {self.name} ignored SIGTERM:\n{self.log()}") from None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()


def scheduler_env(redis_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "PIPELINE_REDIS_URL": redis_url, **extra}


def wipe_schedules(client: redis.Redis) -> None:
    """Schedules are global in a Redis; each test module starts and ends with none."""
    for key in client.scan_iter(match=keys.SCHED + "*"):
        client.delete(key)


def define(store: ScheduleStore, name: str, argv: list[str], cwd: Path, *, every: str, **policy: object) -> Schedule:
    """What `schedule add NAME --every EVERY -- ARGV` stores, without a CLI round trip."""
    now = time.time()
    job = schedule_spec(argv, Settings.load(), cwd)
    schedule = Schedule(name, parse_trigger(None, every, "UTC", now), job, created_at=now, **policy)
    store.add(schedule, now=now)
    return schedule


def submitted(store: ScheduleStore, name: str) -> list[Fire]:
    return [fire for fire in store.history(name) if fire.outcome == "submitted"]


def scheduled_jobs(ledger: Ledger, name: str) -> list[JobMeta]:
    """Jobs in the ledger linked to schedule ``name``, oldest first."""
    return sorted((m for m in ledger.recent_jobs(100_000) if m.schedule == name), key=lambda m: m.created_at)


def assert_one_outcome_per_tick(fires: list[Fire], step_ms: int = 1000) -> None:
    """Every fire time appears once, and consecutive entries are one interval apart (no gap, no repeat)."""
    times = [fire.fire_ms for fire in fires]
    assert len(times) == len(set(times)), f"a fire time handled twice: {times}"
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap == step_ms for gap in gaps), f"fire times are not one tick apart: {gaps}"
