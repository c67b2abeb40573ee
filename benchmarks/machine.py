"""What a result file says about the machine it was measured on: cores, CPU, versions, load."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        redis_version = subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        redis_version = "unknown"
    versions = {name: metadata.version(name) for name in ("pillow", "celery", "kombu", "redis")}
    return {
        "nproc": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        **{f"{k}_version": v for k, v in versions.items()},
        "redis_server": redis_version,
        "loadavg_start": os.getloadavg(),
        "sched_autogroup": _read("/proc/sys/kernel/sched_autogroup_enabled"),
    }


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None
