"""The scheduler's errors, hung under the one root in ``pipeline.core.errors``.

    PipelineError
    ├── UsageError
    │   └── ScheduleExists        `schedule add` with a name already in use (exit 2)
    ├── ScheduleNotFound          an unknown schedule name (exit 4, like an unknown job)
    └── ScheduleInvalid           a stored definition that cannot be read (listed as invalid, never fired)

A bad ``--cron``/``--every``/``--tz`` or job spec is a plain ``UsageError``.
"""

from __future__ import annotations

from pipeline.core.errors import PipelineError, UsageError


class ScheduleExists(UsageError):
    """A schedule with that name already exists."""

    def __init__(self, name: str) -> None:
        super().__init__(f"schedule {name!r} already exists (use --replace to change it, or pick another name)")
        self.name = name


class ScheduleNotFound(PipelineError):
    """No schedule with that name."""

    exit_code = 4

    def __init__(self, name: str) -> None:
        super().__init__(f"no schedule {name!r} (see `pipeline schedule list`)")
        self.name = name


class ScheduleInvalid(PipelineError):
    """A stored definition that does not load: written by another version, or by hand.

    Reported by `schedule list` (as ``invalid``, with the reason) and skipped by
    the schedulers; the other schedules keep firing.
    """

    exit_code = 2

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"schedule {name!r} cannot be read ({reason}); remove it and add it again")
        self.name, self.reason = name, reason
