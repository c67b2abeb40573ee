"""Configuration errors as a user meets them: exit 3 and one line on stderr, whatever the command."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.test_cli import describe, run_cli, stderr_lines


def _env(tmp_path: Path, **variables: str) -> dict[str, str]:
    child = {k: v for k, v in os.environ.items() if k != "PIPELINE_REDIS_URL"}
    child["PIPELINE_HOME"] = str(tmp_path / "home")
    child.update(variables)
    return child


@pytest.mark.parametrize(
    ("variables", "command", "named"),
    [
        ({"PIPELINE_REDIS_URL": "notaurl"}, ("jobs",), "PIPELINE_REDIS_URL"),
        ({"PIPELINE_REDIS_URL": "redis://:hunter2@db:port/0"}, ("status", "x"), "PIPELINE_REDIS_URL"),
        ({"PIPELINE_LOG_LEVEL": "bogus"}, ("jobs",), "PIPELINE_LOG_LEVEL"),
        ({"PIPELINE_HOME": "/proc/nope"}, ("up",), "PIPELINE_HOME"),
        ({"PIPELINE_HOME": "/proc/nope"}, ("demo", "--count", "10"), "PIPELINE_HOME"),
    ],
)
def test_a_configuration_error_exits_3_with_one_line_naming_the_variable(
    tmp_path: Path, variables: dict[str, str], command: tuple[str, ...], named: str
) -> None:
    proc = run_cli(*command, env=_env(tmp_path, **variables))
    assert proc.returncode == 3, describe(proc)
    lines = stderr_lines(proc)
    assert len(lines) == 1, describe(proc)
    assert named in lines[0]
    assert "internal error" not in proc.stderr
    assert "hunter2" not in proc.stderr + proc.stdout


def test_help_works_with_a_bad_configuration(tmp_path: Path) -> None:
    proc = run_cli("jobs", "--help", env=_env(tmp_path, PIPELINE_REDIS_URL="notaurl"))
    assert proc.returncode == 0, describe(proc)
