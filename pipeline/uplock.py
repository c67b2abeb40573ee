"""The one `pipeline up` of a PIPELINE_HOME: a lock it holds for its life, its pid, its readiness.

A second `up` on the same home would start a second private Redis over the
first one's files; instead it finds the lock taken and refuses with the pid of
the one that holds it. The lock is an ``flock`` on ``HOME/up.lock``, so it is
released by the kernel however `up` ends (even ``kill -9``): a stale pid file
can never lock anyone out. ``HOME/up.json`` says ``starting`` or ``ready``, for
``up --detach`` (which waits for ``ready``) and ``pipeline down``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from pathlib import Path
from typing import Any

from pipeline.core.errors import PipelineError
from pipeline.outputs import write_file

LOCK_FILE = "up.lock"
STATE_FILE = "up.json"


class AlreadyRunning(PipelineError):
    """A `pipeline up` already runs on this PIPELINE_HOME."""

    exit_code = 1


def _open_lock(home: Path) -> int:
    return os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


def _holder(fd: int) -> int | None:
    """The pid written in the lock file (by the process holding it), if readable."""
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or "0") or None
    except (OSError, ValueError):
        return None


class UpLock:
    """Held by a running `pipeline up` (``acquire``) until it ends (``release``, or its death)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = _open_lock(self.home)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                os.close(fd)
                raise
            pid = _holder(fd)
            os.close(fd)
            raise AlreadyRunning(
                f"`pipeline up` is already running on PIPELINE_HOME={self.home} (pid {pid or 'unknown'}); "
                "stop it with `pipeline down` (or Ctrl-C in its terminal), or set another PIPELINE_HOME"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        self.write_state("starting")

    def write_state(self, state: str, **extra: Any) -> None:
        document = {"pid": os.getpid(), "state": state, **extra}
        write_file(self.home / STATE_FILE, json.dumps(document).encode(), 0o600)

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            (self.home / STATE_FILE).unlink()
        os.close(self._fd)  # closing drops the flock
        self._fd = None


def running_up(home: Path) -> int | None:
    """The pid of the `pipeline up` running on ``home``, or None (the lock is free)."""
    try:
        fd = _open_lock(home)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return _holder(fd) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def up_state(home: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads((home / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return state
