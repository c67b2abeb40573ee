"""The reduce step's epilogue: once a job has ended, write its report and set retention.

The ledger already holds the exact aggregate (it is reduced as results arrive);
this writes ``report.json`` and ``failures.jsonl`` next to the outputs so the
result outlives the job's Redis retention, and sets that retention.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from pipeline.frontier import ACTIVE_CRAWLS, page_export
from pipeline.ledger import Ledger

log = logging.getLogger(__name__)


def _write_pages(ledger: Ledger, job_id: str, out: Path) -> None:
    """``pages.jsonl``: one line per crawled URL (pages and other documents), streamed."""
    with (out / ".pages.jsonl.part").open("w") as pages:
        for result in ledger.results(job_id):
            if result.kind in ("page", "other"):
                pages.write(page_export(json.dumps(result.to_json())) + "\n")
    os.replace(out / ".pages.jsonl.part", out / "pages.jsonl")


def finalize_job(ledger: Ledger, job_id: str, retention_s: int) -> Path | None:
    document = ledger.document(job_id)
    out = Path(document["output_dir"])
    path: Path | None = None
    try:
        out.mkdir(parents=True, exist_ok=True)
        path = out / "report.json"
        tmp = out / ".report.json.part"
        tmp.write_text(json.dumps(document, indent=2) + "\n")
        os.replace(tmp, path)
        with (out / ".failures.jsonl.part").open("w") as failures:
            for result in ledger.results(job_id, failed_only=True):
                failures.write(json.dumps(result.to_json()) + "\n")
        os.replace(out / ".failures.jsonl.part", out / "failures.jsonl")
        if document["kind"] == "crawl":
            _write_pages(ledger, job_id, out)
    except OSError as exc:
        log.warning("cannot write the report to %s: %s", out, exc.strerror)
        path = None
    ledger.client.srem(ACTIVE_CRAWLS, job_id)
    ledger.mark_finalized(job_id, str(path) if path else "")
    ledger.expire(job_id, retention_s)
    log.info("job finalized", extra={"job_id": job_id, "state": document["state"]})
    return path
