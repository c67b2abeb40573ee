"""The job a schedule submits: the words of `pipeline submit KIND ...`, checked and made portable.

A schedule keeps its job spec as the argument list of ``pipeline submit`` and
re-parses it with the very same parser at every fire (``request_from_args``),
so any job kind ``submit`` learns is schedulable with no code here. Two things
are settled once, at ``schedule add`` time:

* relative paths are made absolute against the directory ``schedule add`` ran
  in, because the scheduler process runs elsewhere;
* flags that only make sense at a terminal (``--wait``, ``--json``,
  ``--timeout``) are refused: nobody is there to watch a scheduled job.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from pipeline.cli.jobs import request_from_args, submit
from pipeline.config import Settings
from pipeline.core.errors import UsageError

REFUSED = {
    "--wait": "a scheduled job has nobody to wait for it; follow it with `pipeline result JOB --wait`",
    "--json": "a scheduled job prints nothing; read it with `pipeline result JOB --json`",
    "--timeout": "a scheduled job is never waited on, so it has no timeout",
}


def _absolute(word: str, cwd: Path, *, must_exist: bool) -> str:
    """``word`` made absolute if it is a local path (or glob); URLs and absolute paths are left alone."""
    if "://" in word or word.startswith("~") or os.path.isabs(word):
        return word
    candidate = os.path.normpath(os.path.join(cwd, word))
    if not must_exist or glob.has_magic(word) or os.path.lexists(candidate):
        return candidate
    return word  # not a path here: the parser reports it as the user typed it


def normalize(argv: Sequence[str], cwd: Path) -> tuple[str, ...]:
    """The job spec with relative paths made absolute; refuses terminal-only flags."""
    if not argv:
        raise UsageError("job spec: expected KIND and its arguments after `--`, e.g. `-- images ./photos`")
    kind, *rest = argv
    command = submit.commands.get(kind)
    if command is None:
        return tuple(argv)  # the parser names the valid kinds
    options: dict[str, click.Option] = {}
    for param in command.params:
        if isinstance(param, click.Option):
            options.update({opt: param for opt in (*param.opts, *param.secondary_opts)})
    out, words, only_positional = [kind], iter(rest), False
    for word in words:
        if only_positional or not word.startswith("-") or word == "-":
            out.append(_absolute(word, cwd, must_exist=True))
            continue
        if word == "--":
            only_positional = True
            out.append(word)
            continue
        flag, equals, value = word.partition("=")
        if flag in REFUSED:
            raise UsageError(f"job spec: {flag} makes no sense in a schedule: {REFUSED[flag]}")
        option = options.get(flag)
        if option is None or option.is_flag or option.count:
            out.append(word)  # a flag, or unknown: the parser judges it
            continue
        if not equals:
            following = next(words, None)
            if following is None:
                out.append(flag)  # the parser reports the missing value
                break
            value = following
        if isinstance(option.type, click.Path):
            value = _absolute(value, cwd, must_exist=False)
        out += [f"{flag}={value}"] if equals else [flag, value]
    return tuple(out)


def parse(argv: Sequence[str], settings: Settings) -> Any:
    """The validated request object for a stored job spec (what ``Producer.submit`` takes)."""
    return request_from_args(list(argv), settings)
