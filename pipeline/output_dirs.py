"""Where a job may write: the rules for an output folder, checked at submit and again by the workers.

* Never a system folder (``/``, ``/etc``, ``/usr``...: a worker may run as root).
* Inside ``PIPELINE_OUTPUT_ROOT`` when it is set. The producer refuses others at
  submit, and every worker enforces its own setting before it writes anything:
  a message is not trusted to choose where a worker writes (on a shared volume,
  set the same root on every worker).
* Writable (or creatable) on the machine that submits.
* Not another job's: a folder holding another job's ``report.json``, or one that
  another job still in the ledger writes to, is refused unless ``--overwrite``
  (the fires of one schedule may share their folder).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipeline.core.errors import UsageError

SYSTEM_DIRS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run", "/sbin",
               "/sys", "/usr", "/var/lib", "/var/log", "/var/run")  # fmt: skip


def is_inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def refusal(path: Path, root: Path | None) -> str | None:
    """Why a worker must not write under ``path`` (absolute, resolved), or None when it may."""
    if path == Path(path.anchor) or any(is_inside(path, Path(d)) for d in SYSTEM_DIRS):
        return f"{path} is a system folder"
    if root is not None and not is_inside(path, root.expanduser().resolve()):
        return f"{path} is outside PIPELINE_OUTPUT_ROOT ({root})"
    return None


def check_writable(path: Path) -> None:
    """The folder, or its nearest existing parent, must be a writable directory here."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"--output {path}: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"--output {path}: {probe} is not writable")


def reported_job(path: Path) -> tuple[str, str | None] | None:
    """The job (and its schedule) whose ``report.json`` is in the folder, if any: a folder a job wrote."""
    try:
        report = json.loads((path / "report.json").read_text())
        return str(report["job_id"]), report.get("schedule")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def check_not_another_jobs(path: Path, job_id: str, schedule: str | None, owner: str | None) -> None:
    """Refuse a folder another job wrote (its report.json) or writes (``owner``, from the ledger)."""
    reported = reported_job(path)
    if reported is not None and reported[0] != job_id and (schedule is None or reported[1] != schedule):
        owner = owner or reported[0]
    if owner is not None:
        raise UsageError(f"--output {path}: job {owner} writes its outputs there; choose another folder, "
                         "or add --overwrite to replace them")  # fmt: skip


def check_output_dir(path: Path, root: Path | None) -> None:
    """Submit-time checks of an output folder (absolute, resolved); ``UsageError`` says what to do."""
    problem = refusal(path, root)
    if problem:
        raise UsageError(f"--output {path}: {problem}; choose a folder of your own")
    check_writable(path)
