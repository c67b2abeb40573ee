"""`pipeline`: submit image, crawl and scrape jobs to Redis + Celery workers and watch them finish.

Every error a user can cause ends as one line on stderr and an exit code
(``pipeline.cli.exits``, listed by `pipeline --help` and the README).
"""

from __future__ import annotations

import importlib
import logging
import signal
import sys

import click

from pipeline.cli import exits
from pipeline.core.errors import PipelineError

log = logging.getLogger("pipeline.cli")
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# Every command: the module that defines it (in its COMMANDS) and its short help, so that
# `pipeline --help`, completion and "did you mean" import none of them: the command modules
# pull in Redis, Celery, aiohttp and rich (~0.5 s). tests/unit/test_cli_commands.py holds
# this table equal to the commands themselves.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "bench": (
        "pipeline.cli.bench",
        "Measure pipeline against raw baselines in the same run (not part of `make test`).",
    ),
    "cache": ("pipeline.cli.cache", "The result cache: live entries and bytes kept in Redis, against its cap."),
    "cancel": (
        "pipeline.cli.jobs",
        "Stop JOB_ID: queued batches are skipped, results so far are kept (state `cancelled`).",
    ),
    "demo": (
        "pipeline.cli.demo",
        "Run everything on generated data: an image job, a crawl and a scrape of the demo site.",
    ),
    "demo-site": ("pipeline.cli.demo_site", "Serve a deterministic generated website on 127.0.0.1 until Ctrl-C."),
    "down": (
        "pipeline.cli.cluster",
        "Stop the `pipeline up` running on this PIPELINE_HOME (e.g. one started with --detach).",
    ),
    "flower": (
        "pipeline.cli.monitor",
        "Run Flower on the pipeline's Redis, with a Cores page and per-core Prometheus series.",
    ),
    "jobs": ("pipeline.cli.jobs", "Recent jobs, newest first."),
    "result": (
        "pipeline.cli.jobs",
        "The report of JOB_ID (exit 0 succeeded or still running, 1 failed/cancelled, 5 --timeout passed).",
    ),
    "retry": (
        "pipeline.cli.jobs",
        "Re-run only the failed items of a finished job (e.g. after fixing the other side).",
    ),
    "schedule": ("pipeline.cli.schedule", "Recurring jobs: define them here, `pipeline scheduler` fires them."),
    "scheduler": (
        "pipeline.cli.schedule",
        "Run the scheduler service in the foreground: submit every schedule's jobs on time.",
    ),
    "status": ("pipeline.cli.jobs", "One line on where JOB_ID stands (exit 0 while queued/running or succeeded)."),
    "submit": ("pipeline.cli.jobs", "Submit a job (prints its id at once; --wait to follow it)."),
    "top": (
        "pipeline.cli.monitor",
        "Live view of the cluster: workers x cores with items/s per stage, queue depths, active jobs.",
    ),
    "up": (
        "pipeline.cli.cluster",
        "Run a private Redis (unless PIPELINE_REDIS_URL is set) and N workers until Ctrl-C.",
    ),
    "worker": ("pipeline.cli.cluster", "Run one worker in the foreground (what `up` and docker compose start)."),
    "workers": (
        "pipeline.cli.jobs",
        "Live workers: name, host, pid, pool sizes, queues, items done per process slot.",
    ),
}


class LazyGroup(click.Group):
    """A group whose commands are imported when one of them runs, not to list them.

    The pattern click's documentation describes for large CLIs: ``list_commands``
    and the help listing read ``LAZY_COMMANDS``; ``get_command`` imports the one
    module it needs.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | LAZY_COMMANDS.keys())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in LAZY_COMMANDS:
            module = importlib.import_module(LAZY_COMMANDS[cmd_name][0])
            command = next((c for c in module.COMMANDS if c.name == cmd_name), None)
            if command is not None:
                self.add_command(command)
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and self.get_command(ctx, args[0]) is None:
            for name in LAZY_COMMANDS:  # a typo: load them all, so click suggests among every command
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names))
        rows = []
        for name in names:  # a bare Command shortens the help text exactly as the real one would
            command = self.commands.get(name) or click.Command(name, help=LAZY_COMMANDS[name][1])
            rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS, epilog=exits.epilog())
@click.version_option(package_name="pipeline", prog_name="pipeline")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Distributed image, crawl and scrape jobs on Redis + Celery.

    \b
    Quick start:
      pipeline demo                       # everything, on generated images
      pipeline up --workers 2             # private Redis + workers (foreground)
      pipeline submit images ./photos --ops thumbnail:256 --format webp --wait
      pipeline submit crawl https://example.org/ --max-pages 500 --images --wait

    Configuration is by PIPELINE_* environment variables (see the README);
    PIPELINE_REDIS_URL selects a Redis, otherwise `pipeline up` starts one.
    Shell completion: eval "$(_PIPELINE_COMPLETE=bash_source pipeline)" (zsh_source, fish_source).
    """
    from pipeline.cli.context import CliContext
    from pipeline.config import Settings
    from pipeline.core.errors import ConfigError
    from pipeline.logs import setup_logging

    try:
        settings: Settings | None = Settings.load()
        problem = None
    except ConfigError as exc:  # reported by the first command that needs settings
        settings, problem = None, exc
    if settings is not None:
        # The CLI itself logs warnings only, unless a level was asked for.
        level = settings.log_level if settings.log_level.upper() != "INFO" else "WARNING"
        setup_logging(level, settings.log_format)
    ctx.obj = CliContext(settings, problem)
    ctx.call_on_close(ctx.obj.close)


def _error(message: str, label: str = "error") -> None:
    """One line on stderr, never wrapped, never parsed as markup."""
    click.echo(click.style(f"{label}:", fg="red", bold=True) + " " + " ".join(message.split()), err=True)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: run the CLI and turn every outcome into an exit code."""
    # Ctrl-C / `kill -INT` always interrupts, even when the shell that started us
    # ignored SIGINT (a background job of a script): Python keeps an inherited
    # SIG_IGN, and `result --wait` would then never stop on it.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = cli.main(args=argv, prog_name="pipeline", standalone_mode=False)
        code = result if isinstance(result, int) else exits.OK
    except click.exceptions.NoArgsIsHelpError as exc:  # bare `pipeline` or `pipeline submit`
        click.echo(exc.format_message())
        code = exits.OK
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        _error(f"{exc.format_message()}{hint}")
        code = exits.USAGE
    except click.ClickException as exc:
        _error(exc.format_message())
        code = exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        code = exits.INTERRUPTED
    except PipelineError as exc:
        _error(exc.message)
        code = exc.exit_code
    except Exception as exc:
        if _is_redis_error(exc):
            _error(f"broker unreachable: {exc}")
            code = exits.UNAVAILABLE
        else:
            log.debug("internal error", exc_info=True)
            _error(f"{type(exc).__name__}: {exc} (run with PIPELINE_LOG_LEVEL=DEBUG for details)", "internal error")
            code = exits.INTERNAL
    sys.exit(code)


def _is_redis_error(exc: Exception) -> bool:
    """A redis-py error, without importing redis for commands that never loaded it."""
    redis = sys.modules.get("redis")
    return redis is not None and isinstance(exc, redis.RedisError)
