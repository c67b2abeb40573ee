"""`pipeline`: submit image, crawl and scrape jobs to Redis + Celery workers and watch them finish.

Every error a user can cause ends as one line on stderr and an exit code
(``pipeline.cli.exits``, listed by `pipeline --help`).
"""

from __future__ import annotations

import logging
import sys

import click
import redis

from pipeline.cli import exits
from pipeline.cli.context import CliContext
from pipeline.config import Settings
from pipeline.core.errors import ConfigError, PipelineError
from pipeline.logs import setup_logging

log = logging.getLogger("pipeline.cli")
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS, epilog=exits.epilog())
@click.version_option(package_name="pipeline", prog_name="pipeline")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Distributed image jobs on Redis + Celery.

    \b
    Quick start:
      pipeline demo                       # everything, on generated images
      pipeline up --workers 2             # private Redis + workers (foreground)
      pipeline submit images ./photos --ops thumbnail:256 --format webp --wait

    Configuration is by PIPELINE_* environment variables (see the README);
    PIPELINE_REDIS_URL selects a Redis, otherwise `pipeline up` starts one.
    """
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


def _register() -> None:
    from pipeline.cli import bench, cache, cluster, demo, demo_site, jobs, monitor, schedule

    commands = (
        *jobs.COMMANDS,
        *cluster.COMMANDS,
        demo.demo,
        demo_site.demo_site,
        *monitor.COMMANDS,
        *schedule.COMMANDS,
        *cache.COMMANDS,
        bench.bench,
    )
    for command in commands:
        cli.add_command(command)


_register()


def _error(message: str, label: str = "error") -> None:
    """One line on stderr, never wrapped, never parsed as markup."""
    click.echo(click.style(f"{label}:", fg="red", bold=True) + " " + " ".join(message.split()), err=True)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: run the CLI and turn every outcome into an exit code."""
    try:
        result = cli.main(args=argv, prog_name="pipeline", standalone_mode=False)
        code = result if isinstance(result, int) else 0
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
    except redis.RedisError as exc:
        _error(f"broker unreachable: {exc}")
        code = exits.UNAVAILABLE
    except Exception as exc:
        log.debug("internal error", exc_info=True)
        _error(f"{type(exc).__name__}: {exc} (run with PIPELINE_LOG_LEVEL=DEBUG for details)", "internal error")
        code = exits.INTERNAL
    sys.exit(code)
