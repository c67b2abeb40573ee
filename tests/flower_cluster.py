"""A monitored cluster for the monitoring tests: Redis, two workers and `pipeline flower`.

Everything is real and started the way users start it: redis-server, `celery
worker` subprocesses (``pipeline.cluster``), and the installed `pipeline flower`
console script on a free port (``--port=0``, which also checks that Flower's
own flags pass through). Each piece is ready when it says so: a worker when its
heartbeat record appears, Flower when it prints its address and then answers,
the per-core board when every worker's event has arrived. Never a sleep.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.cluster import WorkerProcess, start_worker, wait_ready
from pipeline.ledger import Ledger
from pipeline.ledger.connection import connect
from pipeline.localredis import RedisServer, start_redis
from tests.helpers import wait_until

PIPELINE = str(Path(sys.executable).parent / "pipeline")
FLOWER_USER = "monitor"
FLOWER_PASSWORD = "s3cret-for-tests"
READY_LINE = re.compile(r"^flower\s+(http://\S+?)/\s")


def _lower(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers}


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 303 itself is what a test looks at


_NO_REDIRECTS = urllib.request.build_opener(_KeepRedirects)


@dataclass
class Response:
    status: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


@dataclass
class Flower:
    """A `pipeline flower` subprocess and a small HTTP client for it."""

    process: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""
    user: str = FLOWER_USER
    password: str = FLOWER_PASSWORD

    def get(
        self, path: str, *, auth: tuple[str, str] | bool | None = True, headers: Mapping[str, str] | None = None
    ) -> Response:
        """GET ``path``; ``auth`` True = our credentials, a pair = those, None/False = none."""
        return self._send(urllib.request.Request(self.url + path, headers=dict(headers or {})), auth)

    def post(
        self, path: str, form: Mapping[str, str], *, auth: tuple[str, str] | bool | None = True,
        headers: Mapping[str, str] | None = None,
    ) -> Response:  # fmt: skip
        """POST a form to ``path``; redirects are returned, not followed."""
        body = urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(self.url + path, data=body, method="POST", headers=dict(headers or {}))
        return self._send(request, auth)

    def _send(self, request: urllib.request.Request, auth: tuple[str, str] | bool | None) -> Response:
        credentials = (self.user, self.password) if auth is True else auth or None
        if credentials:
            token = base64.b64encode(":".join(credentials).encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with _NO_REDIRECTS.open(request, timeout=10) as reply:
                return Response(reply.status, _lower(reply.headers.items()), reply.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, _lower(exc.headers.items()), exc.read())

    def cores(self) -> dict[str, Any]:
        reply = self.get("/api/cores")
        assert reply.status == 200, reply.text
        doc: dict[str, Any] = reply.json()
        return doc

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_flower(
    redis_url: str, log_path: Path, env: Mapping[str, str], *, configured_login: bool = True, timeout: float = 30.0
) -> Flower:
    """Start `pipeline flower --port=0` and wait for its address line, then for it to answer.

    With ``configured_login`` False no PIPELINE_FLOWER_* is passed, so Flower
    generates a password; the client then uses the one it printed.
    """
    child_env = {**env, "PIPELINE_REDIS_URL": redis_url}
    if configured_login:
        child_env |= {"PIPELINE_FLOWER_USER": FLOWER_USER, "PIPELINE_FLOWER_PASSWORD": FLOWER_PASSWORD}
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [PIPELINE, "flower", "--port=0"], env=child_env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True, cwd=log_path.parent,
        )  # fmt: skip
    flower = Flower(process, log_path)

    def address() -> str | None:
        if process.poll() is not None:
            raise AssertionError(f"pipeline flower exited with {process.returncode}:\n{flower.log()}")
        for line in flower.log().splitlines():
            if match := READY_LINE.match(line):
                return match.group(1)
        return None

    try:
        flower.url = wait_until(address, timeout, "pipeline flower to print its address")
        if not configured_login:  # "login    admin / PASSWORD  (generated ...)", a line after the address

            def login() -> list[str] | None:
                return next((line.split() for line in flower.log().splitlines() if line.startswith("login")), None)

            fields = wait_until(login, timeout, "pipeline flower to print its generated login")
            assert fields is not None
            flower.user, flower.password = fields[1], fields[3]
        wait_until(lambda: flower.get("/healthcheck", auth=None).status == 200, timeout, "Flower to answer")
    except BaseException:
        flower.stop()
        raise
    return flower


@dataclass
class MonitoredCluster:
    redis: RedisServer
    workers: list[WorkerProcess]
    flower: Flower
    processes: int
    env: dict[str, str] = field(default_factory=dict)
    flower_started_at: float = 0.0  # when Flower answered: its board is a little older

    @property
    def redis_url(self) -> str:
        return self.redis.url

    def core_names(self) -> set[tuple[str, str]]:
        """(worker, core) for every pool slot of every worker we started."""
        return {(w.name, str(slot)) for w in self.workers for slot in range(self.processes)}


@contextmanager
def monitored_cluster(
    base: Path, env: Mapping[str, str], workers: int = 2, processes: int = 2
) -> Iterator[MonitoredCluster]:
    """Redis + ``workers`` workers of ``processes`` pool processes + Flower; all stopped on exit."""
    with ExitStack() as stack:
        redis = start_redis(base / "redis", appendonly=False)
        stack.callback(redis.stop)
        host = socket.gethostname()
        started = [
            start_worker(redis.url, f"monitored{i}@{host}", env=env, processes=processes,
                         log_path=base / f"worker{i}.log")
            for i in range(1, workers + 1)
        ]  # fmt: skip
        for worker in started:
            stack.callback(_stop_worker, worker)
        client = connect(redis.url)
        try:
            wait_ready(Ledger(client), started)
        finally:
            client.close()
        flower = start_flower(redis.url, base / "flower.log", env)
        stack.callback(flower.stop)
        cluster = MonitoredCluster(redis, started, flower, processes, dict(env), time.time())

        def every_core_reported() -> bool:
            seen = {(w["name"], c["core"]) for w in flower.cores()["workers"] for c in w["cores"]}
            return cluster.core_names() <= seen

        wait_until(every_core_reported, 30, "a per-core event from every worker")
        yield cluster


def _stop_worker(worker: WorkerProcess) -> None:
    worker.terminate()
    if not worker.wait(30):
        worker.kill()
