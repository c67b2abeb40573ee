"""Small shared helpers for the tests: waiting on the ledger, making images."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

from pipeline.core.document import FINAL_STATES
from pipeline.kinds import job_document
from pipeline.ledger import Ledger
from pipeline.ledger.keys import job_key

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


T = TypeVar("T")


def wait_until(probe: Callable[[], T], timeout: float, what: str | Callable[[], str], poll: float = 0.05) -> T:
    """Poll ``probe`` until it returns something truthy, and return that; fail naming ``what``.

    Every wait in the suite goes through here: a deadline on observable state,
    never a fixed sleep, so a slow machine waits longer and a fast one not at all.
    ``what`` may be a callable, called only on failure (to describe the last state).
    """
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        if time.monotonic() > deadline:
            described = what if isinstance(what, str) else what()
            raise AssertionError(f"timed out after {timeout:g} s waiting for {described}")
        time.sleep(poll)
    return value


def wait_for_job(ledger: Ledger, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """Wait on the job's final state in the ledger (its done-record), then return the document."""
    wait_until(lambda: ledger.client.hget(job_key(job_id), "state") in FINAL_STATES, timeout,
               lambda: f"job {job_id} to end: {job_document(ledger, job_id)}")  # fmt: skip
    return job_document(ledger, job_id)


def wait_for_report(ledger: Ledger, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """Wait until the reduce step has finalized the job (its report is written)."""
    wait_until(lambda: ledger.client.hget(job_key(job_id), "report"), timeout,
               lambda: f"job {job_id}'s report: {job_document(ledger, job_id)}")  # fmt: skip
    return job_document(ledger, job_id)


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


def fill_redis(client: Any) -> int:
    """Write 256 KiB keys until Redis (with a maxmemory) refuses one as out of memory; returns how many."""
    import redis

    for index in range(10_000):
        try:
            client.set(f"filler:{index}", b"x" * 256 * 1024)
        except redis.OutOfMemoryError:
            return index
    raise AssertionError("Redis never filled up: is maxmemory set?")


def unfill_redis(client: Any) -> None:
    """Delete what ``fill_redis`` wrote."""
    for key in list(client.scan_iter(match="filler:*", count=1000)):
        client.delete(key)


def expect_items(ledger: Ledger, job_id: str, item_ids: list[str]) -> None:
    """Register ids a hand-made job expects, without queueing them: no worker will ever be sent them.

    Ledger tests record results for them themselves; ``Ledger.admit_items`` would put them in
    the job's frontier, where a live worker's ticker would claim and run them.
    """
    ledger.client.sadd(job_key(job_id, "items"), *item_ids)
    ledger.client.hincrby(job_key(job_id), "submitted", len(item_ids))
