"""One image, start to finish, inside a pool child: read, transform (or take it from the cache), write.

Doing all three in the child keeps the image bytes out of the worker's main
process: no pipe transfer, no thread-pool hops, no GIL time for the worker.
Measured (benchmarks/, helper profile): the main process spent ~3 ms of CPU per
image on reads, writes and hand-offs, a fifth of the work; this removes most of it.

The result cache (``workers.result_cache``) is looked up here, after the read
and before the decode: hashing the bytes costs a fraction of a millisecond, a
decode and encode ten or more.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from pipeline.core.cache_key import CachedOutput
from pipeline.core.fetch import read_file
from pipeline.core.imaging import transform_image
from pipeline.outputs import OutputDir
from workers import result_cache
from workers.processes import crash_if_marked


@dataclass(frozen=True)
class Rendered:
    bytes_in: int
    bytes_out: int
    width: int
    height: int
    pid: int
    read_s: float
    transform_s: float  # on a cache hit: the lookup
    write_s: float
    cached: bool = False  # the output came from the result cache


def render(source: str | bytes, plan_json: dict[str, Any], out_dir: str, name: str, max_bytes: int) -> Rendered:
    """``source`` is a local path (read here) or bytes already fetched; raises only ItemError."""
    started = time.perf_counter()
    data = source if isinstance(source, bytes) else read_file(source, max_bytes)
    read_s = time.perf_counter() - started
    crash_if_marked(data)
    looked_up = time.perf_counter()
    cache = result_cache.current()
    key = cache.key(data, plan_json) if cache is not None else ""
    output = cache.get(key) if cache is not None else None
    cached = output is not None
    if output is None:
        made = transform_image(data, plan_json)
        output = CachedOutput(made.data, made.width, made.height)
        if cache is not None:
            cache.put(key, output)
    written = time.perf_counter()
    OutputDir(out_dir).write(name, output.data)
    return Rendered(
        bytes_in=len(data), bytes_out=len(output.data), width=output.width, height=output.height,
        pid=os.getpid(), read_s=read_s, transform_s=written - looked_up,
        write_s=time.perf_counter() - written, cached=cached,
    )  # fmt: skip
