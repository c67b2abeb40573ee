"""The health file a container healthcheck looks at (pipeline/health.py)."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path

import pytest

from pipeline import health


def test_touch_creates_the_file_and_its_folder_and_moves_its_time_forward(tmp_path: Path) -> None:
    path = tmp_path / "state" / "alive"
    health.touch(path)
    assert path.is_file()
    os.utime(path, (time.time() - 60, time.time() - 60))
    health.touch(path)
    assert time.time() - path.stat().st_mtime < 5


def test_the_image_healthcheck_passes_on_a_fresh_beat_and_fails_on_a_stale_or_missing_one(tmp_path: Path) -> None:
    path = tmp_path / "alive"
    check = f"find {path} -mmin -0.25 2>/dev/null | grep -q ."  # the command of deploy/Dockerfile's HEALTHCHECK
    assert subprocess.run(["sh", "-c", check], check=False).returncode == 1
    health.touch(path)
    assert subprocess.run(["sh", "-c", check], check=False).returncode == 0
    os.utime(path, (time.time() - 20, time.time() - 20))  # no beat for 20 s
    assert subprocess.run(["sh", "-c", check], check=False).returncode == 1
    health.remove(path)
    assert not path.exists()


def test_a_file_that_cannot_be_written_is_reported_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with caplog.at_level(logging.WARNING, logger="pipeline.health"):
        for _ in range(3):
            health.touch(blocked / "alive")  # a file where a folder should be
    assert len(caplog.records) == 1 and "unhealthy" in caplog.records[0].getMessage()
    health.touch(None)  # no health file configured: nothing to do
