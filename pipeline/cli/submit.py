"""`pipeline submit KIND ...`: the group, with one command per job kind (``submit_KIND`` modules)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pipeline.cli import submit_crawl, submit_images, submit_scrape
from pipeline.cli.submitting import BuildOnly, check
from pipeline.config import Settings
from pipeline.core.errors import UsageError
from pipeline.kinds import JobSpec

SPEC_HINT = "expected KIND and its arguments, e.g. `images ./photos --ops thumbnail:256`"
KIND_COMMANDS = (submit_images.command, submit_crawl.command, submit_scrape.command)


@click.group()
def submit() -> None:
    """Submit a job (prints its id at once; --wait to follow it)."""


for _command in KIND_COMMANDS:
    submit.add_command(_command)


def spec_from_args(argv: list[str], settings: Settings, cwd: Path | None = None) -> JobSpec:
    """Parse the words of `pipeline submit KIND ...` into a checked spec (nothing is sent).

    Relative paths are made absolute against ``cwd`` first, if given. Raises
    ``UsageError`` with click's message for words the parser refuses.
    """
    if not argv:
        raise UsageError(f"job spec: {SPEC_HINT}")
    main: Any = submit.main  # typed NoReturn: with standalone_mode=False it returns the command's value
    try:
        built = main(args=list(argv), prog_name="pipeline submit", standalone_mode=False, obj=BuildOnly(settings))
    except click.UsageError as exc:
        raise UsageError(f"job spec: {exc.format_message()}") from None
    if not isinstance(built, JobSpec):
        raise UsageError(f"job spec: {SPEC_HINT}")
    spec = built if cwd is None else built.with_paths_from(cwd)
    check(spec, settings)
    return spec
