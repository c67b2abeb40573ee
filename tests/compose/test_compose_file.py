"""docker-compose.yml, .env.example and deploy/Dockerfile, checked without a Docker engine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.compose.project import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    ROOT,
    InterpolationError,
    Project,
    interpolate,
    load_project,
    read_dotenv,
)

CHECK_JSONSCHEMA = str(Path(sys.executable).parent / "check-jsonschema")
REDIS_PORT_OVERRIDE = ROOT / "deploy" / "compose.redis-port.yml"
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
APP_SERVICES = ("worker", "scheduler", "flower")


@pytest.fixture(scope="module")
def project() -> Project:
    return load_project()


def test_the_compose_files_validate_against_the_compose_specification() -> None:
    # The schema ships inside check-jsonschema's wheel: no network is needed.
    result = subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE), str(REDIS_PORT_OVERRIDE)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_env_example_documents_every_variable_the_compose_files_read(project: Project) -> None:
    used = project.referenced_variables() | {"REDIS_PORT"}
    assert "REDIS_PORT" in REDIS_PORT_OVERRIDE.read_text()
    assert used == set(read_dotenv(ENV_EXAMPLE))


def test_compose_refuses_to_start_without_the_passwords() -> None:
    for variable in ("REDIS_PASSWORD", "FLOWER_PASSWORD"):
        with pytest.raises(InterpolationError, match=variable):
            load_project(overrides={variable: ""})


def test_interpolation_follows_the_compose_rules() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET:-d} ${EMPTY:-d} ${UNSET:-d} ${EMPTY-d} ${UNSET-d}", env) == "x d d  d"
    assert interpolate("${SET:+alt}|${EMPTY:+alt}|${EMPTY+alt}|$SET|$${SET}|${UNSET}", env) == "alt||alt|x|${SET}|"
    assert interpolate("${UNSET:-${SET}}", env) == "x"
    assert interpolate("${EMPTY?fine when set}", env) == ""
    with pytest.raises(InterpolationError, match="needed"):
        interpolate("${EMPTY:?needed}", env)


def test_workers_scale_and_nothing_has_a_fixed_container_name(project: Project) -> None:
    for name, spec in project.services.items():
        assert "container_name" not in spec, name
    worker = project.services["worker"]
    assert "ports" not in worker
    assert project.command("worker")[-2:] == ["pipeline", "worker"]
    assert "--name" not in project.command("worker")  # the default worker-PID@HOSTNAME is unique per container


def test_only_flower_is_published_and_only_on_loopback(project: Project) -> None:
    published = {name: spec["ports"] for name, spec in project.services.items() if spec.get("ports")}
    assert list(published) == ["flower"]
    for port in published["flower"]:
        assert str(port).startswith("127.0.0.1:"), port
    assert project.environment("flower")["PIPELINE_FLOWER_ADDRESS"] == "0.0.0.0"


def test_redis_is_durable_password_protected_and_never_evicts(project: Project) -> None:
    args = project.command("redis")
    options = dict(zip(args[1::2], args[2::2], strict=True))
    assert args[0] == "redis-server"
    assert options["--requirepass"] == project.variables["REDIS_PASSWORD"]
    assert options["--appendonly"] == "yes"
    assert options["--appendfsync"] == "everysec"
    assert options["--maxmemory-policy"] == "noeviction"
    assert "redis-data:/data" in project.services["redis"]["volumes"]
    assert "redis-data" in project.config["volumes"]


def test_app_services_wait_for_a_healthy_redis_and_share_the_outputs_volume(project: Project) -> None:
    for name in APP_SERVICES:
        assert project.dependencies(name) == {"redis": "service_healthy"}, name
        assert project.services[name].get("healthcheck", {}).get("test"), name
    for name in ("worker", "scheduler"):
        assert "outputs:/data/outputs" in project.services[name]["volumes"]
    assert project.services["redis"]["healthcheck"]["test"]
    assert project.replicas("scheduler") == 2
    assert project.services["demo-site"]["profiles"] == ["demo"]
    assert project.active(set()) == ["redis", "worker", "scheduler", "flower"]


def test_the_image_is_slim_non_root_healthchecked_and_installed_from_pyproject(project: Project) -> None:
    steps = project.image.instructions
    commands = [step.cmd for step in steps]
    assert steps[0].cmd == "FROM" and steps[0].value[0].startswith("python:3.1") and "slim" in steps[0].value[0]
    assert project.image.user not in (None, "root", "0")
    assert commands.index("USER") > max(i for i, cmd in enumerate(commands) if cmd == "RUN")
    assert any(step.cmd == "RUN" and step.value[0].strip() == "pip install ." for step in steps)
    assert project.image.healthcheck is not None and project.image.healthcheck[0] == "CMD"
    assert project.image.entrypoint == ["/usr/local/bin/pipeline-entrypoint"]
    assert project.image.files["/usr/local/bin/pipeline-entrypoint"] == ENTRYPOINT
    for path in project.image.files.values():
        assert path.exists(), path


def _entrypoint_env(tmp_path: Path, cpu_max: str, **env: str) -> dict[str, str]:
    (tmp_path / "cpu.max").write_text(cpu_max)
    result = subprocess.run(
        [str(ENTRYPOINT), "env"], capture_output=True, text=True, timeout=10, check=True,
        env={"PATH": os.environ["PATH"], "CGROUP_CPU_MAX": str(tmp_path / "cpu.max"), **env},
    )  # fmt: skip
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def test_the_entrypoint_sizes_the_pool_to_the_cpu_quota_and_the_affinity(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    assert _entrypoint_env(tmp_path, "max 100000\n")["PIPELINE_PROCESSES"] == str(affinity)
    assert _entrypoint_env(tmp_path, "50000 100000\n")["PIPELINE_PROCESSES"] == "1"  # cpus: 0.5 -> 1 process
    assert _entrypoint_env(tmp_path, f"{affinity * 400000} 100000\n")["PIPELINE_PROCESSES"] == str(affinity)
    chosen = _entrypoint_env(tmp_path, "50000 100000\n", WORKER_PROCESSES="3", WORKER_CONCURRENCY="9")
    assert (chosen["PIPELINE_PROCESSES"], chosen["PIPELINE_CONCURRENCY"]) == ("3", "9")


def test_the_entrypoint_treats_an_empty_setting_as_unset(tmp_path: Path) -> None:
    env = _entrypoint_env(tmp_path, "max 100000\n", PIPELINE_BATCH_SIZE="", WORKER_PROCESSES="")
    assert "PIPELINE_BATCH_SIZE" not in env
    assert env["PIPELINE_PROCESSES"] == str(len(os.sched_getaffinity(0)))
