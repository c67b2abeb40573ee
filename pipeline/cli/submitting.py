"""What every `pipeline submit KIND` command shares: options from the spec, the check, the submit.

A command builds its kind's ``JobSpec`` (whose fields hold every default),
checks it before looking for Redis, then submits it. Under ``BuildOnly`` it
returns the spec instead, so `schedule add NAME ... -- KIND ARGS` is checked by
the very parser `submit` uses and stores the same spec.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from pipeline.cli import render
from pipeline.cli.context import CliContext
from pipeline.cli.waiting import after_submit, needs_wait
from pipeline.config import Settings
from pipeline.kinds import JobSpec, kind_named
from pipeline.output_dirs import check_output_dir


class BuildOnly(CliContext):
    """A context under which `submit KIND ...` validates and returns its spec instead of submitting."""


def run(ctx: CliContext, spec: JobSpec, *, wait: bool, as_json: bool, timeout: float | None) -> Any:
    """Check the spec (usage errors before looking for Redis), then submit it; under BuildOnly, hand it back."""
    if isinstance(ctx, BuildOnly):
        return spec
    needs_wait(wait, timeout)
    check(spec, ctx.settings)
    for warning in ctx.producer.check_plugins(spec):  # refuses (exit 2) a plugin no live worker can import
        render.err.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    job_id = ctx.producer.submit(spec, plugins_checked=True)
    return after_submit(ctx, job_id, wait=wait, as_json=as_json, timeout=timeout)


def check(spec: JobSpec, settings: Settings) -> None:
    """Raise the spec's usage errors (a bad op chain, a missing source, an output folder it may not use...).

    Resolving a spec has no side effect; the producer checks again, with the job's own folder.
    """
    output_dir = (spec.output_dir or settings.outputs / "new-job").expanduser().resolve()
    check_output_dir(output_dir, settings.output_root)
    kind_named(spec.kind).resolve(spec, settings, output_dir)


def follow_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--wait, --json, --timeout: the same for every kind."""
    for option in reversed((
        click.option("--wait", is_flag=True, help="Follow the job with progress bars and print the report."),
        click.option("--json", "as_json", is_flag=True, help="Print the result document as JSON on stdout."),
        click.option("--timeout", type=click.FloatRange(min=0),
                     help="With --wait: give up after this many seconds (exit 5)."),
    )):  # fmt: skip
        command = option(command)
    return command


def output_options(help_output: str, help_batch: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--output, --overwrite, --batch-size: where a job writes and how its items are batched."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed((
            click.option("--output", "output_dir", type=click.Path(file_okay=False, path_type=Path),
                         help=help_output),
            click.option("--overwrite", is_flag=True, help="Write into a folder another job wrote to (replacing "
                         "its outputs); without it such a folder is refused."),
            click.option("--batch-size", type=click.IntRange(1, 1000), help=help_batch),
        )):  # fmt: skip
            command = option(command)
        return command

    return decorate


def spec_option(spec: type[JobSpec], name: str, *flags: str, **kwargs: Any) -> Callable[..., Any]:
    """A click option whose default and help come from the spec's field (the only copy of the default)."""
    field = spec.model_fields[name]
    if field.default is not None and "default" not in kwargs:
        kwargs.setdefault("show_default", True)
        kwargs["default"] = field.default
    kwargs.setdefault("help", field.description)
    return click.option(*(flags or (f"--{name.replace('_', '-')}",)), name, **kwargs)
