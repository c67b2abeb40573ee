"""Cluster commands: `up` (Redis + workers, in the foreground or detached), `down`, and `worker` (one worker)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from pathlib import Path
from types import FrameType

import click
import redis

from pipeline.children import spawn
from pipeline.cli import render
from pipeline.cli.context import CliContext
from pipeline.cluster import LocalCluster, worker_command
from pipeline.config import available_cores
from pipeline.core.errors import PipelineError
from pipeline.ledger.connection import connect, redact
from pipeline.localredis import STATE_FILE, read_state, read_state_pid
from pipeline.scheduler.process import SchedulerProcess, start_scheduler
from pipeline.uplock import AlreadyRunning, UpLock, running_up, up_state
from tasks.names import QUEUES


class _Stop(Exception):
    """Raised from the SIGTERM/SIGINT/SIGHUP handler, so `up` unwinds the same way for all three.

    SIGINT gets an explicit handler, not Python's KeyboardInterrupt: a process started
    with SIGINT ignored (a background job of a non-interactive shell, some CI runners)
    never gets KeyboardInterrupt, and would not stop on Ctrl-C or ``kill -INT``. SIGHUP
    (a closed terminal, a dropped ssh session) stops everything like Ctrl-C.
    """


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
REDIS_RESTARTS = 3  # a private Redis that dies more often than this within REDIS_RESTART_WINDOW_S stops `up`
REDIS_RESTART_WINDOW_S = 60.0


@click.command()
@click.option("--workers", "count", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes to start.")  # fmt: skip
@click.option("--processes", type=click.IntRange(1, 256),
              help="Process-pool size per worker [default: available cores / workers].")  # fmt: skip
@click.option("--scheduler", "with_scheduler", is_flag=True,
              help="Also run one `pipeline scheduler` (fires recurring jobs; restarted if it dies).")  # fmt: skip
@click.option("--detach", is_flag=True,
              help="Run in the background; return once ready. `pipeline down` stops it.")  # fmt: skip
@click.pass_obj
def up(ctx: CliContext, count: int, processes: int | None, with_scheduler: bool, detach: bool) -> int:
    """Run a private Redis (unless PIPELINE_REDIS_URL is set) and N workers until Ctrl-C.

    Other `pipeline` commands in this environment find the private Redis by
    themselves (its URL is kept in $PIPELINE_HOME/redis.json). A worker, the
    scheduler or the private Redis that dies is restarted. Ctrl-C, SIGTERM and
    SIGHUP stop everything; if `up` itself is killed, its children get SIGTERM
    too. One `up` per PIPELINE_HOME: a second one refuses, naming the first.
    """
    settings = ctx.settings
    settings.check_worker()
    log_dir = settings.state_path("logs")
    if detach:
        return _detach(settings.state_dir, log_dir, count, processes, with_scheduler)
    lock = UpLock(settings.state_dir)
    lock.acquire()
    cluster = LocalCluster(settings, log_dir=log_dir, die_with_parent=True)
    per_worker = processes or settings.processes or max(1, available_cores() // count)
    previous = {sig: signal.signal(sig, _raise_stop) for sig in STOP_SIGNALS}
    scheduler: SchedulerProcess | None = None
    schedulers_started = 0  # a restarted scheduler gets a fresh name, like a restarted worker
    redis_deaths: list[float] = []
    code = 0
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
        lock.write_state("ready", redis=redact(url), workers=[w.pid for w in cluster.workers])
        render.err.print(f"logs     {log_dir}\n[bold]ready[/] - submit from another shell, Ctrl-C stops everything")
        while True:
            time.sleep(1.0)
            if (exit_code := cluster.redis_exited()) is not None:
                redis_deaths = [t for t in redis_deaths if time.monotonic() - t < REDIS_RESTART_WINDOW_S]
                redis_deaths.append(time.monotonic())
                if len(redis_deaths) > REDIS_RESTARTS:
                    render.err.print(
                        f"[red]redis-server exited ({exit_code}) {len(redis_deaths)} times in "
                        f"{REDIS_RESTART_WINDOW_S:g} s; stopping (its log: {_redis_log(cluster)})[/]"
                    )
                    code = 1
                    break
                render.err.print(f"[yellow]redis-server exited ({exit_code}); restarting it on the same port "
                                 "(its append-only file keeps the jobs)[/]")  # fmt: skip
                cluster.restart_redis()
                render.err.print(f"redis    restarted, pid {cluster.redis_server.pid if cluster.redis_server else '?'}")
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
        try:
            if scheduler is not None:
                scheduler.stop()  # first, so nothing is submitted while the workers stop
            cluster.stop()
        finally:
            lock.release()
    render.err.print("stopped")
    return code


def _redis_log(cluster: LocalCluster) -> str:
    return str(cluster.redis_server.directory / "redis.log") if cluster.redis_server else "?"


def _detach(home: Path, log_dir: Path, count: int, processes: int | None, with_scheduler: bool,
            timeout: float = 120.0) -> int:  # fmt: skip
    """Start `pipeline up` in its own session, log to a file, and return once it is ready."""
    running = running_up(home)
    if running is not None:
        raise AlreadyRunning(f"`pipeline up` is already running on PIPELINE_HOME={home} (pid {running}); "
                             "stop it with `pipeline down`")  # fmt: skip
    argv = [sys.executable, "-m", "pipeline", "up", "--workers", str(count)]
    argv += ["--processes", str(processes)] if processes else []
    argv += ["--scheduler"] if with_scheduler else []
    log_path = log_dir / "up.log"
    child = spawn(argv, {}, log_path)  # its own session: no terminal, no SIGHUP when this shell goes
    deadline = time.monotonic() + timeout
    while (state := up_state(home)).get("pid") != child.pid or state.get("state") != "ready":
        if child.poll() is not None:
            tail = "\n  ".join(log_path.read_text(errors="replace").splitlines()[-8:])
            raise PipelineError(f"`pipeline up` exited ({child.returncode}) before it was ready:\n  {tail}")
        if time.monotonic() > deadline:
            raise PipelineError(f"`pipeline up` (pid {child.pid}) not ready after {timeout:g} s; see {log_path}")
        time.sleep(0.1)
    render.err.print(f"[bold]ready[/] - `pipeline up` runs in the background (pid {child.pid}); log {log_path}; "
                     "`pipeline down` stops it")  # fmt: skip
    click.echo(child.pid)
    return 0


@click.command()
@click.option("--timeout", default=60.0, show_default=True, type=click.FloatRange(1, 3600),
              help="Seconds to wait for it to stop (workers finish the batch in hand).")  # fmt: skip
@click.pass_obj
def down(ctx: CliContext, timeout: float) -> int:
    """Stop the `pipeline up` running on this PIPELINE_HOME (e.g. one started with --detach).

    It gets SIGTERM, as from Ctrl-C: the scheduler stops, workers finish the
    batch in hand, then its private Redis stops. Nothing running is not an error.
    """
    home = ctx.settings.state_dir
    pid = running_up(home)
    if pid is None:
        if (leftover := read_state_pid(home)) is not None:
            _shutdown_leftover_redis(home)
            render.err.print(f"no `pipeline up` was running; stopped its leftover private Redis (pid {leftover})")
        else:
            render.err.print(f"no `pipeline up` running on PIPELINE_HOME={home}")
        return 0
    if pid < 0:
        raise PipelineError(f"a `pipeline up` holds {home / 'up.lock'} but its pid is unknown; stop it by hand")
    os.kill(pid, signal.SIGTERM)
    render.err.print(f"stopping `pipeline up` (pid {pid}) ...")
    deadline = time.monotonic() + timeout
    while running_up(home) is not None:
        if time.monotonic() > deadline:
            raise PipelineError(f"`pipeline up` (pid {pid}) still running {timeout:g} s after SIGTERM")
        time.sleep(0.1)
    render.err.print("stopped")
    return 0


def _shutdown_leftover_redis(home: Path) -> None:
    """Ask a private Redis whose `up` is gone to shut down (authenticated; it saves its AOF)."""
    url = read_state(home)
    if url is None:
        return
    client = connect(url)
    try:
        client.shutdown()
    except redis.ConnectionError:  # it closes the connection as it goes
        pass
    finally:
        client.close()
    with contextlib.suppress(FileNotFoundError):
        (home / STATE_FILE).unlink()


def _start_scheduler(url: str, log_dir: Path, index: int) -> SchedulerProcess:
    """Scheduler number ``index`` of this `up`, started and ready (its heartbeat is in Redis)."""
    name = f"scheduler{index}-{os.getpid()}@{socket.gethostname()}"
    scheduler = start_scheduler(url, name, log_path=log_dir / f"scheduler{index}.log", die_with_parent=True)
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
    ctx.settings.check_worker()  # one clear line now, not a traceback from Celery later
    env = dict(os.environ)
    env["PIPELINE_REDIS_URL"] = ctx.redis_url
    if processes:
        env["PIPELINE_PROCESSES"] = str(processes)
    node = name or f"worker-{os.getpid()}@{socket.gethostname()}"
    command = worker_command(node, concurrency=concurrency, queues=queues.split(","), loglevel=loglevel)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(command[0], command, env)


COMMANDS = (up, down, worker)
