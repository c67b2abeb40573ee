"""Job commands: status, result, jobs, cancel, retry, workers (`submit` is in ``submit``)."""

from __future__ import annotations

import click

from pipeline.cli import exits, render
from pipeline.cli.context import CliContext
from pipeline.cli.submit import submit
from pipeline.cli.waiting import emit_json, finish, needs_wait, show
from pipeline.core.document import FINAL_STATES
from pipeline.kinds import job_document
from pipeline.ledger.memory import memory_line


@click.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the result document as JSON.")
@click.pass_obj
def status(ctx: CliContext, job_id: str, as_json: bool) -> int:
    """One line on where JOB_ID stands (exit 0 while queued/running or succeeded)."""
    doc = job_document(ctx.ledger, job_id)
    if as_json:
        emit_json(doc)
    else:
        render.out.print(render.status_line(doc))
    return 1 if doc["state"] in ("failed", "cancelled") else 0


@click.command()
@click.argument("job_id")
@click.option("--wait", is_flag=True, help="Wait for the job to finish first.")
@click.option("--json", "as_json", is_flag=True, help="Print the result document as JSON.")
@click.option("--failed", "show_failed", is_flag=True, help="Also list every failed item with its reason.")
@click.option("--timeout", type=click.FloatRange(min=0), help="With --wait: give up after this many seconds (exit 5).")
@click.pass_obj
def result(ctx: CliContext, job_id: str, wait: bool, as_json: bool, show_failed: bool, timeout: float | None) -> int:
    """The report of JOB_ID (exit 0 succeeded or still running, 1 failed/cancelled, 5 --timeout passed)."""
    needs_wait(wait, timeout)
    if wait:
        return finish(ctx, job_id, as_json=as_json, timeout=timeout, show_failed=show_failed)
    doc = job_document(ctx.ledger, job_id)
    code = show(ctx, doc, as_json=as_json, show_failed=show_failed)
    if doc["state"] not in FINAL_STATES:
        render.err.print(f"job {job_id} is still {doc['state']}; `pipeline result {job_id} --wait` waits for it")
    return code


@click.command()
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of job documents.")
@click.pass_obj
def jobs(ctx: CliContext, limit: int, as_json: bool) -> int:
    """Recent jobs, newest first."""
    metas = ctx.ledger.recent_jobs(limit)
    if as_json:
        emit_json([job_document(ctx.ledger, meta.job_id) for meta in metas])
        return 0

    def counts(job_id: str) -> tuple[int, int]:
        totals = ctx.ledger.totals(job_id)
        return totals.ok, totals.failed

    render.jobs_table(metas, counts)
    return 0


@click.command()
@click.argument("job_id")
@click.pass_obj
def cancel(ctx: CliContext, job_id: str) -> int:
    """Stop JOB_ID: queued batches are skipped, results so far are kept (state `cancelled`)."""
    if ctx.producer.cancel(job_id):
        render.err.print(f"job {job_id} cancelled")
        return exits.OK
    state = ctx.ledger.meta(job_id).state
    if state == "cancelled":  # what was asked is so: not an error
        render.err.print(f"job {job_id} was already cancelled")
        return exits.OK
    render.err.print(f"job {job_id} had already ended ({state}); nothing to cancel")
    return exits.JOB_FAILED


@click.command()
@click.argument("job_id")
@click.option("--wait", is_flag=True, help="Follow the re-run and print the report.")
@click.option("--json", "as_json", is_flag=True, help="With --wait: print the result document as JSON.")
@click.option("--timeout", type=click.FloatRange(min=0), help="With --wait: give up after this many seconds (exit 5).")
@click.pass_obj
def retry(ctx: CliContext, job_id: str, wait: bool, as_json: bool, timeout: float | None) -> int:
    """Re-run only the failed items of a finished job (e.g. after fixing the other side).

    The aggregate stays exact: each retried item counts once, as ok if it now
    works, as failed again if not. Exit 1 if the job has no failed items.
    """
    needs_wait(wait, timeout)
    count = ctx.producer.retry(job_id)
    if not count:
        render.err.print(f"job {job_id} has no failed items; nothing to retry")
        return 1
    render.err.print(f"job {job_id}: retrying {count} failed item(s)")
    if not wait:
        click.echo(job_id)
        return 0
    return finish(ctx, job_id, as_json=as_json, timeout=timeout, show_failed=False)


@click.command()
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON list of workers, with items, busy time and items/s per slot and stage.")  # fmt: skip
@click.option("--local", is_flag=True, help="Only workers on this host; exit 1 if there are none (a health check).")
@click.pass_obj
def workers(ctx: CliContext, as_json: bool, local: bool) -> int:
    """Live workers: name, host, pid, pool sizes, queues, items done per process slot.

    Then Redis's memory against its maxmemory, and the fetched bytes held against their
    budget; a warning on stderr when Redis is nearly full (it then refuses writes).
    """
    import socket

    found = ctx.ledger.workers()
    if local:
        found = [w for w in found if w.get("host") == socket.gethostname()]
        if not found:
            render.err.print(f"no live worker on {socket.gethostname()}")
            return 1
    report = ctx.ledger.memory_report(ctx.settings.blob_budget_bytes)
    if as_json:
        emit_json(found)
    else:
        if found:
            render.workers_table(found)
        else:
            render.err.print("no live workers (start some with `pipeline up` or `pipeline worker`)")
        render.out.print(memory_line(report), highlight=False, soft_wrap=True, markup=False)
    if report["near_full"]:  # a full Redis refuses writes: workers wait, jobs stall
        render.err.print("[bold red]warning:[/] Redis is nearly full", soft_wrap=True)
    return 0


COMMANDS = (submit, status, result, jobs, cancel, retry, workers)
