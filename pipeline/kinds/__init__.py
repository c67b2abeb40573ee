"""The job kinds, and the generic code that asks them (see ``base`` for what a kind declares).

To add a kind: write its module here (a ``JobKind`` and its ``JobSpec``), list
it in ``KINDS``, and give it its stages in ``workers`` and ``tasks`` and its
`submit` command in ``pipeline.cli`` (README, "How to add a job kind").
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from pipeline.core.document import build_document
from pipeline.core.errors import UsageError
from pipeline.kinds.base import JobKind, JobSpec, NewItem, Stage
from pipeline.kinds.crawl import CRAWL
from pipeline.kinds.images import IMAGES
from pipeline.kinds.scrape import SCRAPE
from pipeline.ledger import Ledger

KINDS: Mapping[str, JobKind[Any, Any]] = {kind.name: kind for kind in (IMAGES, CRAWL, SCRAPE)}

__all__ = ["KINDS", "JobKind", "JobSpec", "NewItem", "Stage", "job_document", "kind_named", "load_job",
           "spec_from_json", "stages"]  # fmt: skip


def kind_named(name: str) -> JobKind[Any, Any]:
    kind = KINDS.get(name)
    if kind is None:
        raise UsageError(f"unknown job kind {name!r}; kinds: {', '.join(KINDS)}")
    return kind


def stages() -> dict[str, Stage]:
    """Every stage of every kind, by task name (what the Celery app routes and binds)."""
    return {stage.task: stage for kind in KINDS.values() for stage in kind.stages.values()}


def spec_from_json(raw: Mapping[str, Any]) -> JobSpec:
    """A stored spec (a schedule's job) back as its kind's spec; ``UsageError`` says why not."""
    kind = kind_named(str(raw.get("kind")))
    try:
        return kind.spec_type.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise UsageError(f"job spec: {where}: {first['msg']}") from None


@functools.lru_cache(maxsize=256)
def load_job(kind_name: str, raw: str) -> Any:
    """The job a worker reads back from its stored spec (cached: every batch of a job asks)."""
    return kind_named(kind_name).load(json.loads(raw))


def job_document(ledger: Ledger, job_id: str, now: float | None = None) -> dict[str, Any]:
    """The ``result --json`` document: the generic part, then the kind's own sections."""
    meta = ledger.meta(job_id)
    totals = ledger.totals(job_id)
    doc = build_document(meta, totals, time.time() if now is None else now)
    kind = KINDS.get(meta.kind)
    if kind is not None:
        kind.document(doc, meta, totals, ledger)
    return doc
