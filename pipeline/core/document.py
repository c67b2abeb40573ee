"""The job record and the ``result --json`` document built from it.

The document is the contract users script against: its keys only ever grow.
Each job kind adds its own sections to the same shape (``pipeline.kinds``).
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
    idle_s: float = 0.0  # time it stood finished before a `pipeline retry` (not part of its elapsed time)

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    def elapsed(self, now: float) -> float:
        end = self.finished_at if self.finished_at is not None else now
        return max(0.0, end - self.created_at - self.idle_s)


def build_document(meta: JobMeta, totals: Totals, now: float) -> dict[str, Any]:
    """The generic part of the ``result --json`` document; ``now`` stands in for a running job's end.

    ``items`` counts every item of the job, whatever its kind; each job kind adds
    its own sections (``pipeline.kinds``). Stage timings list the stages the job
    spent time in.
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
        "items": {"ok": totals.ok, "failed": totals.failed, "total": expected, "pending": max(0, expected - done)},
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
    }
    if meta.reason:
        doc["reason"] = meta.reason
    if meta.schedule:
        doc["schedule"] = meta.schedule
    if "ops" in meta.spec:
        doc["ops"] = meta.spec["ops"]
        doc["format"] = meta.spec.get("format")
    return doc
