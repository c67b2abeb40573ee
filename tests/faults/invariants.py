"""The invariant every fault scenario ends with, and the evidence it leaves.

finished + failed = submitted; no item counted twice in the aggregate; no
unexpected item; the job final before its deadline. Duplicate *executions* are
allowed (``ledger.duplicates`` counts them); duplicates in the aggregate are not.

The evidence (the document, the counts, what was checked and the verdict) is
written to a JSON file under the test's ``tmp_path``, outside the Redis under
test, before anything is asserted, so a failing run still leaves it behind.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.document import FINAL_STATES
from pipeline.core.sources import expand_sources
from pipeline.kinds import job_document
from pipeline.ledger import Ledger
from pipeline.ledger.keys import job_key


def expected_ids(sources: Iterable[str]) -> set[str]:
    """The item ids a submission of ``sources`` registers (what "submitted" means)."""
    return {item.id for item in expand_sources(list(sources))}


@dataclass
class Verdict:
    job_id: str
    doc: dict[str, Any]
    elapsed_s: float
    problems: list[str] = field(default_factory=list)
    evidence: Path | None = None

    @property
    def ok_ids(self) -> int:
        return int(self.doc["images"]["ok"])


def wait_final(ledger: Ledger, job_id: str, deadline_s: float) -> tuple[dict[str, Any], float]:
    """Poll the job's done-record until final or the deadline; returns (document, seconds waited)."""
    started = time.monotonic()
    while True:
        doc = job_document(ledger, job_id)
        waited = time.monotonic() - started
        if doc["state"] in FINAL_STATES or waited > deadline_s:
            return doc, waited
        time.sleep(0.1)


def check_job(
    ledger: Ledger,
    job_id: str,
    submitted: set[str],
    evidence_dir: Path,
    *,
    deadline_s: float,
    states: tuple[str, ...] = ("succeeded",),
    label: str = "",
) -> Verdict:
    """Wait for the job, check the invariant, write the evidence, assert."""
    doc, waited = wait_final(ledger, job_id, deadline_s)
    registered = set(ledger.client.smembers(job_key(job_id, "items")))
    results = list(ledger.results(job_id))
    counted = Counter(r.id for r in results)
    stats = ledger.client.hgetall(job_key(job_id, "stats"))
    ok, failed = int(stats.get("ok", 0)), int(stats.get("failed", 0))
    problems = []
    if doc["state"] not in states:
        problems.append(f"state {doc['state']!r} after {waited:.1f} s, wanted one of {states}")
    if ok + failed != len(submitted):
        problems.append(f"finished + failed = {ok} + {failed} = {ok + failed} != submitted {len(submitted)}")
    if registered != submitted:
        problems.append(f"registered items differ from submitted: {len(registered ^ submitted)} differ")
    if set(counted) != submitted:
        missing, extra = submitted - set(counted), set(counted) - submitted
        problems.append(f"results: {len(missing)} missing, {len(extra)} not submitted")
    if any(n > 1 for n in counted.values()) or len(results) != ok + failed:
        problems.append(f"an item counted twice: {len(results)} results for ok + failed = {ok + failed}")
    if int(stats.get("unexpected", 0)):
        problems.append(f"{stats['unexpected']} unexpected item(s) recorded")
    verdict = Verdict(job_id, doc, waited, problems)
    evidence_dir.mkdir(parents=True, exist_ok=True)
    verdict.evidence = evidence_dir / f"invariant-{label or job_id}.json"
    verdict.evidence.write_text(json.dumps({
        "job_id": job_id, "label": label, "checked_at": time.time(), "waited_s": round(waited, 3),
        "deadline_s": deadline_s, "submitted": len(submitted), "ok": ok, "failed": failed,
        "results": len(results), "duplicate_executions": int(stats.get("duplicates", 0)),
        "unexpected": int(stats.get("unexpected", 0)), "problems": problems, "document": doc,
    }, indent=2, default=str))  # fmt: skip
    assert not problems, f"invariant broken for {job_id} (evidence: {verdict.evidence}): " + "; ".join(problems)
    return verdict
