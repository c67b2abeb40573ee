"""docker-compose.yml's services as local processes: a command or variable that does not work fails.

``tests/compose/stack.py`` runs each service's own entrypoint, command,
environment and healthcheck as a local process (how compose maps to
processes is described there). What the stack does when it works — node
names, shared jobs, schedules, Flower — is checked on a real Docker engine by
``tests/compose/test_compose_engine.py``; here, a broken command, variable or
Redis argument must fail the emulated `up`, in seconds and without an engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.compose.project import ENV_EXAMPLE, load_project
from tests.compose.stack import running


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
