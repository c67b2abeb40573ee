"""Child processes `pipeline` starts and owns: workers and schedulers.

Both are started the same way (own session, so a Ctrl-C in the terminal reaches
the parent first and the parent decides the order of shutdown; output appended
to a log file), stopped the same way (SIGTERM for a warm shutdown, SIGKILL only
after a grace period), and report a failed start-up with the tail of their log.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.outputs import open_log

_PR_SET_PDEATHSIG = 1


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's prctl, loaded in the parent (a forked child should only call it)."""
    try:
        prctl: Callable[..., int] = ctypes.CDLL("libc.so.6", use_errno=True).prctl
        return prctl
    except (OSError, AttributeError):  # not Linux/glibc
        return None


def _die_with(parent: int, sig: int) -> None:
    """In the child, before exec: get ``sig`` when ``parent`` dies (kept across exec), even by SIGKILL."""
    prctl = _prctl()
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, sig)
    if os.getppid() != parent:  # the parent died between fork and prctl: go now
        os._exit(1)


def parent_death_hook(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that ties a child's life to this process (Linux's parent-death signal).

    ``pipeline up`` starts Redis, workers and a scheduler with it, so that a killed
    ``up`` (``kill -9``, the OOM killer) leaves nothing running: each child gets
    ``sig`` (SIGTERM: a warm shutdown, an AOF flush) the moment ``up`` is gone.
    The signal follows the *thread* that forked, so only call this from the main thread.
    """
    if _prctl() is None:
        return None
    return functools.partial(_die_with, os.getpid(), sig)


@dataclass
class ChildProcess:
    """A long-running child we started, known by name."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def terminate(self) -> None:
        """Ask for a warm shutdown: the child finishes what it holds, then exits."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> bool:
        """True once the child has exited, False if it is still running after ``timeout``."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
        self.process.wait()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL if the child has not exited after ``timeout``."""
        self.terminate()
        if not self.wait(timeout):
            self.kill()

    def log_tail(self, lines: int = 15) -> str:
        """The end of the child's log, formatted to follow an error message ("" without a log)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return ":\n  " + "\n  ".join(text)


def spawn(
    command: Sequence[str], env: Mapping[str, str], log_path: Path | None, *, die_with_parent: bool = False
) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own session with ``env`` added to ours, output appended to ``log_path``.

    ``die_with_parent``: the child gets SIGTERM when this process dies (``parent_death_hook``).
    """
    out = open_log(log_path) if log_path else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            list(command), env={**os.environ, **env}, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=parent_death_hook() if die_with_parent else None,
        )  # fmt: skip
    finally:
        if log_path:
            os.close(out)
