"""Recurring jobs: `schedule add|list|pause|resume|remove|run-now` and the `scheduler` service.

Schedules live in Redis; any number of `pipeline scheduler` processes fire
them, each fire time exactly once. Changes made here reach running schedulers
within a second, without a restart. An unknown schedule name exits 4, like an
unknown job; a bad --cron/--every/--tz or job spec exits 2.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, cast

import click
from rich.table import Table

from pipeline.cli import render
from pipeline.cli.context import CliContext
from pipeline.cli.submit import spec_from_args
from pipeline.config import Settings
from pipeline.core.errors import JobNotFound, UsageError
from pipeline.kinds import JobSpec
from pipeline.ledger import Ledger
from pipeline.ledger.connection import connect, redact
from pipeline.logs import setup_logging
from pipeline.monitor.terminal import state_text
from pipeline.scheduler.claims import owner_id
from pipeline.scheduler.definition import Overlap, Schedule, check_name
from pipeline.scheduler.store import ScheduleState, ScheduleStore, now_ms
from pipeline.scheduler.triggers import from_ms, parse_trigger


@contextmanager
def _store(ctx: CliContext) -> Iterator[ScheduleStore]:
    client = connect(ctx.redis_url)
    try:
        yield ScheduleStore(client)
    finally:
        client.close()


def _when(ms: int | None, schedule: Schedule | None = None) -> str | None:
    """ISO 8601 in the schedule's zone (UTC if none)."""
    if ms is None:
        return None
    return from_ms(ms, schedule.trigger.zone if schedule else None).isoformat(timespec="seconds")


@click.group()
def schedule() -> None:
    """Recurring jobs: define them here, `pipeline scheduler` fires them.

    \b
    Examples:
      pipeline schedule add thumbs --every 15m -- images urls.txt --ops thumbnail:256
      pipeline schedule add nightly --cron "0 3 * * *" --tz Europe/Paris -- images ./photos
      pipeline schedule list
      pipeline schedule run-now thumbs
    """


@schedule.command("add")
@click.argument("name")
@click.argument("job_spec", nargs=-1, required=True, metavar="-- KIND ARGS...")
@click.option("--cron", metavar="'M H DOM MON DOW'",
              help="Crontab times in --tz (day-of-week 0 or 7 = Sunday).")  # fmt: skip
@click.option("--every", metavar="N[s|m|h|d]",
              help="A fixed interval: 90s, 15m, 6h, 1d; the first run is one interval from now.")  # fmt: skip
@click.option("--tz", default="UTC", show_default=True, help="IANA time zone the cron times are in.")
@click.option("--overlap", type=click.Choice(["skip", "queue"]),
              help="While the previous job still runs: skip the fire, or queue it until that job ends "
                   "[default: $PIPELINE_SCHEDULER_OVERLAP or skip].")  # fmt: skip
@click.option("--misfire-grace", type=click.FloatRange(min=0), metavar="SECONDS",
              help="How late a fire may still run (e.g. after downtime); 0 = no limit "
                   "[default: $PIPELINE_SCHEDULER_MISFIRE_GRACE_S or 0].")  # fmt: skip
@click.option("--coalesce/--no-coalesce", default=None,
              help="After downtime, run once (default) or once per missed fire time.")  # fmt: skip
@click.option("--replace", is_flag=True, help="Overwrite the schedule of that name (its history is kept).")
@click.pass_obj
def add(ctx: CliContext, name: str, job_spec: tuple[str, ...], cron: str | None, every: str | None, tz: str,
        overlap: str | None, misfire_grace: float | None, coalesce: bool | None, replace: bool) -> int:  # fmt: skip
    """Add schedule NAME that submits the job after `--` (the words of `pipeline submit`).

    The job spec is checked now by the `submit` parser and stored as that job
    kind's spec; relative paths are made absolute against this directory, since
    the scheduler runs elsewhere.
    """
    now = time.time()
    check_name(name)
    trigger = parse_trigger(cron, every, tz, now)
    job = schedule_spec(job_spec, ctx.settings, Path.cwd())  # usage errors before looking for Redis
    definition = Schedule(name, trigger, job, cast("Overlap | None", overlap), misfire_grace, coalesce, now)
    with _store(ctx) as store:
        store.add(definition, replace=replace, now=now)
        live = store.live_schedulers()
    render.err.print(f"schedule {name} {'saved' if replace else 'added'}: {trigger.describe()}, "
                     f"next run {_when(trigger.next_after(now_ms(now)), definition)}")  # fmt: skip
    if not live:
        render.err.print("[yellow]no scheduler is running: start one with `pipeline scheduler` "
                         "or `pipeline up --scheduler`[/]")  # fmt: skip
    return 0


REFUSED = {
    "--wait": "a scheduled job has nobody to wait for it; follow it with `pipeline result JOB --wait`",
    "--json": "a scheduled job prints nothing; read it with `pipeline result JOB --json`",
    "--timeout": "a scheduled job is never waited on, so it has no timeout",
}


def schedule_spec(words: Sequence[str], settings: Settings, cwd: Path) -> JobSpec:
    """The words after `--` as the kind's spec, checked; terminal-only flags refused, paths made absolute."""
    for word in words:
        flag = word.partition("=")[0]
        if flag == "--":
            break
        if flag in REFUSED:
            raise UsageError(f"job spec: {flag} makes no sense in a schedule: {REFUSED[flag]}")
    return spec_from_args(list(words), settings, cwd)


def _row(ledger: Ledger, definition: Schedule, state: ScheduleState, paused: bool) -> dict[str, Any]:
    """One schedule as `schedule list --json` shows it."""
    job_state = None
    if state.last_job:
        try:
            job_state = ledger.meta(state.last_job).state
        except JobNotFound:
            job_state = "submitting" if state.inflight == state.last_job else "expired"
    next_ms = None if paused else definition.trigger.next_after(max(state.cursor_ms, now_ms()))
    return {
        "name": definition.name, "trigger": definition.trigger.to_json(), "describe": definition.trigger.describe(),
        "job": definition.job.model_dump(mode="json"), "command": definition.job.describe(),
        "paused": paused, "next_run": _when(next_ms, definition),
        "last_run": _when(state.last_run_at_ms, definition), "last_fire": _when(state.last_fire_ms, definition),
        "last_job": state.last_job, "last_job_state": job_state, "last_outcome": state.last_outcome,
        "last_detail": state.last_detail, "waiting": state.waiting is not None, "counts": state.counts,
        "policy": {"overlap": definition.overlap, "misfire_grace_s": definition.misfire_grace_s,
                   "coalesce": definition.coalesce},
        "created_at": definition.created_at,
    }  # fmt: skip


@schedule.command("list")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON list (a null policy value follows the scheduler's default).")  # fmt: skip
@click.pass_obj
def list_schedules(ctx: CliContext, as_json: bool) -> int:
    """Schedules: trigger, next run, last run, last job and its state."""
    with _store(ctx) as store:
        ledger = Ledger(store.client)
        paused = store.paused()
        valid, invalid = store.read()
        rows = [_row(ledger, d, store.state(name), name in paused) for name, d in valid.items()]
        rows += [{"name": name, "invalid": problem.reason} for name, problem in invalid.items()]
        live = store.live_schedulers()
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return 0
    if not rows:
        render.err.print("no schedules (add one with `pipeline schedule add NAME --every 15m -- images ./photos`)")
    else:
        table = Table("schedule", "trigger", "next run", "last run", "last job", "state", "last outcome")
        for row in rows:
            if "invalid" in row:
                table.add_row(row["name"], f"[red]invalid[/]: {row['invalid']}", "-", "-", "-", "", "")
                continue
            state = state_text(row["last_job_state"]) if row["last_job_state"] else ""
            table.add_row(row["name"], row["describe"], "paused" if row["paused"] else str(row["next_run"] or "-"),
                          str(row["last_run"] or "-"), str(row["last_job"] or "-"), state,
                          str(row["last_outcome"] or ""))  # fmt: skip
        render.out.print(table)
    render.err.print(f"{len(live)} scheduler(s) running" if live else
                     "[yellow]no scheduler is running: start one with `pipeline scheduler`[/]")  # fmt: skip
    return 0


@schedule.command("pause")
@click.argument("name")
@click.pass_obj
def pause(ctx: CliContext, name: str) -> int:
    """Stop firing NAME until `resume` (running schedulers stop at once)."""
    with _store(ctx) as store:
        changed = store.pause(name)
    render.err.print(f"schedule {name} {'paused' if changed else 'was already paused'}")
    return 0


@schedule.command("resume")
@click.argument("name")
@click.pass_obj
def resume(ctx: CliContext, name: str) -> int:
    """Fire NAME again from its next fire time (times missed while paused are not caught up)."""
    with _store(ctx) as store:
        changed = store.resume(name)
    render.err.print(f"schedule {name} {'resumed' if changed else 'was not paused'}")
    return 0


@schedule.command("remove")
@click.argument("name")
@click.pass_obj
def remove(ctx: CliContext, name: str) -> int:
    """Delete NAME and its history (jobs it submitted are kept)."""
    with _store(ctx) as store:
        store.remove(name)
    render.err.print(f"schedule {name} removed")
    return 0


@schedule.command("run-now")
@click.argument("name")
@click.pass_obj
def run_now(ctx: CliContext, name: str) -> int:
    """Submit NAME's job once, now (prints the job id); its timetable is unchanged.

    The job is submitted from here, linked to the schedule, and becomes its last
    job: a fire while it runs follows the schedule's overlap policy.
    """
    with _store(ctx) as store:
        definition = store.get(name)
        job_id: str = ctx.producer.submit(definition.job, schedule=name)
        store.link_run_now(name, job_id)
    click.echo(job_id)
    return 0


@click.command()
@click.option("--name", help="Replica name [default: scheduler-PID@HOST]; unique among running schedulers.")
@click.pass_obj
def scheduler(ctx: CliContext, name: str | None) -> int:
    """Run the scheduler service in the foreground: submit every schedule's jobs on time.

    Run two or more (on any machines that share the Redis) for availability:
    each fire time is claimed in Redis, so each is submitted exactly once. A
    scheduler that was down catches up (by default: once). SIGTERM or Ctrl-C
    stops it after the submissions in hand.
    """
    from pipeline.scheduler.service import SchedulerService  # imports Celery: only for the service

    settings = ctx.settings
    setup_logging(settings.log_level, settings.log_format)
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
    owner, url, stop = owner_id(name), ctx.redis_url, threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def on_ready(active: int, paused: int) -> None:
        click.echo(
            f"scheduler {owner} ready: {render.counted(active, 'schedule')}, {paused} paused, redis {redact(url)}",
            err=True,
        )

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        SchedulerService(settings, url, owner).run(stop, on_ready)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(f"scheduler {owner} stopped", err=True)
    return 0


COMMANDS = (schedule, scheduler)
