"""Image jobs: every image among the user's sources, through the same op chain.

Items: ``i`` an image URL (fetched, then transformed), ``f`` a local file (the
transform stage reads it itself). A source listed twice is one item (its id is
a hash of the source).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from pipeline.config import Settings
from pipeline.core.aggregate import Totals
from pipeline.core.document import JobMeta
from pipeline.core.errors import SourceError, UsageError
from pipeline.core.hosts import web_url_problem
from pipeline.core.imaging import TransformPlan
from pipeline.core.ops import parse_format, parse_ops, plugin_refs
from pipeline.core.sources import Item, expand_sources
from pipeline.kinds.base import FETCH, TRANSFORM, JobKind, JobSpec, NewItem, Stage
from pipeline.ledger import Ledger
from pipeline.politeness import Limits

ADMIT_CHUNK = 500  # items registered per round trip at submit (memory stays flat: one chunk at a time)
TRANSFORM_STAGE = Stage("pipeline.images.transform", TRANSFORM, adaptive=True)
FETCH_STAGE = Stage("pipeline.images.fetch", FETCH, then=TRANSFORM_STAGE.task)


class ImageOptions(JobSpec):
    """What is done to each image: shared by every kind that makes images."""

    ops: str = Field("thumbnail:256", description="Comma-separated op chain NAME[:ARGS]")
    format: str = Field("jpeg", description="Output format")
    quality: int = Field(85, ge=1, le=100, description="Encoder quality")

    def plan(self, max_pixels: int) -> TransformPlan:
        return TransformPlan(parse_ops(self.ops), parse_format(self.format), self.quality, max_pixels)

    def plugins(self) -> list[tuple[str, str]]:
        """The chain's ``plugin:NAME`` ops (the workers are asked at submit whether they can import them)."""
        return [("op", ref) for ref in plugin_refs(parse_ops(self.ops))]


class ImagesSpec(ImageOptions):
    """`pipeline submit images SOURCES...`."""

    kind: Literal["images"] = "images"
    sources: tuple[str, ...] = Field(..., min_length=1, description="URLs, files, folders, globs, URL lists")

    def with_paths_from(self, cwd: Path) -> ImagesSpec:
        def absolute(source: str) -> str:
            if "://" in source or source.startswith("~") or Path(source).is_absolute():
                return source
            return str(cwd / source)

        moved = super().with_paths_from(cwd)
        return moved.model_copy(update={"sources": tuple(absolute(s) for s in self.sources)})


@dataclass(frozen=True)
class FetchGuard:
    """How a job's fetches are held back: which hosts are trusted past the SSRF check, and politeness.

    Image jobs have none: their URLs are the user's own, typed on purpose.
    """

    trusted_hosts: frozenset[str]
    allow_private: bool
    limits: Limits
    user_agent: str | None = None  # the job's own (--user-agent); None: the worker's PIPELINE_USER_AGENT


@dataclass(frozen=True)
class ImageWork:
    """What the image stages need of a job, whichever kind it is."""

    plan: TransformPlan
    output_dir: str
    label: str | None = None  # the ``kind`` of image results (a crawl's are "image"; an image job's need none)
    guard: FetchGuard | None = None

    @property
    def images(self) -> ImageWork:
        """What the image stages need (every job that makes images has ``images``)."""
        return self


def plan_json(plan: TransformPlan) -> dict[str, Any]:
    """The plan and its readable summary, as a job stores them (``ops`` and ``format`` show in reports)."""
    return {"plan": plan.to_json(), "ops": ",".join(str(op) for op in plan.ops), "format": plan.format}


class ImagesKind(JobKind[ImagesSpec, ImageWork]):
    name = "images"
    spec_type = ImagesSpec
    stages: ClassVar[Mapping[str, Stage]] = {"i": FETCH_STAGE, "f": TRANSFORM_STAGE}
    task_module = "tasks.images"
    noun = "images"
    retryable = True

    def resolve(self, spec: ImagesSpec, settings: Settings, output_dir: Path) -> ImageWork:
        plan = spec.plan(settings.max_pixels)
        for source in spec.sources:
            if "://" in source and (problem := web_url_problem(source)):
                raise UsageError(f"source {source!r}: {problem}")
        found = False
        for source in spec.sources:  # a typo in one argument refuses the job, nothing half-made
            found = next(expand_sources([source]), None) is not None or found
        if not found:
            raise SourceError("no images found in the given sources")
        return ImageWork(plan, str(output_dir))

    def job_json(self, job: ImageWork) -> dict[str, Any]:
        return {**plan_json(job.plan), "output_dir": job.output_dir}

    def load(self, raw: Mapping[str, Any]) -> ImageWork:
        return ImageWork(TransformPlan.from_json(raw["plan"]), str(raw["output_dir"]))

    def ledger_fields(self, spec: ImagesSpec, settings: Settings) -> dict[str, str | int]:
        # A batch size the user chose is kept; the default adapts to the measured cost per item.
        fixed = spec.batch_size is not None or "batch_size" in settings.model_fields_set
        fields: dict[str, str | int] = {"window": settings.job_window, "batch": spec.batch_size or settings.batch_size}
        if not fixed:
            fields["adaptive"] = 1
        return fields

    def chunks(self, spec: ImagesSpec) -> Iterator[Sequence[NewItem]]:
        items = expand_sources(spec.sources)
        first = next(items, None)
        if first is None:
            raise SourceError("no images found in the given sources")
        rest = itertools.chain([first], items)
        while chunk := list(itertools.islice(rest, ADMIT_CHUNK)):
            yield [_new(item) for item in chunk]

    def admit(self, ledger: Ledger, job_id: str, chunk: Sequence[NewItem]) -> int:
        return len(ledger.admit_items(job_id, [(item.id, item.source, item.code) for item in chunk]))

    def document(self, doc: dict[str, Any], meta: JobMeta, totals: Totals, ledger: Ledger) -> None:
        doc["images"] = dict(doc["items"])  # every item is an image (the key image jobs had first)


def _new(item: Item) -> NewItem:
    return NewItem(item.id, item.src, "i" if item.is_url else "f")


IMAGES = ImagesKind()
