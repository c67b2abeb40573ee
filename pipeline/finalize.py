"""The reduce step's epilogue: once a job has ended, write its report and set retention.

The ledger already holds the exact aggregate (it is reduced as results arrive);
this writes ``report.json`` and ``failures.jsonl`` next to the outputs, plus
any files the job's kind exports (a crawl's ``pages.jsonl``), so the result
outlives the job's Redis retention, and sets that retention. The files go
through the outputs' safe writer (``pipeline.outputs``): a symlink planted in
the folder (the worker may run as root) is never written through, and a folder
outside this worker's output rules (``pipeline.output_dirs``) gets nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from pipeline.core.errors import BrokerUnavailable, StoreError
from pipeline.kinds import KINDS, job_document
from pipeline.ledger import Ledger
from pipeline.output_dirs import refusal
from pipeline.outputs import OpenFolder, OutputDir

log = logging.getLogger(__name__)


def _failures(ledger: Ledger, job_id: str) -> Iterator[str]:
    for result in ledger.results(job_id, failed_only=True):
        yield json.dumps(result.to_json()) + "\n"


def _write(folder: OpenFolder, name: str, data: bytes | Iterable[str]) -> bool:
    try:
        folder.write(name, data)
    except StoreError as exc:
        log.warning("cannot write %s: %s", name, exc.detail)
        return False
    return True


def finalize_job(ledger: Ledger, job_id: str, retention_s: int, output_root: Path | None = None) -> Path | None:
    """Write the job's report files (unless its folder breaks this worker's output rules), then retention."""
    kind = KINDS.get(ledger.meta(job_id).kind)
    if kind is not None:
        try:  # before the document: it may add to what the report says
            kind.finish(ledger, job_id, output_root)
        except BrokerUnavailable:
            raise  # Redis is away: the task's retry runs it all again
        except Exception:  # a bug in a kind's epilogue must not keep the job from its report
            log.exception("the %s kind's finish step failed for job %s", kind.name, job_id)
    document = job_document(ledger, job_id)
    out = Path(document["output_dir"])
    path: Path | None = None
    refused = refusal(out, output_root)
    if refused is not None:
        log.warning("not writing the report of job %s: %s", job_id, refused)
    else:
        try:
            with OutputDir(out).open() as folder:
                if _write(folder, "report.json", (json.dumps(document, indent=2) + "\n").encode()):
                    path = out / "report.json"
                _write(folder, "failures.jsonl", _failures(ledger, job_id))
                for name, lines in (kind.exports(ledger, job_id) if kind else {}).items():
                    _write(folder, name, lines)
        except StoreError as exc:
            log.warning("cannot write the report to %s: %s", out, exc.detail)
    ledger.mark_finalized(job_id, str(path) if path else "")
    ledger.expire(job_id, retention_s)
    log.info("job finalized", extra={"job_id": job_id, "state": document["state"]})
    return path
