"""The reduce step's epilogue: once a job has ended, write its report and set retention.

The ledger already holds the exact aggregate (it is reduced as results arrive);
this writes ``report.json`` and ``failures.jsonl`` next to the outputs so the
result outlives the job's Redis retention, and sets that retention. The files
go through the outputs' safe writer (``pipeline.outputs``): a symlink planted in
the folder (the worker may run as root) is never written through.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

from pipeline.core.errors import StoreError
from pipeline.frontier import ACTIVE_CRAWLS, page_export
from pipeline.ledger import Ledger
from pipeline.outputs import OpenFolder, OutputDir

log = logging.getLogger(__name__)


def _pages(ledger: Ledger, job_id: str) -> Iterator[str]:
    """``pages.jsonl``: one line per crawled URL (pages and other documents), streamed."""
    for result in ledger.results(job_id):
        if result.kind in ("page", "other"):
            yield page_export(json.dumps(result.to_json())) + "\n"


def _failures(ledger: Ledger, job_id: str) -> Iterator[str]:
    for result in ledger.results(job_id, failed_only=True):
        yield json.dumps(result.to_json()) + "\n"


def _write(folder: OpenFolder, name: str, data: bytes | Iterator[str]) -> bool:
    try:
        folder.write(name, data)
    except StoreError as exc:
        log.warning("cannot write %s: %s", name, exc.detail)
        return False
    return True


def finalize_job(ledger: Ledger, job_id: str, retention_s: int) -> Path | None:
    document = ledger.document(job_id)
    out = Path(document["output_dir"])
    path: Path | None = None
    try:
        with OutputDir(out).open() as folder:
            if _write(folder, "report.json", (json.dumps(document, indent=2) + "\n").encode()):
                path = out / "report.json"
            _write(folder, "failures.jsonl", _failures(ledger, job_id))
            if document["kind"] == "crawl":
                _write(folder, "pages.jsonl", _pages(ledger, job_id))
    except StoreError as exc:
        log.warning("cannot write the report to %s: %s", out, exc.detail)
    ledger.client.srem(ACTIVE_CRAWLS, job_id)
    ledger.mark_finalized(job_id, str(path) if path else "")
    ledger.expire(job_id, retention_s)
    log.info("job finalized", extra={"job_id": job_id, "state": document["state"]})
    return path
