"""A schedule as stored in Redis: its name, timetable, job spec and policies.

Policies left unset (None) follow the scheduler's settings
(``PIPELINE_SCHEDULER_*``), so an operator can change the default for every
schedule that did not choose otherwise by restarting the schedulers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.config import Settings
from pipeline.core.errors import PipelineError, UsageError
from pipeline.kinds import JobSpec, spec_from_json
from pipeline.scheduler.errors import ScheduleInvalid
from pipeline.scheduler.triggers import TriggerSpec

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
Overlap = Literal["skip", "queue"]


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise UsageError(
            f"schedule name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class Policy:
    """What a scheduler does with a fire time, after defaults are applied."""

    overlap: Overlap
    misfire_grace_s: float | None  # None: no limit
    coalesce: bool


@dataclass(frozen=True)
class Schedule:
    name: str
    trigger: TriggerSpec
    job: JobSpec  # what `pipeline submit` would have built from the words after `--`, paths made absolute
    overlap: Overlap | None = None
    misfire_grace_s: float | None = None  # 0 = no limit
    coalesce: bool | None = None
    created_at: float = 0.0

    @property
    def kind(self) -> str:
        return self.job.kind

    def policy(self, settings: Settings) -> Policy:
        grace = settings.scheduler_misfire_grace_s if self.misfire_grace_s is None else self.misfire_grace_s
        return Policy(
            overlap=self.overlap or settings.scheduler_overlap,
            misfire_grace_s=grace or None,
            coalesce=settings.scheduler_coalesce if self.coalesce is None else self.coalesce,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "trigger": self.trigger.to_json(), "job": self.job.model_dump(mode="json"),
            "overlap": self.overlap, "misfire_grace_s": self.misfire_grace_s, "coalesce": self.coalesce,
            "created_at": self.created_at,
        }  # fmt: skip

    def dumps(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def loads(cls, text: str, name: str = "?") -> Schedule:
        """The stored definition; ``ScheduleInvalid`` (naming what is wrong) if it cannot be read."""
        try:
            doc = json.loads(text)
            if "job" not in doc:
                raise UsageError("no job spec (a definition stored by an older version)")
            return cls(
                name=doc["name"], trigger=TriggerSpec.from_json(doc["trigger"]), job=spec_from_json(doc["job"]),
                overlap=doc.get("overlap"), misfire_grace_s=doc.get("misfire_grace_s"),
                coalesce=doc.get("coalesce"), created_at=float(doc.get("created_at", 0.0)),
            )  # fmt: skip
        except PipelineError as exc:
            raise ScheduleInvalid(name, exc.message) from None
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ScheduleInvalid(name, f"{type(exc).__name__}: {exc}") from None
