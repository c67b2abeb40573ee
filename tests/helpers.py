"""Small shared helpers for the tests: waiting on the ledger, making images."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

from PIL import Image

from pipeline.core.document import FINAL_STATES
from pipeline.ledger import Ledger

# Settings every test process and worker shares: short timeouts so failure
# paths finish quickly, small batches so jobs have several.
TEST_ENV = {
    "PIPELINE_FETCH_TIMEOUT_S": "2",
    "PIPELINE_CONNECT_TIMEOUT_S": "1",
    "PIPELINE_FETCH_RETRIES": "2",
    "PIPELINE_TASK_DEADLINE_S": "30",
    "PIPELINE_VISIBILITY_TIMEOUT_S": "60",
    "PIPELINE_BATCH_SIZE": "5",
    "PIPELINE_PROCESSES": "2",
    "PIPELINE_MAX_BODY_BYTES": "4000000",
    "PIPELINE_MAX_PIXELS": "40000000",
    "PIPELINE_LOG_LEVEL": "INFO",
    # A test resolver: names that DNS would never give, pinned to loopback (SSRF tests).
    "PIPELINE_RESOLVE": "internal.test=127.0.0.2,public.test=127.0.0.1",
}


def wait_for_job(ledger: Ledger, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """Wait on the job's final state in the ledger (its done-record), then return the document."""
    deadline = time.monotonic() + timeout
    while True:
        doc = ledger.document(job_id)
        if doc["state"] in FINAL_STATES:
            return doc
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} not final after {timeout} s: {doc}")
        time.sleep(0.05)


def wait_for_report(ledger: Ledger, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """Wait until the reduce step has finalized the job (its report is written)."""
    deadline = time.monotonic() + timeout
    while (doc := ledger.document(job_id))["report"] is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} not finalized after {timeout} s: {doc}")
        time.sleep(0.05)
    return doc


def image_bytes(
    size: tuple[int, int] = (640, 480), fmt: str = "JPEG", color: tuple[int, int, int] = (200, 80, 40)
) -> bytes:
    image = Image.new("RGBA" if fmt == "PNG" else "RGB", size, color)
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def make_images(
    folder: Path, count: int, size: tuple[int, int] = (640, 480), fmt: str = "JPEG", prefix: str = "img"
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    ext = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif"}[fmt]
    paths = []
    for index in range(count):
        path = folder / f"{prefix}-{index:03d}{ext}"
        path.write_bytes(image_bytes(size, fmt, (index * 7 % 256, 100, 200)))
        paths.append(path)
    return paths
