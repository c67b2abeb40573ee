"""docker-compose.yml, .env.example and deploy/Dockerfile, checked without a Docker engine."""

from __future__ import annotations

import os
import re
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
    # ... and the project name, which compose itself reads (v1 refuses a top-level `name:`).
    assert used | {"COMPOSE_PROJECT_NAME"} == set(read_dotenv(ENV_EXAMPLE))
    assert "name" not in project.raw


def test_the_base_images_are_pinned_by_digest_and_the_dockerfile_and_compose_agree(project: Project) -> None:
    digest = re.compile(r"^[a-z0-9.:/_-]+@sha256:[0-9a-f]{64}$")
    arg, base = project.image.instructions[:2]
    assert (arg.cmd, base.cmd, base.value[0]) == ("ARG", "FROM", "${PYTHON_IMAGE}")
    name, _, default = arg.value[0].partition("=")
    assert name == "PYTHON_IMAGE" and digest.match(default) and default.startswith("python:3.11-slim@"), default
    assert project.services["worker"]["build"]["args"]["PYTHON_IMAGE"] == default
    assert read_dotenv(ENV_EXAMPLE)["PYTHON_IMAGE"] == default
    redis_image = project.services["redis"]["image"]
    assert digest.match(redis_image) and redis_image.startswith("redis:7.2-alpine@"), redis_image
    assert read_dotenv(ENV_EXAMPLE)["REDIS_IMAGE"] == redis_image


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


def test_the_image_builds_without_buildkit_non_root_with_dependencies_in_their_own_layer(project: Project) -> None:
    steps = project.image.instructions
    commands = [step.cmd for step in steps]
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    # The classic builder (docker-compose v1, DOCKER_BUILDKIT=0) knows no --chmod, RUN --mount or # syntax=.
    assert "# syntax" not in text and "--mount" not in text
    for step in steps:
        if step.cmd in ("COPY", "ADD", "RUN"):  # COPY --chmod/--link and every RUN flag need BuildKit
            assert all(flag.split("=")[0] in ("--chown", "--from") for flag in step.flags), step
    runs = [(i, step.value[0]) for i, step in enumerate(steps) if step.cmd == "RUN"]
    [lock_layer] = [i for i, run in runs if "--requirement /tmp/requirements.lock" in run]
    [code_layer] = [i for i, run in runs if run.startswith("pip install --no-deps --no-build-isolation .")]
    code_copies = [i for i, step in enumerate(steps) if step.cmd == "COPY" and step.value[0] in ("pipeline", "tasks")]
    assert lock_layer < min(code_copies) < code_layer  # a code change reinstalls no dependency
    assert "--no-deps" in dict(runs)[lock_layer] and "pip check" in dict(runs)[lock_layer]  # exactly the lock
    assert project.image.user not in (None, "root", "0")
    assert commands.index("USER") > max(i for i, _ in runs)
    assert project.image.entrypoint == ["/usr/local/bin/pipeline-entrypoint"]
    assert project.image.files["/usr/local/bin/pipeline-entrypoint"] == ENTRYPOINT
    assert os.access(ENTRYPOINT, os.X_OK)  # COPY keeps the mode: no --chmod needed
    for path in project.image.files.values():
        assert path.exists(), path


def test_worker_and_scheduler_healthchecks_start_no_python_process(project: Project) -> None:
    assert project.image.healthcheck is not None
    checks = {"image": " ".join(project.image.healthcheck)}
    for name in ("worker", "scheduler"):
        kind, command = project.services[name]["healthcheck"]["test"]
        assert kind == "CMD-SHELL", name
        checks[name] = command
    for name, command in checks.items():
        assert "python" not in command and "pipeline" not in command.split()[0], (name, command)
        assert project.image.env["PIPELINE_HEALTH_FILE"] in command, (name, command)


def _docker_ignored(path: str, patterns: list[str]) -> bool:
    """Whether docker leaves ``path`` out of the build context: the last matching pattern wins,
    a pattern that matches a parent folder matches everything in it, ``!`` re-includes."""
    ignored = False
    parts = path.split("/")
    for raw in patterns:
        exclude = not raw.startswith("!")
        pattern = raw.removeprefix("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*", "\0").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        regex = regex.replace("\0/", "(?:.*/)?").replace("\0", ".*")
        if any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            ignored = exclude
    return ignored


def test_the_build_context_holds_what_the_dockerfile_copies_and_no_secret_or_local_state(project: Project) -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for path in project.image.files.values():
        assert not _docker_ignored(str(path.relative_to(ROOT)), patterns), path
    for needed in ("pyproject.toml", "README.md", "deploy/requirements.lock", "pipeline/ledger/lua/record.lua",
                   "workers/runtime.py", "tasks/app.py"):  # fmt: skip
        assert not _docker_ignored(needed, patterns), needed
    for secret in (".env", ".git/config", ".venv/bin/python", "inputs/cat.jpg", "outputs/x/report.json",
                   "test-artifacts/cores.png", "pipeline/__pycache__/config.cpython-311.pyc", "tests/conftest.py",
                   "deploy/Dockerfile", "benchmarks/results/images.json"):  # fmt: skip
        assert _docker_ignored(secret, patterns), secret


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
