"""Run a compose project's services as local processes: `docker compose up` without a Docker engine.

Each replica of a service becomes one process started from the service's own
entrypoint and command, with the environment compose would give its
container (the image's ENV, then ``environment:``, interpolated from the
dotenv file). What a container has and a local process does not is mapped,
always the same way, on every argument, environment value and healthcheck:

- **the network**: each port a service listens on (``expose``, ``ports``
  targets) gets a free port on 127.0.0.1. Another service's ``NAME:PORT``
  (``redis://:pw@redis:6379/0``, ``http://demo-site:8080/``) becomes
  ``127.0.0.1:FREE``; in the service's own words its port becomes FREE and
  ``0.0.0.0`` becomes ``127.0.0.1``, so nothing listens beyond loopback.
- **the file system**: a volume's target (``/data/outputs``) is a folder
  under the stack's directory (named volumes) or the bind-mounted host path;
  other paths under ``/data`` live in a per-replica folder (the container's
  own layer); files the Dockerfile COPYs (``/usr/local/bin/pipeline-entrypoint``,
  ``/app/deploy/demo_site.py``) are the repository's files.
- **programs**: ``PATH`` starts with this virtualenv's ``bin`` (where
  ``pipeline`` and ``python`` are, as in the image); ``redis-server`` is the
  binary ``pipeline.localredis.find_redis_server`` finds.

``depends_on: condition: service_healthy`` is honoured by running the
dependency's healthcheck command (mapped the same way) until it exits 0 —
polled, with a deadline, and failing at once with the log if the replica dies.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.localredis import find_redis_server, free_port
from tests.compose.project import Project

VENV_BIN = Path(sys.executable).parent
CONTAINER_DATA = "/data"  # the image's data root (deploy/Dockerfile): a container-local layer unless a volume
HEALTHY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


@dataclass
class Replica:
    service: str
    index: int
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]
    root: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, grace: float) -> None:
        """Like `docker stop`: SIGTERM to the command, SIGKILL to everything it started after ``grace``."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(grace)
        with suppress(ProcessLookupError):  # the container's leftovers (pool children) go with it
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@dataclass
class LocalStack:
    project: Project
    base: Path
    ports: dict[tuple[str, int], int] = field(default_factory=dict)
    replicas: dict[str, list[Replica]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for service in self.project.services:
            for port in self.project.listening_ports(service):
                self.ports[(service, port)] = free_port()

    # -- the mapping ------------------------------------------------------------------------------

    def url_port(self, service: str, port: int) -> int:
        """The loopback port standing for ``service:port`` (also what a ``ports:`` entry publishes)."""
        return self.ports[(service, port)]

    def _mounts(self, service: str, root: Path) -> list[tuple[str, Path]]:
        mounts = []
        for volume in self.project.services[service].get("volumes", []):
            source, target = (volume["source"], volume["target"]) if isinstance(volume, dict) else volume.split(":")[:2]
            if source.startswith((".", "/")):
                local = (self.project.path.parent / source).resolve()
            else:
                local = self.base / "volumes" / source
            local.mkdir(parents=True, exist_ok=True)
            mounts.append((target, local))
        mounts += [(path, local) for path, local in self.project.image.files.items()]
        mounts.append((CONTAINER_DATA, root / CONTAINER_DATA.strip("/")))
        return sorted(mounts, key=lambda item: len(item[0]), reverse=True)

    def translate(self, service: str, text: str, root: Path, *, shell: bool = False) -> str:
        """One argument or environment value of ``service``, as its local process must see it."""
        for (other, port), local in self.ports.items():
            text = re.sub(rf"(?<![\w.-]){re.escape(other)}:{port}(?!\d)", f"127.0.0.1:{local}", text)
        own = {port: local for (name, port), local in self.ports.items() if name == service}
        text = re.sub(r"(?<![\d.])0\.0\.0\.0(?![\d.])", "127.0.0.1", text)
        for port, local in own.items():
            text = re.sub(rf"(?<![\w.-])(?:127\.0\.0\.1|localhost):{port}(?!\d)", f"127.0.0.1:{local}", text)
            if text == str(port):
                text = str(local)
            elif shell:
                text = re.sub(rf"(?<=\s){port}(?=\s|$)", str(local), text)
        for target, local in self._mounts(service, root):
            if text == target or text.startswith(target + "/"):
                return str(local) + text[len(target) :]
            if shell:
                text = re.sub(rf"(?<![\w/]){re.escape(target)}(?=[/\s]|$)", str(local), text)
        return text

    def _program(self, word: str) -> str:
        return find_redis_server() if word == "redis-server" else word

    def _env(self, service: str, root: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {key: self.translate(service, value, root) for key, value in self.project.environment(service).items()}
        env |= {"PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(root)}
        return env | dict(extra or {})

    def argv(self, service: str, words: Sequence[str], root: Path) -> list[str]:
        argv = [self.translate(service, word, root) for word in words]
        return [self._program(argv[0]), *argv[1:]] if argv else argv

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self, service: str, count: int | None = None, *, extra_env: Mapping[str, str] | None = None) -> None:
        """Start the service's replicas (default: ``deploy.replicas``); they must be healthy before dependents."""
        for dependency, condition in self.project.dependencies(service).items():
            started = self.replicas.get(dependency)
            if not started:
                raise AssertionError(f"{service} depends on {dependency}, which is not running")
            if condition == "service_healthy":
                for replica in started:
                    self.wait_healthy(replica)
        count = self.project.replicas(service) if count is None else count
        started_now = self.replicas.setdefault(service, [])
        for _ in range(count):
            index = len(started_now) + 1
            root = self.base / "containers" / f"{service}-{index}"
            (root / CONTAINER_DATA.strip("/")).mkdir(parents=True, exist_ok=True)
            env = self._env(service, root, extra_env)
            argv = self.argv(service, self.project.command(service), root)
            cwd = next((local for target, local in self._mounts(service, root) if target == "/data"), root)
            log_path = self.base / "logs" / f"{service}-{index}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("wb") as out:
                process = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                           stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
            started_now.append(Replica(service, index, process, log_path, env, root))

    def healthcheck(self, replica: Replica) -> subprocess.CompletedProcess[str] | None:
        """Run the service's healthcheck once inside (the stand-in of) ``replica``; None if it has none."""
        check = self.project.services[replica.service].get("healthcheck")
        test = check.get("test") if check else None
        if not test or test == ["NONE"]:
            return None
        if isinstance(test, str):
            test = ["CMD-SHELL", test]
        kind, *words = test
        if kind == "CMD-SHELL":
            argv = ["/bin/sh", "-c", self.translate(replica.service, words[0], replica.root, shell=True)]
        else:
            argv = self.argv(replica.service, words, replica.root)
        try:
            return subprocess.run(argv, env=replica.env, cwd=replica.root, capture_output=True, text=True,
                                  timeout=15, stdin=subprocess.DEVNULL)  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            return subprocess.CompletedProcess(argv, 124, "", f"healthcheck timed out: {exc}")

    def wait_healthy(self, replica: Replica, timeout: float = HEALTHY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not replica.alive():
                raise AssertionError(
                    f"{replica.service}-{replica.index} exited with {replica.process.returncode} before it was "
                    f"healthy; command {replica.process.args}:\n{replica.log()[-3000:]}"
                )
            result = self.healthcheck(replica)
            if result is None or result.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{replica.service}-{replica.index} not healthy after {timeout:g} s; last check "
                    f"{result.args}: exit {result.returncode} {result.stdout}{result.stderr}\n{replica.log()[-3000:]}"
                )
            time.sleep(0.2)

    def exec(self, service: str, *words: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """`docker compose exec SERVICE WORDS...` in its first replica (no entrypoint, like exec)."""
        replica = self.replicas[service][0]
        argv = self.argv(service, words, replica.root)
        return subprocess.run(argv, env=replica.env, cwd=replica.root, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)  # fmt: skip

    def stop(self) -> None:
        """`docker compose down`: dependents first, each within its stop_grace_period (capped for tests)."""
        for service in reversed(list(self.replicas)):
            grace = min(_seconds(self.project.services[service].get("stop_grace_period", "10s")), STOP_TIMEOUT_S)
            for replica in self.replicas[service]:
                if replica.alive():
                    replica.process.send_signal(signal.SIGTERM)
            for replica in self.replicas[service]:
                replica.stop(grace)
        self.replicas.clear()

    def logs(self, services: Iterable[str] | None = None) -> str:
        chosen = services or list(self.replicas)
        return "\n".join(f"--- {r.service}-{r.index}\n{r.log()[-2000:]}" for s in chosen for r in self.replicas[s])


def _seconds(duration: str | int) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(duration)):
        total += float(amount) * units[unit]
    return total


@contextmanager
def running(
    project: Project, base: Path, scale: Mapping[str, int], profiles: Iterable[str] = ()
) -> Iterator[LocalStack]:
    """`docker compose --profile ... up --scale ...`: every active service, dependencies healthy first."""
    stack = LocalStack(project, base)
    try:
        services = project.active(set(profiles))
        for service in services:
            stack.start(service, scale.get(service))
        for service in services:
            for replica in stack.replicas[service]:
                stack.wait_healthy(replica)
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(base / "containers", ignore_errors=True)
