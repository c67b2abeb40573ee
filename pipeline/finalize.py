"""The reduce step's epilogue: once a job has ended, write its report and set retention.

The ledger already holds the exact aggregate (it is reduced as results arrive);
this writes ``report.json`` and ``failures.jsonl`` next to the outputs, plus
any files the job's kind exports (a crawl's ``pages.jsonl``), so the result
outlives the job's Redis retention, and sets that retention.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from pipeline.kinds import KINDS, job_document
from pipeline.ledger import Ledger
from pipeline.output_dirs import refusal

log = logging.getLogger(__name__)


def _write_lines(out: Path, name: str, lines: Iterable[str]) -> None:
    """Stream ``lines`` into ``out/name`` through a temporary file, renamed into place when complete."""
    part = out / f".{name}.part"
    with part.open("w") as file:
        file.writelines(lines)
    os.replace(part, out / name)


def finalize_job(ledger: Ledger, job_id: str, retention_s: int, output_root: Path | None = None) -> Path | None:
    """Write the job's report files (unless its folder breaks this worker's output rules), then retention."""
    document = job_document(ledger, job_id)
    out = Path(document["output_dir"])
    kind = KINDS.get(document["kind"])
    path: Path | None = out / "report.json"
    refused = refusal(out, output_root)
    try:
        if refused is not None:
            raise PermissionError(0, refused)
        out.mkdir(parents=True, exist_ok=True)
        _write_lines(out, "report.json", [json.dumps(document, indent=2) + "\n"])
        failures = (json.dumps(r.to_json()) + "\n" for r in ledger.results(job_id, failed_only=True))
        _write_lines(out, "failures.jsonl", failures)
        for name, lines in (kind.exports(ledger, job_id) if kind else {}).items():
            _write_lines(out, name, lines)
    except OSError as exc:
        log.warning("cannot write the report to %s: %s", out, exc.strerror)
        path = None
    ledger.mark_finalized(job_id, str(path) if path else "")
    ledger.expire(job_id, retention_s)
    log.info("job finalized", extra={"job_id": job_id, "state": document["state"]})
    return path
