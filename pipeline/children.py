"""Child processes `pipeline` starts and owns: workers and schedulers.

Both are started the same way (own session, so a Ctrl-C in the terminal reaches
the parent first and the parent decides the order of shutdown; output appended
to a log file), stopped the same way (SIGTERM for a warm shutdown, SIGKILL only
after a grace period), and report a failed start-up with the tail of their log.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.outputs import open_log


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


def spawn(command: Sequence[str], env: Mapping[str, str], log_path: Path | None) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own session with ``env`` added to ours, output appended to ``log_path``."""
    out = open_log(log_path) if log_path else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            list(command), env={**os.environ, **env}, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    finally:
        if log_path:
            os.close(out)
