"""One image, start to finish, inside a pool child: read, transform, write.

Doing all three in the child keeps the image bytes out of the worker's main
process: no pipe transfer, no thread-pool hops, no GIL time for the worker.
Measured (benchmarks/, helper profile): the main process spent ~3 ms of CPU per
image on reads, writes and hand-offs, a fifth of the work; this removes most of it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from pipeline.core.fetch import read_file
from pipeline.core.imaging import transform_image
from pipeline.outputs import OutputDir
from workers.processes import crash_if_marked


@dataclass(frozen=True)
class Rendered:
    bytes_in: int
    bytes_out: int
    width: int
    height: int
    pid: int
    read_s: float
    transform_s: float
    write_s: float


def render(source: str | bytes, plan_json: dict[str, Any], out_dir: str, name: str, max_bytes: int) -> Rendered:
    """``source`` is a local path (read here) or bytes already fetched; raises only ItemError."""
    started = time.perf_counter()
    data = source if isinstance(source, bytes) else read_file(source, max_bytes)
    read_s = time.perf_counter() - started
    crash_if_marked(data)
    output = transform_image(data, plan_json)
    written = time.perf_counter()
    OutputDir(out_dir).write(name, output.data)
    return Rendered(
        bytes_in=len(data), bytes_out=len(output.data), width=output.width, height=output.height,
        pid=os.getpid(), read_s=read_s, transform_s=output.seconds, write_s=time.perf_counter() - written,
    )  # fmt: skip
