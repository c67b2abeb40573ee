"""Several images in one pool call, for items too small to pay for a call each.

A pool call costs the worker's main process and the child a pickle, a pipe
round trip and a future each way: ~0.2 ms of CPU, about what reading,
transforming and writing a 16x16 PNG costs. ``render_chunk`` runs
``workers.child.render`` for a list of sources in one call and returns each
item's outcome as a value (``Rendered`` or the ``ItemError`` it raised), so a
bad item never hides its neighbours' results. A child that dies mid-chunk
fails the whole call, and the stage retries each of its items alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.core.errors import ItemError
from workers.child import Rendered, render

Outcome = Rendered | ItemError


def render_chunk(
    items: Sequence[tuple[str | bytes, str]], plan_json: dict[str, Any], out_dir: str, max_bytes: int
) -> list[Outcome]:
    """``items`` are (source, output name) pairs; one outcome per item, in order."""
    outcomes: list[Outcome] = []
    for source, name in items:
        try:
            outcomes.append(render(source, plan_json, out_dir, name, max_bytes))
        except ItemError as exc:
            outcomes.append(exc)
        except Exception as exc:  # a bug must cost one item, not the chunk
            outcomes.append(ItemError("transform_error", f"{type(exc).__name__}: {exc}"))
    return outcomes
