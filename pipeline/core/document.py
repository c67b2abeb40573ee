"""The job record and the ``result --json`` document built from it.

The document is the contract users script against: its keys only ever grow.
Later job kinds (crawl) add their own sections to the same shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.core.aggregate import STAGES, Totals

FINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
STATES = ("queued", "running", "succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class JobMeta:
    """The job's own record: who, what, when, and its state."""

    job_id: str
    kind: str
    state: str
    created_at: float
    output_dir: str
    spec: Mapping[str, Any] = field(default_factory=dict)
    total: int | None = None
    submitted: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    reason: str | None = None
    report: str | None = None  # report.json path, once the reduce step has run
    schedule: str | None = None  # the schedule that submitted the job, if any

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    def elapsed(self, now: float) -> float:
        end = self.finished_at if self.finished_at is not None else now
        return max(0.0, end - self.created_at)


def _kind(totals: Totals, kind: str) -> dict[str, int]:
    return dict(totals.by_kind.get(kind, {"ok": 0, "failed": 0}))


def build_document(
    meta: JobMeta,
    totals: Totals,
    now: float,
    top_words: list[tuple[str, int]] | None = None,
    off_site_images: list[tuple[str, int]] | None = None,
) -> dict[str, Any]:
    """The ``result --json`` document; ``now`` stands in for a running job's end.

    A crawl's ``off_site_images`` are the hosts of images its scope left out
    (``[host, references]``, most first): they are not fetched, and a site that
    serves its images from a CDN needs ``--allow-domain`` for them.
    """
    done = totals.done
    elapsed = meta.elapsed(now)
    expected = meta.total if meta.total is not None else meta.submitted
    timings: dict[str, Any] = {}
    for stage in STAGES:
        seconds = totals.timings.get(stage, 0.0)
        timings[f"{stage}_s"] = round(seconds, 4)
        timings[f"{stage}_mean_ms"] = round(1000 * seconds / done, 3) if done else 0.0
    doc: dict[str, Any] = {
        "job_id": meta.job_id,
        "kind": meta.kind,
        "state": meta.state,
        "images": {"ok": totals.ok, "failed": totals.failed, "total": expected,
                   "pending": max(0, expected - done)},
        "failures": dict(sorted(totals.failures.items())),
        "bytes_in": totals.bytes_in,
        "bytes_out": totals.bytes_out,
        "elapsed_s": round(elapsed, 3),
        "items_per_s": round(done / elapsed, 2) if elapsed > 0 else 0.0,
        "output_dir": meta.output_dir,
        "report": meta.report,
        "outputs": {"formats": dict(sorted(totals.formats.items()))},
        "cache_hits": totals.cache_hits,  # outputs reused from the result cache, not transformed again
        "timings": timings,
        "ledger": {"duplicates": totals.duplicates, "unexpected": totals.unexpected},
        "created_at": meta.created_at,
        "finished_at": meta.finished_at,
    }  # fmt: skip
    if meta.kind == "crawl":
        pages = _kind(totals, "page")
        other = _kind(totals, "other")
        doc["pages"] = {**pages, "non_html": other["ok"], "links_capped": totals.capped,
                        "links_beyond_depth": totals.beyond_depth}  # fmt: skip
        doc["images"] = _kind(totals, "image")
        doc["items"] = {"ok": totals.ok, "failed": totals.failed, "total": expected, "pending": max(0, expected - done)}
        doc["top_words"] = [[word, count] for word, count in (top_words or [])]
        doc["off_site_images"] = [[host, count] for host, count in (off_site_images or [])]
        doc["seeds"] = meta.spec.get("seeds", [])
    if meta.reason:
        doc["reason"] = meta.reason
    if meta.schedule:
        doc["schedule"] = meta.schedule
    if "ops" in meta.spec:
        doc["ops"] = meta.spec["ops"]
        doc["format"] = meta.spec.get("format")
    return doc
