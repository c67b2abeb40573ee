"""Following a job and showing its outcome: shared by `submit`, `result`, `retry` and `demo`."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from pipeline.cli import render
from pipeline.cli.context import CliContext
from pipeline.kinds import job_document

EXIT_TIMEOUT = 5


def emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
    sys.stdout.flush()


def exit_code_for(doc: dict[str, Any]) -> int:
    if doc["state"] == "succeeded":
        return 0
    if doc["state"] in ("failed", "cancelled"):
        return 1
    return EXIT_TIMEOUT  # still running: only reachable through --timeout


def finish(
    ctx: CliContext, job_id: str, *, as_json: bool, timeout: float | None, show_failed: bool, quiet: bool = False
) -> int:
    """Wait with live bars (on a terminal), then print the report or the JSON document (unless quiet)."""
    bars = render.JobProgress(enabled=render.err.is_terminal)
    with bars:
        doc = ctx.wait(job_id, on_update=bars.update, timeout=timeout)
    if quiet:
        return exit_code_for(doc)
    return show(ctx, doc, as_json=as_json, show_failed=show_failed)


def show(ctx: CliContext, doc: dict[str, Any], *, as_json: bool, show_failed: bool) -> int:
    failed_items = [r.to_json() for r in ctx.ledger.results(doc["job_id"], failed_only=True)] if show_failed else []
    if as_json:
        if show_failed:
            doc = {**doc, "failed_items": failed_items}
        emit_json(doc)
    else:
        render.report(doc)
        if failed_items:
            render.failures(failed_items)
        elif doc["items"]["failed"] and not show_failed:
            render.err.print(f"[dim]list failed items: pipeline result {doc['job_id']} --failed[/]")
    return exit_code_for(doc)


def after_submit(ctx: CliContext, job_id: str, *, wait: bool, as_json: bool, timeout: float | None) -> int:
    """What `submit KIND` does once the job exists: print its id (or document), or follow it."""
    if not wait:
        if as_json:
            emit_json(job_document(ctx.ledger, job_id))
        else:
            click.echo(job_id)
        return 0
    if as_json:
        render.err.print(f"job {job_id} submitted")
    else:
        click.echo(job_id)
    return finish(ctx, job_id, as_json=as_json, timeout=timeout, show_failed=False)
