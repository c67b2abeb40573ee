"""The repository's docker-compose.yml, built and run by a real compose on a private engine.

``compose_command`` picks compose v2 (``docker compose``) when the docker
client has it, else docker-compose v1 (Debian 12 ships 1.29.2);
``PIPELINE_TEST_COMPOSE`` forces one (``docker-compose`` or ``docker compose``).
The project directory is the repository (the build context is "."), but the
settings are a private env file (``--env-file``; the repository's .env, if
any, is never read) made from .env.example with random passwords, free
loopback ports and the stand-in image names, and a generated override gives
the image builds the wheelhouse (``build.network: host``,
``PIP_EXTRA_ARGS``). ``deploy/compose.redis-port.yml`` publishes Redis on
loopback, so the test reads the ledger, heartbeats and schedules directly.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.localredis import free_port
from tests.compose.engine import STANDIN_TAGS, Engine, EngineError
from tests.compose.project import COMPOSE_FILE, ENV_EXAMPLE, ROOT, read_dotenv

REDIS_PORT_OVERRIDE = ROOT / "deploy" / "compose.redis-port.yml"
BUILT_SERVICES = ("worker", "scheduler", "flower", "demo-site")


def compose_command(engine: Engine) -> list[str]:
    chosen = os.environ.get("PIPELINE_TEST_COMPOSE", "").strip()
    if chosen:
        return shlex.split(chosen)
    probe = subprocess.run([engine.client, "compose", "version"], env=engine.env, capture_output=True, text=True,
                           timeout=30, check=False)  # fmt: skip
    if probe.returncode == 0:
        return [engine.client, "compose"]
    found = shutil.which("docker-compose")
    if found is None:
        raise EngineError("neither `docker compose` (v2) nor `docker-compose` (v1) is installed: run `make engine`")
    return [found]


@dataclass
class ComposeStack:
    engine: Engine
    command: list[str]
    base: Path  # the env file, the override, the inputs folder
    env: dict[str, str]

    @classmethod
    def prepare(cls, engine: Engine, base: Path, wheel_url: str, **overrides: str) -> ComposeStack:
        inputs = base / "inputs"
        inputs.mkdir(parents=True, exist_ok=True)
        env = (
            read_dotenv(ENV_EXAMPLE)
            | {
                "COMPOSE_PROJECT_NAME": f"pltest{os.getpid()}",
                "REDIS_PASSWORD": secrets.token_hex(16),
                "FLOWER_PASSWORD": secrets.token_hex(16),
                "FLOWER_PORT": str(free_port()),
                "REDIS_PORT": str(free_port()),
                "INPUTS_DIR": str(inputs),
                "PYTHON_IMAGE": STANDIN_TAGS[0],
                "REDIS_IMAGE": STANDIN_TAGS[1],
            }
            | overrides
        )
        (base / "env").write_text("".join(f"{key}={value}\n" for key, value in env.items()))
        build = {"network": "host", "args": {"PIP_EXTRA_ARGS": f"--no-index --find-links {wheel_url}"}}
        builds = {name: {"build": build} for name in BUILT_SERVICES}
        (base / "build.override.yml").write_text(json.dumps({"services": builds}, indent=2))  # JSON is YAML
        return cls(engine, compose_command(engine), base, env)

    @property
    def project(self) -> str:
        return self.env["COMPOSE_PROJECT_NAME"]

    @property
    def redis_url(self) -> str:
        return f"redis://:{self.env['REDIS_PASSWORD']}@127.0.0.1:{self.env['REDIS_PORT']}/0"

    def version(self) -> str:
        return self.run("version", timeout=60).stdout.strip().splitlines()[0]

    def run(self, *args: str, timeout: float = 300.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [*self.command, "--env-file", str(self.base / "env"), "--project-directory", str(ROOT),
                "-f", str(COMPOSE_FILE), "-f", str(REDIS_PORT_OVERRIDE), "-f", str(self.base / "build.override.yml"),
                *args]  # fmt: skip
        result = subprocess.run(argv, env=self.engine.env, capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL, cwd=ROOT)  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(f"compose {' '.join(args)}: exit {result.returncode}\n{result.stdout[-4000:]}"
                                 f"{result.stderr[-4000:]}")  # fmt: skip
        return result

    def exec(
        self, service: str, *words: str, index: int = 1, timeout: float = 180.0
    ) -> subprocess.CompletedProcess[str]:
        """`compose exec -T` in one replica (no TTY: the test reads its output)."""
        return self.run("exec", "-T", "--index", str(index), service, *words, timeout=timeout, check=False)

    def exec_json(self, service: str, *words: str, timeout: float = 180.0) -> Any:
        result = self.exec(service, *words, timeout=timeout)
        assert result.returncode == 0, f"{words}: exit {result.returncode}\n{result.stdout}{result.stderr}"
        return json.loads(result.stdout)

    def containers(self, service: str | None = None, *, all_states: bool = False) -> list[dict[str, Any]]:
        """This project's containers (``docker inspect`` documents), optionally of one service."""
        filters = ["--filter", f"label=com.docker.compose.project={self.project}"]
        if service:
            filters += ["--filter", f"label=com.docker.compose.service={service}"]
        ids = self.engine.docker("ps", "-q", *(["-a"] if all_states else []), *filters).stdout.split()
        if not ids:
            return []
        documents: list[dict[str, Any]] = json.loads(self.engine.docker("inspect", *ids).stdout)
        return documents

    def states(self) -> dict[str, str]:
        """Container name -> health (or state when it has no healthcheck)."""
        states = {}
        for doc in self.containers(all_states=True):
            state = doc["State"]
            states[doc["Name"].lstrip("/")] = state.get("Health", {}).get("Status") or state["Status"]
        return states

    def wait_healthy(self, expected: Mapping[str, int], timeout: float) -> float:
        """Wait until every service has its replicas and all are healthy; returns the seconds waited."""
        started = time.monotonic()
        while True:
            docs = self.containers()
            counts = {name: 0 for name in expected}
            unhealthy = []
            for doc in docs:
                service = doc["Config"]["Labels"]["com.docker.compose.service"]
                health = doc["State"].get("Health", {}).get("Status", "healthy")
                if health == "healthy":
                    counts[service] = counts.get(service, 0) + 1
                else:
                    unhealthy.append(f"{doc['Name'].lstrip('/')}: {health}")
            if all(counts.get(name, 0) >= count for name, count in expected.items()):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                logs = self.run("logs", "--tail", "20", timeout=60, check=False).stdout[-6000:]
                raise AssertionError(f"not healthy after {timeout:g} s: {counts} (want {dict(expected)}); "
                                     f"{unhealthy}\n{logs}")  # fmt: skip
            time.sleep(1.0)

    def node_container(self, node: str) -> str:
        """The container id of a worker named ``worker-PID@<container hostname>``."""
        host = node.split("|")[0].rsplit("@", 1)[1]
        for doc in self.containers("worker"):
            if doc["Config"]["Hostname"] == host:
                return str(doc["Id"])
        raise AssertionError(f"no running worker container has host name {host}")

    def worker_pid(self, container: str) -> int:
        """The host pid of the worker process in ``container`` (the child of its init, docker-init)."""
        init = int(self.inspect(container)["State"]["Pid"])
        children = Path(f"/proc/{init}/task/{init}/children").read_text().split()
        assert len(children) == 1, f"{container}: init has children {children}"
        return int(children[0])

    def docker_run(self, *args: str, timeout: float = 120.0) -> str:
        """`docker run -d` on the private engine; returns the container id."""
        return self.engine.docker("run", "-d", *args, timeout=timeout).stdout.strip()

    def volume(self, name: str) -> str:
        return f"{self.project}_{name}"

    def network(self) -> str:
        return f"{self.project}_default"

    def inspect(self, container: str) -> dict[str, Any]:
        [doc] = json.loads(self.engine.docker("inspect", container).stdout)
        return dict(doc)

    def docker(self, *args: str, timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.engine.docker(*args, timeout=timeout, check=check)
