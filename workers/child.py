"""One image, start to finish, inside a pool child: read, transform (or take it from the cache), write.

Doing all three in the child keeps the image bytes out of the worker's main
process: no pipe transfer, no thread-pool hops, no GIL time for the worker.
Measured (benchmarks/, helper profile): the main process spent ~3 ms of CPU per
image on reads, writes and hand-offs, a fifth of the work; this removes most of it.

The result cache (``workers.result_cache``) is looked up here, after the read
and before the decode: hashing the bytes costs a fraction of a millisecond, a
decode and encode ten or more.

What is the same for every item of a pool call (the open output folder, the
cache and the plan's cache digest) is a ``ChunkContext``, made once per call:
for a 16x16 PNG (~150 us of work) a folder lookup, an object or a JSON digest
per item is a measurable share.

Plugin ops (``plugin:NAME``) are loaded here, in the child, through
``pipeline.plugins.load`` (cached per process: once per child, not per item).
A plan with a plugin op bypasses the result cache: the cache key knows the op's
name and arguments, not the version of the code behind them, so an upgraded
plugin would be served its predecessor's outputs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pipeline.core.cache_key import CachedOutput, cache_digest, plan_digest
from pipeline.core.fetch import read_file
from pipeline.core.imaging import transform_image
from pipeline.core.ops import PLUGIN
from pipeline.ledger.keys import cache_entry_key
from pipeline.outputs import OpenFolder, OutputDir
from pipeline.plugins import load
from workers import result_cache
from workers.processes import crash_if_marked

# One rendered item: (bytes_in, bytes_out, width, height, read_s, transform_s, write_s, cached).
# A plain tuple: it is pickled back to the worker's main process, where a tuple
# costs nothing to rebuild and a dataclass costs a Python call per item.
# transform_s is the cache lookup on a hit; cached says the output came from the cache.
Rendered = tuple[int, int, int, int, float, float, float, bool]


class ChunkContext:
    """What a pool call's items share; ``close`` it when the call ends."""

    def __init__(self, plan_json: dict[str, Any], out_dir: str, max_bytes: int) -> None:
        self.plan_json, self.max_bytes = plan_json, max_bytes
        self.out = OutputDir(out_dir)
        self.folder: OpenFolder | None = None  # opened at the first write: a failure is that item's
        self.cache = None if _uses_plugins(plan_json) else result_cache.current()
        self.digest = plan_digest(plan_json) if self.cache is not None else ""

    def write(self, name: str, data: bytes) -> None:
        if self.folder is None:
            self.folder = self.out.open()
        self.folder.write(name, data)

    def close(self) -> None:
        if self.folder is not None:
            self.folder.close()


def _uses_plugins(plan_json: dict[str, Any]) -> bool:
    return any(op and op[0] == PLUGIN for op in plan_json.get("ops", ()))


def plugin_op(ref: str) -> Callable[..., Any]:
    """The function of a ``plugin:NAME`` op (raises ``PluginError`` when this process cannot import it)."""
    return load("op", ref)


def render(source: str | bytes, name: str, ctx: ChunkContext) -> Rendered:
    """``source`` is a local path (read here) or bytes already fetched; raises only ItemError."""
    started = time.perf_counter()
    data = source if isinstance(source, bytes) else read_file(source, ctx.max_bytes)
    read_s = time.perf_counter() - started
    crash_if_marked(data)
    looked_up = time.perf_counter()
    cache = ctx.cache
    hit = None
    if cache is not None:
        key = cache_entry_key(cache_digest(data, ctx.digest))
        hit = cache.get(key)
    if hit is None:
        made = transform_image(data, ctx.plan_json, plugin_op)
        output, width, height = made.data, made.width, made.height
        if cache is not None:
            cache.put(key, CachedOutput(output, width, height))
    else:
        output, width, height = hit.data, hit.width, hit.height
    written = time.perf_counter()
    ctx.write(name, output)
    done = time.perf_counter()
    return len(data), len(output), width, height, read_s, written - looked_up, done - written, hit is not None
