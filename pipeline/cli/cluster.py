"""Cluster commands: `up` (Redis + workers in the foreground) and `worker` (one worker)."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path
from types import FrameType

import click

from pipeline.cli import render
from pipeline.cli.context import CliContext
from pipeline.cluster import LocalCluster, worker_command
from pipeline.config import available_cores
from pipeline.redisconn import connect, redact
from pipeline.scheduler.process import SchedulerProcess, start_scheduler
from tasks.names import QUEUES


class _Stop(Exception):
    """Raised from the SIGTERM/SIGINT handler, so `up` unwinds the same way for both.

    SIGINT gets an explicit handler, not Python's KeyboardInterrupt: a process started
    with SIGINT ignored (a background job of a non-interactive shell, some CI runners)
    never gets KeyboardInterrupt, and would not stop on Ctrl-C or ``kill -INT``.
    """


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


@click.command()
@click.option("--workers", "count", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes to start.")  # fmt: skip
@click.option("--processes", type=click.IntRange(1, 256),
              help="Process-pool size per worker [default: available cores / workers].")  # fmt: skip
@click.option("--scheduler", "with_scheduler", is_flag=True,
              help="Also run one `pipeline scheduler` (fires recurring jobs; restarted if it dies).")  # fmt: skip
@click.pass_obj
def up(ctx: CliContext, count: int, processes: int | None, with_scheduler: bool) -> int:
    """Run a private Redis (unless PIPELINE_REDIS_URL is set) and N workers until Ctrl-C.

    Other `pipeline` commands in this environment find the private Redis by
    themselves (its URL is kept in $PIPELINE_HOME/redis.json). A worker that
    dies is restarted.
    """
    settings = ctx.settings
    settings.check_delivery_timeouts()
    log_dir = settings.state_path("logs")
    cluster = LocalCluster(settings, log_dir=log_dir)
    per_worker = processes or settings.processes or max(1, available_cores() // count)
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    scheduler: SchedulerProcess | None = None
    schedulers_started = 0  # a restarted scheduler gets a fresh name, like a restarted worker
    try:
        url = cluster.start_redis()
        private = cluster.redis_server is not None
        render.err.print(f"redis    {redact(url)} ({'private, started here' if private else 'configured'})")
        cluster.start_workers(count, per_worker)
        for worker in cluster.workers:
            render.err.print(
                f"worker   {worker.name} pid {worker.pid}, {render.counted(per_worker, 'process', 'processes')}"
            )
        if with_scheduler:
            schedulers_started += 1
            scheduler = _start_scheduler(url, log_dir, schedulers_started)
        render.err.print(f"logs     {log_dir}\n[bold]ready[/] - submit from another shell, Ctrl-C stops everything")
        while True:
            time.sleep(1.0)
            for index, worker in enumerate(cluster.workers):
                if not worker.alive():
                    render.err.print(
                        f"[yellow]worker {worker.name} exited ({worker.process.returncode}); restarting[/]"
                    )
                    cluster.workers.pop(index)
                    cluster.start_workers(1, per_worker)
                    break
            if scheduler is not None and not scheduler.alive():
                render.err.print(f"[yellow]scheduler exited ({scheduler.process.returncode}); restarting[/]")
                schedulers_started += 1
                scheduler = _start_scheduler(url, log_dir, schedulers_started)
    except (KeyboardInterrupt, _Stop):
        render.err.print("stopping: workers finish the batch in hand ...")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if scheduler is not None:
            scheduler.stop()  # first, so nothing is submitted while the workers stop
        cluster.stop()
    render.err.print("stopped")
    return 0


def _start_scheduler(url: str, log_dir: Path, index: int) -> SchedulerProcess:
    """Scheduler number ``index`` of this `up`, started and ready (its heartbeat is in Redis)."""
    name = f"scheduler{index}-{os.getpid()}@{socket.gethostname()}"
    scheduler = start_scheduler(url, name, log_path=log_dir / f"scheduler{index}.log")
    client = connect(url)
    try:
        scheduler.wait_ready(client)
    finally:
        client.close()
    render.err.print(f"scheduler {scheduler.name} pid {scheduler.pid}")
    return scheduler


@click.command()
@click.option("--name", help="Node name [default: worker-PID@HOST]; must be unique in the cluster.")
@click.option("--processes", type=click.IntRange(1, 256), help="Process-pool size [default: available cores].")
@click.option("--concurrency", type=click.IntRange(1, 512), help="Celery task threads [default: 2 x processes].")
@click.option("--queues", default=",".join(QUEUES), show_default=True, help="Queues to consume.")
@click.option("--loglevel", default="INFO", show_default=True)
@click.pass_obj
def worker(ctx: CliContext, name: str | None, processes: int | None, concurrency: int | None,
           queues: str, loglevel: str) -> int:  # fmt: skip
    """Run one worker in the foreground (what `up` and docker compose start).

    It replaces this process with `celery worker --pool threads --task-events`
    so signals reach Celery directly: SIGTERM is a warm shutdown.
    """
    ctx.settings.check_delivery_timeouts()  # one clear line now, not a traceback from Celery later
    env = dict(os.environ)
    env["PIPELINE_REDIS_URL"] = ctx.redis_url
    if processes:
        env["PIPELINE_PROCESSES"] = str(processes)
    node = name or f"worker-{os.getpid()}@{socket.gethostname()}"
    command = worker_command(node, concurrency=concurrency, queues=queues.split(","), loglevel=loglevel)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(command[0], command, env)


COMMANDS = (up, worker)
