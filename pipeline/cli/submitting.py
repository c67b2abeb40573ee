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

from pipeline.cli.context import CliContext
from pipeline.cli.waiting import after_submit
from pipeline.config import Settings
from pipeline.kinds import JobSpec, kind_named


class BuildOnly(CliContext):
    """A context under which `submit KIND ...` validates and returns its spec instead of submitting."""


def run(ctx: CliContext, spec: JobSpec, *, wait: bool, as_json: bool, timeout: float | None) -> Any:
    """Check the spec (usage errors before looking for Redis), then submit it; under BuildOnly, hand it back."""
    if isinstance(ctx, BuildOnly):
        return spec
    check(spec, ctx.settings)
    job_id = ctx.producer.submit(spec)
    return after_submit(ctx, job_id, wait=wait, as_json=as_json, timeout=timeout)


def check(spec: JobSpec, settings: Settings) -> None:
    """Raise the spec's usage errors (a bad op chain, a missing source...): resolving it has no side effect."""
    kind_named(spec.kind).resolve(spec, settings, Path.cwd())


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


def spec_option(spec: type[JobSpec], name: str, *flags: str, **kwargs: Any) -> Callable[..., Any]:
    """A click option whose default and help come from the spec's field (the only copy of the default)."""
    field = spec.model_fields[name]
    if field.default is not None and "default" not in kwargs:
        kwargs.setdefault("show_default", True)
        kwargs["default"] = field.default
    kwargs.setdefault("help", field.description)
    return click.option(*(flags or (f"--{name.replace('_', '-')}",)), name, **kwargs)
