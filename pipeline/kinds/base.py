"""What a job kind is: the one unit that knows a kind of job, end to end.

A kind (``images``, ``crawl``...) is one module that declares:

* its **spec**: a typed, validated request (a ``JobSpec``), the only copy of
  its defaults. The CLI, the scheduler and the producer all build this object;
  schedules store it as JSON.
* its **job**: the spec resolved at submit time (paths absolute, op chain
  parsed, scope computed) as the workers read it back from the ledger.
* its **items and stages**: how the spec becomes items (``chunks``/``admit``)
  and which stage (a task name and a queue) runs each item code.
* its **report**: the sections it adds to the result document, the rows it
  adds to the printed report, and the files it writes beside ``report.json``.

Everything else (the producer, the frontier, the ledger, the reduce step, the
CLI's report) is generic and asks the kind. Stage *code* lives in ``workers``
and its Celery binding in ``tasks``: a kind names its stages by task name,
never by import, so this layer stays below both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.config import Settings
from pipeline.core.aggregate import Totals
from pipeline.core.document import JobMeta
from pipeline.core.errors import UsageError
from pipeline.ledger import Ledger

# Queue roles: tasks.names maps each to its Celery queue.
FETCH, TRANSFORM, REDUCE = "fetch", "transform", "reduce"


@dataclass(frozen=True)
class Stage:
    """A stage of a kind: the task that runs it, its queue role, and how its batches are sized.

    ``adaptive``: batches follow the job's measured cost per item (``core.batching``).
    ``then``: the stage its output is handed to, in the same message flow (fetch -> transform).
    """

    task: str
    queue: str
    adaptive: bool = False
    then: str | None = None


@dataclass(frozen=True)
class NewItem:
    """An item to admit: its id, its source, its code (which stage runs it) and its depth."""

    id: str
    source: str
    code: str
    depth: int = 0


class JobSpec(BaseModel):
    """A request for a job, before submit: what the user asked for, with every default.

    Frozen and strict (unknown fields are refused), so a stored schedule that no
    longer validates is reported instead of guessed at.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    output_dir: Path | None = Field(None, description="Folder for the outputs [default: $PIPELINE_HOME/outputs/JOB]")
    batch_size: int | None = Field(None, ge=1, le=1000, description="Items per task message")
    overwrite: bool = Field(False, description="Write into a folder another job wrote to")

    @classmethod
    def default(cls, name: str) -> Any:
        """A field's default, for the CLI's options (so the spec stays the only copy)."""
        return cls.model_fields[name].default

    @classmethod
    def build(cls: type[SpecT], **fields: Any) -> SpecT:
        """Validate ``fields`` into a spec; a bad value is one ``UsageError`` naming the field."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise UsageError(f"{where.replace('_', '-')}: {first['msg']}") from None

    def with_paths_from(self: SpecT, cwd: Path) -> SpecT:
        """The spec with relative local paths made absolute against ``cwd`` (for a schedule, run elsewhere)."""
        if self.output_dir is None or self.output_dir.is_absolute():
            return self
        return self.model_copy(update={"output_dir": cwd / self.output_dir})

    def plugins(self) -> list[tuple[str, str]]:
        """The user's own stages this job runs, as (role, name) pairs ("op", "sepia"); none by default.

        The producer asks the live workers whether they can import each one before
        the job is admitted (``Producer.check_plugins``); a kind that runs plugins
        overrides this (image ops: ``plugin:NAME``; a scrape: its ``--extractor``).
        """
        return []

    def describe(self) -> str:
        """Command-line words for the fields that differ from their defaults (``schedule list``)."""
        words: list[str] = [self.kind]
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            if name == "kind" or value == info.default:
                continue
            if isinstance(value, tuple):
                words += [str(v) for v in value] if info.is_required() else [f"--{name}={v}" for v in value]
            elif isinstance(value, bool):
                words.append(f"--{name}" if value else f"--no-{name}")
            else:
                words.append(f"--{name}={value}")
        return " ".join(words).replace("_", "-")


SpecT = TypeVar("SpecT", bound=JobSpec)
JobT = TypeVar("JobT")


class JobKind(ABC, Generic[SpecT, JobT]):
    """The protocol every kind implements (see the module docstring)."""

    name: ClassVar[str]
    spec_type: ClassVar[type[JobSpec]]
    stages: ClassVar[Mapping[str, Stage]]  # item code -> the stage that runs it
    task_module: ClassVar[str]  # the tasks module binding its stages (imported by workers)
    noun: ClassVar[str] = "items"  # what the report calls its items
    retryable: ClassVar[bool] = False  # `pipeline retry` may re-run its failed items
    # Items keep arriving while the job runs (a crawl): images go out as they are found,
    # not held back to fill whole batches.
    streams_items: ClassVar[bool] = False

    # -- submit ----------------------------------------------------------------
    @abstractmethod
    def resolve(self, spec: SpecT, settings: Settings, output_dir: Path) -> JobT:
        """Validate the spec and resolve it into the job the workers read; raises ``UsageError``."""

    @abstractmethod
    def job_json(self, job: JobT) -> dict[str, Any]:
        """The job as stored in the ledger (``spec``), read back by ``load``."""

    @abstractmethod
    def load(self, raw: Mapping[str, Any]) -> JobT:
        """The job from its stored JSON."""

    def ledger_fields(self, spec: SpecT, settings: Settings) -> dict[str, str | int]:
        """Extra fields of the job's record (a window, limits...)."""
        return {}

    @abstractmethod
    def chunks(self, spec: SpecT) -> Iterator[Sequence[NewItem]]:
        """The job's first items, lazily, a chunk at a time (raises ``SourceError`` before any when none)."""

    @abstractmethod
    def admit(self, ledger: Ledger, job_id: str, chunk: Sequence[NewItem]) -> int:
        """Register a chunk of items in the ledger's frontier; returns how many were new."""

    # -- report -----------------------------------------------------------------
    def document(self, doc: dict[str, Any], meta: JobMeta, totals: Totals, ledger: Ledger) -> None:
        """Add the kind's own sections to the result document (keys only ever grow)."""

    def report_rows(self, doc: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Rows (label, rich text) the printed report shows after the state."""
        return []

    def finish(self, ledger: Ledger, job_id: str, output_root: Path | None) -> None:
        """Work the reduce step does once the job ended, before its report (a scrape merges its feed)."""

    def exports(self, ledger: Ledger, job_id: str) -> dict[str, Iterable[str]]:
        """Files (name -> lines, streamed) the reduce step writes beside ``report.json`` once the job ended."""
        return {}
