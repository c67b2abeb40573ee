"""Monitoring commands: `flower` (Flower with per-core throughput) and `top` (a live terminal view)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from pipeline.cli import render
from pipeline.cli.context import CliContext
from pipeline.core.errors import BrokerUnavailable
from pipeline.ledger.connection import redact


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("flower_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def flower(ctx: CliContext, flower_args: tuple[str, ...]) -> int:
    """Run Flower on the pipeline's Redis, with a Cores page and per-core Prometheus series.

    \b
    It listens on PIPELINE_FLOWER_ADDRESS:PIPELINE_FLOWER_PORT (127.0.0.1:5555)
    with basic auth PIPELINE_FLOWER_USER (admin) / PIPELINE_FLOWER_PASSWORD;
    with no password set, a random one is generated and printed once.
    \b
    Pages: /cores (items/s per worker core and stage, live), /api/cores (the
    same as JSON), /metrics (Flower's series plus pipeline_core_*), and all of
    Flower's own. Every one needs the credentials, except /healthcheck.
    \b
    Flower's own options pass through as --name=value, e.g.
      pipeline flower --port=5556 --url-prefix=flower --persistent=True
    """
    from pipeline.monitor import server

    server.check_args(flower_args)  # usage errors before looking for Redis
    url = ctx.redis_url
    ctx.ledger.ping()  # one clear line now, rather than Flower retrying in its log

    def announce(ready: server.Ready) -> None:
        if ready.url:
            say(f"flower   {ready.url}/  (per-core view: {ready.url}/cores, Prometheus: {ready.url}/metrics)")
        else:
            say(f"flower   unix socket {ready.unix_socket}  (pages /cores, /api/cores, /metrics)")
        if ready.generated_password:
            say(f"login    {ready.user} / {ready.generated_password}  "
                "(generated for this run; set PIPELINE_FLOWER_PASSWORD to choose one)")  # fmt: skip
        elif ready.user:
            say(f"login    {ready.user} / PIPELINE_FLOWER_PASSWORD")
        say(f"broker   {redact(url)}")
        render.err.print("[bold]ready[/] - Ctrl-C stops Flower")

    server.run(ctx.settings, url, flower_args, announce)
    render.err.print("stopped")
    return 0


@click.command()
@click.option("--once", is_flag=True, help="Show one snapshot and exit.")
@click.option("--json", "as_json", is_flag=True,
              help="JSON on stdout: one document (with --once), else one line per refresh.")  # fmt: skip
@click.option(
    "--interval", default=1.0, show_default=True, type=click.FloatRange(0.2, 60), help="Seconds between refreshes."
)
@click.pass_obj
def top(ctx: CliContext, once: bool, as_json: bool, interval: float) -> int:
    """Live view of the cluster: workers x cores with items/s per stage, queue depths, active jobs.

    Reads the workers' heartbeat records, the queues and the job ledger in Redis
    (no Flower needed); figures refresh as workers report (every 2 s).
    """
    from pipeline.monitor import terminal
    from pipeline.monitor.top import snapshot

    snap = snapshot(ctx.ledger, ctx.settings.blob_budget_bytes)
    if as_json:
        _emit(snap, pretty=once)
    elif once:
        render.out.print(terminal.view(snap))
    if once:
        return 0
    try:
        if as_json:
            while True:
                time.sleep(interval)
                _emit(snapshot(ctx.ledger, ctx.settings.blob_budget_bytes), pretty=False)
        from rich.live import Live

        with Live(terminal.view(snap), console=render.err, refresh_per_second=4) as live:
            while True:
                time.sleep(interval)
                problem = None
                try:
                    snap = snapshot(ctx.ledger, ctx.settings.blob_budget_bytes)
                except BrokerUnavailable as exc:  # keep the last figures on screen and keep trying
                    problem = exc.message
                live.update(terminal.view(snap, problem))
    except KeyboardInterrupt:
        return 0


def say(line: str) -> None:
    """One line on stderr, never read as markup (names and passwords may contain brackets)."""
    render.err.print(line, markup=False)


def _emit(doc: Any, *, pretty: bool) -> None:
    sys.stdout.write(json.dumps(doc, indent=2 if pretty else None, default=str) + "\n")
    sys.stdout.flush()


COMMANDS = (flower, top)
