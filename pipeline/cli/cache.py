"""``pipeline cache``: what the result cache holds, and emptying it."""

from __future__ import annotations

import json

import click

from pipeline.cli import render
from pipeline.cli.context import CliContext


@click.command()
@click.option("--clear", is_flag=True, help="Remove every cached output (the next identical items are transformed).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
@click.pass_obj
def cache(ctx: CliContext, clear: bool, as_json: bool) -> int:
    """The result cache: live entries and bytes kept in Redis, against its cap.

    Outputs are cached by content (source bytes + ops, format and quality) for
    PIPELINE_CACHE_TTL_S, all together under PIPELINE_CACHE_MAX_TOTAL_BYTES.
    """
    settings = ctx.settings
    removed = ctx.ledger.clear_cache() if clear else None
    stats = ctx.ledger.cache_stats(ttl_s=settings.cache_ttl_s, max_total_bytes=settings.cache_max_total_bytes)
    if as_json:
        click.echo(json.dumps({**stats.to_json(), **({"removed": removed} if clear else {})}))
        return 0
    if removed is not None:
        render.err.print(f"removed {render.counted(removed, 'cached output')}")
    cap = render.human_bytes(stats.max_total_bytes) if stats.max_total_bytes else "no cap"
    state = "off (PIPELINE_CACHE_TTL_S=0)" if stats.ttl_s <= 0 else f"each entry kept {_duration(stats.ttl_s)}"
    entries = render.counted(stats.entries, "entry", "entries")
    render.out.print(f"result cache: {entries}, {render.human_bytes(stats.bytes)} of {cap}; {state}")
    return 0


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if unit == 'day' and count > 1 else ''}"
    return f"{seconds} s"


COMMANDS = (cache,)
