"""The compose stack, run as local processes: every service's own command, environment and healthcheck.

`docker compose --profile demo up --scale worker=2` is emulated by
``tests/compose/stack.py`` (how compose maps to processes is described
there): Redis with the compose arguments, two worker replicas, the two
scheduler replicas of ``deploy.replicas``, Flower and the demo site, each
started once its dependencies' healthchecks pass. Commands the README tells
users to run with ``docker compose exec`` run the same way here. A command or
variable in docker-compose.yml that does not work fails these tests.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.ledger.connection import connect
from pipeline.scheduler.store import ScheduleStore
from tests.compose.project import ENV_EXAMPLE, load_project
from tests.compose.stack import LocalStack, running
from tests.helpers import make_images, wait_until

pytestmark = pytest.mark.slow
HOST = socket.gethostname()
TICK_S = 2
TICKS = 3


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    base = tmp_path_factory.mktemp("compose")
    inputs = base / "inputs"
    make_images(inputs, 4, size=(160, 120))
    # What a user puts in .env on top of .env.example: an inputs folder, small batches so a
    # 60-page crawl is spread over both workers, a small demo site.
    overrides = {"INPUTS_DIR": str(inputs), "PIPELINE_BATCH_SIZE": "5", "DEMO_PAGES": "60"}
    if len(os.sched_getaffinity(0)) > 4:
        overrides["WORKER_PROCESSES"] = "2"  # keep the test machine's load bounded on big hosts
    project = load_project(overrides=overrides)
    with running(project, base, scale={"worker": 2}, profiles={"demo"}) as started:
        yield started


def run_json(stack: LocalStack, service: str, *words: str) -> Any:
    result = stack.exec(service, *words)
    assert result.returncode == 0, f"{words}: exit {result.returncode}\n{result.stdout}{result.stderr}"
    return json.loads(result.stdout)


def worker_names(stack: LocalStack) -> list[str]:
    # `pipeline worker` exec's celery, and the entrypoint exec's `pipeline`: the replica's pid is the worker's.
    return [f"worker-{replica.pid}@{HOST}" for replica in stack.replicas["worker"]]


def test_each_worker_replica_has_its_own_node_name_and_heartbeat(stack: LocalStack) -> None:
    names = worker_names(stack)
    live = {w["name"]: w for w in run_json(stack, "worker", "pipeline", "workers", "--json")}
    assert len(set(names)) == 2
    assert set(names) <= set(live)
    expected = int(stack.replicas["worker"][0].env.get("WORKER_PROCESSES") or len(os.sched_getaffinity(0)))
    for name in names:  # sized by the entrypoint: processes = CPUs, Celery threads = 2 x processes (min 4)
        assert (live[name]["processes"], live[name]["concurrency"]) == (expected, max(4, 2 * expected)), live[name]


def test_both_worker_replicas_process_a_crawl_with_images_into_the_outputs_volume(stack: LocalStack) -> None:
    doc = run_json(stack, "worker", "pipeline", "submit", "crawl", "http://demo-site:8080/", "--images",
                   "--ops", "thumbnail:64", "--max-pages", "60", "--wait", "--json", "--timeout", "60")  # fmt: skip
    assert doc["state"] == "succeeded", doc
    assert doc["pages"]["ok"] > 10 and doc["images"]["ok"] > 0, doc
    outputs = stack.base / "volumes" / "outputs"
    assert Path(doc["output_dir"]).parent == outputs  # PIPELINE_OUTPUT_ROOT=/data/outputs is the shared volume
    assert (Path(doc["output_dir"]) / "report.json").is_file()

    def items_per_worker() -> dict[str, int] | None:
        live = {w["name"]: w for w in run_json(stack, "worker", "pipeline", "workers", "--json")}
        counts = {
            name: sum(slot["items"] for slot in live[name]["slots"]) + live[name]["io"]["items"]
            for name in worker_names(stack)
            if name in live
        }
        return counts if len(counts) == 2 and all(counts.values()) else None

    wait_until(items_per_worker, 15, "items on both worker replicas in their heartbeat records")


def test_two_scheduler_replicas_fire_each_tick_exactly_once(stack: LocalStack) -> None:
    client = connect(stack.replicas["scheduler"][0].env["PIPELINE_REDIS_URL"])
    store = ScheduleStore(client)
    try:
        expected = {f"scheduler-{replica.pid}@{HOST}" for replica in stack.replicas["scheduler"]}
        assert expected <= {beat["name"] for beat in store.live_schedulers()}
        added = stack.exec("scheduler", "pipeline", "schedule", "add", "tick", "--every", f"{TICK_S}s", "--",
                           "images", "/data/inputs", "--ops", "thumbnail:32")  # fmt: skip
        assert added.returncode == 0, added.stdout + added.stderr
        wait_until(lambda: len(store.history("tick")) >= TICKS, TICK_S * (TICKS + 3), f"{TICKS} fires of `tick`")
        paused = stack.exec("scheduler", "pipeline", "schedule", "pause", "tick")
        assert paused.returncode == 0, paused.stdout + paused.stderr
        assert expected <= {beat["name"] for beat in store.live_schedulers()}  # both ran throughout
        history = store.history("tick")
    finally:
        client.close()
    fire_times = [fire.fire_ms for fire in history]
    assert len(set(fire_times)) == len(fire_times), history  # one outcome per fire time
    assert all(later - earlier == TICK_S * 1000 for earlier, later in itertools.pairwise(fire_times)), history
    assert {fire.outcome for fire in history} <= {"submitted", "skipped"}, history
    submitted = [fire.job for fire in history if fire.outcome == "submitted"]
    assert submitted and len(set(submitted)) == len(submitted)
    jobs = run_json(stack, "worker", "pipeline", "jobs", "--json", "--limit", "100")
    assert sorted(job["job_id"] for job in jobs if job.get("schedule") == "tick") == sorted(submitted)


def _get(url: str, auth: tuple[str, str] | None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_flower_is_published_on_loopback_and_answers_only_with_the_env_credentials(stack: LocalStack) -> None:
    published = stack.project.services["flower"]["ports"][0]  # 127.0.0.1:HOSTPORT:5555
    url = f"http://127.0.0.1:{stack.url_port('flower', int(published.rsplit(':', 1)[1]))}"
    login = (stack.project.variables["FLOWER_USER"], stack.project.variables["FLOWER_PASSWORD"])
    assert _get(url + "/api/cores", None)[0] == 401
    assert _get(url + "/api/cores", (login[0], "wrong"))[0] == 401
    assert _get(url + "/", login)[0] == 200

    def both_workers_seen() -> bool:
        status, body = _get(url + "/api/cores", login)
        assert status == 200
        return set(worker_names(stack)) <= {w["name"] for w in json.loads(body)["workers"]}

    wait_until(both_workers_seen, 20, "both worker replicas on Flower's Cores board (task events)")


@pytest.mark.parametrize(
    ("service", "change", "complaint"),
    [
        ("worker", {"command": ["pipeline", "wroker"]}, "No such command"),
        ("worker", {"environment": {"PIPELINE_BATCH_SIZE": "lots"}}, "PIPELINE_BATCH_SIZE"),
        ("redis", {"command": ["redis-server", "--appendfsync", "sometimes"]}, "appendfsync"),
    ],
    ids=["unknown-command", "bad-variable", "bad-redis-argument"],
)
def test_a_command_or_variable_that_does_not_work_fails_the_stack(
    tmp_path: Path, service: str, change: dict[str, Any], complaint: str
) -> None:
    raw = yaml.safe_load((Path(__file__).parents[2] / "docker-compose.yml").read_text())
    spec = raw["services"][service]
    for key, value in change.items():
        spec[key] = {**spec[key], **value} if isinstance(value, dict) else value
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(raw))
    (tmp_path / "deploy").symlink_to(Path(__file__).parents[2] / "deploy")
    for name in ("pipeline", "workers", "tasks", "pyproject.toml", "README.md"):
        (tmp_path / name).symlink_to(Path(__file__).parents[2] / name)
    project = load_project(broken, ENV_EXAMPLE, {"INPUTS_DIR": str(tmp_path / "inputs")})
    with pytest.raises(AssertionError, match=complaint), running(project, tmp_path / "stack", scale={}):
        pass
