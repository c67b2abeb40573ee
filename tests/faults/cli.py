"""Running the `pipeline` console script against a test's Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PIPELINE = str(Path(sys.executable).parent / "pipeline")


def run_cli(*args: str, redis_url: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIPELINE_REDIS_URL": redis_url}
    return subprocess.run([PIPELINE, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)  # fmt: skip
