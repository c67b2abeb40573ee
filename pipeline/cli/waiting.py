"""Following a job and showing its outcome: shared by `submit`, `result`, `retry` and `demo`.

Exit codes (``exits``): 0 succeeded, 1 failed or cancelled, 5 when ``--timeout``
passed while the job still runs; a running job shown without ``--wait`` is
not a failure (0). Ctrl-C while following says the job goes on, and how to
follow or stop it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from pipeline.cli import exits, render
from pipeline.cli.context import CliContext
from pipeline.core.document import FINAL_STATES
from pipeline.kinds import job_document

NO_WORKERS = "no live workers: the job waits until one starts (`pipeline up`, or `pipeline worker` on a machine that reaches this Redis)"  # noqa: E501


def emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
    sys.stdout.flush()


def exit_code_for(doc: dict[str, Any]) -> int:
    """0 succeeded (or still running: shown, not failed), 1 failed or cancelled."""
    return exits.JOB_FAILED if doc["state"] in ("failed", "cancelled") else exits.OK


def follow_hint(job_id: str) -> str:
    return f"follow it with `pipeline result {job_id} --wait`, stop it with `pipeline cancel {job_id}`"


def finish(
    ctx: CliContext, job_id: str, *, as_json: bool, timeout: float | None, show_failed: bool, quiet: bool = False
) -> int:
    """Wait with live bars (on a terminal), then print the report or the JSON document (unless quiet)."""
    bars = render.JobProgress(enabled=render.err.is_terminal)
    try:
        with bars:
            doc = ctx.wait(job_id, on_update=bars.update, timeout=timeout)
    except KeyboardInterrupt:
        render.err.print(f"interrupted: job {job_id} goes on; {follow_hint(job_id)}", markup=False, soft_wrap=True)
        return exits.INTERRUPTED
    code = exits.OK if quiet else show(ctx, doc, as_json=as_json, show_failed=show_failed)
    if doc["state"] not in FINAL_STATES:
        render.err.print(f"timed out after {timeout:g} s; job {job_id} is still running ({follow_hint(job_id)})",
                         markup=False, soft_wrap=True)  # fmt: skip
        return exits.TIMED_OUT
    return exit_code_for(doc) if quiet else code


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


def warn_if_no_workers(ctx: CliContext) -> None:
    if not ctx.ledger.workers():
        render.err.print(f"[yellow]warning:[/] {NO_WORKERS}", soft_wrap=True)


def after_submit(ctx: CliContext, job_id: str, *, wait: bool, as_json: bool, timeout: float | None) -> int:
    """What `submit KIND` does once the job exists: print its id (or document), or follow it."""
    warn_if_no_workers(ctx)
    if not wait:
        if as_json:
            emit_json(job_document(ctx.ledger, job_id))
        else:
            click.echo(job_id)
        return exits.OK
    if as_json:
        render.err.print(f"job {job_id} submitted")
    else:
        click.echo(job_id)
    return finish(ctx, job_id, as_json=as_json, timeout=timeout, show_failed=False)


def needs_wait(wait: bool, timeout: float | None) -> None:
    """``--timeout`` only makes sense while following a job: refused, not ignored."""
    if timeout is not None and not wait:
        raise click.UsageError("--timeout needs --wait (it limits how long --wait follows the job)")
