"""Several images in one pool call, for items too small to pay for a call each.

A pool call costs the worker's main process and the child a pickle, a pipe
round trip and a future each way: ~0.2 ms of CPU, about what reading,
transforming and writing a 16x16 PNG costs. ``render_chunk`` runs
``workers.child.render`` for a list of sources in one call and returns each
item's outcome as a value (a ``Rendered`` tuple or the ``ItemError`` it raised),
so a bad item never hides its neighbours' results. A child that dies mid-chunk
fails the whole call, and the stage retries each of its items alone.

The child's pid comes back once per call, not once per item: the stage maps it
to the pool slot the metrics count the work under.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from pipeline.core.errors import ItemError
from workers.child import ChunkContext, Rendered, render

RenderOutcome = Rendered | ItemError


def render_chunk(
    items: Sequence[tuple[str | bytes, str]], plan_json: dict[str, Any], out_dir: str, max_bytes: int
) -> tuple[int, list[RenderOutcome]]:
    """``items`` are (source, output name) pairs; returns (this child's pid, one outcome per item, in order)."""
    outcomes: list[RenderOutcome] = []
    ctx = ChunkContext(plan_json, out_dir, max_bytes)
    try:
        for source, name in items:
            try:
                outcomes.append(render(source, name, ctx))
            except ItemError as exc:
                outcomes.append(exc)
            except Exception as exc:  # a bug must cost one item, not the chunk
                outcomes.append(ItemError("transform_error", f"{type(exc).__name__}: {exc}"))
    finally:
        ctx.close()
    return os.getpid(), outcomes
