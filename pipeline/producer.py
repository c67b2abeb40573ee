"""Submitting jobs: validate, register in the ledger, enqueue batches, seal.

The producer never imports worker code: it builds a sending-only Celery app
and sends tasks by name. Sources are expanded lazily and enqueued batch by
batch, so a 100,000-item job keeps the producer's memory flat; the ledger's
item set dedups sources listed twice.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from kombu.exceptions import OperationalError

from pipeline.config import Settings
from pipeline.core.errors import BrokerUnavailable, SourceError, UsageError
from pipeline.core.imaging import TransformPlan
from pipeline.core.ops import parse_format, parse_ops
from pipeline.core.sources import Item, expand_sources
from pipeline.core.urls import Scope, normalize, url_id
from pipeline.frontier import ACTIVE_CRAWLS, pump
from pipeline.ledger import Ledger
from pipeline.redisconn import connect, reachable, redact
from tasks.factory import create_app
from tasks.names import CRAWL_PAGES, IMAGES_FETCH, IMAGES_TRANSFORM, JOB_FINALIZE


@dataclass(frozen=True)
class ImageJobRequest:
    """What `pipeline submit images` asks for, before validation."""

    sources: Sequence[str]
    ops: str = "thumbnail:256"
    format: str = "jpeg"
    quality: int = 85
    output_dir: Path | None = None
    batch_size: int | None = None

    def plan(self, max_pixels: int) -> TransformPlan:
        if not 1 <= self.quality <= 100:
            raise UsageError(f"--quality must be between 1 and 100, got {self.quality}")
        return TransformPlan(parse_ops(self.ops), parse_format(self.format), self.quality, max_pixels)

    def validate(self, max_pixels: int) -> TransformPlan:
        """Everything that can be checked without Redis: ops, format, that sources exist."""
        plan = self.plan(max_pixels)
        found = False
        for source in self.sources:  # a typo in one argument refuses the job, nothing half-made
            found = next(expand_sources([source]), None) is not None or found
        if not found:
            raise SourceError("no images found in the given sources")
        return plan


@dataclass(frozen=True)
class CrawlJobRequest:
    """What `pipeline submit crawl` asks for, before validation."""

    seeds: Sequence[str]
    max_pages: int = 10_000
    max_depth: int | None = None
    allow_domains: Sequence[str] = ()
    images: bool = False
    ops: str = "thumbnail:256"
    format: str = "jpeg"
    quality: int = 85
    concurrency: int = 64
    per_host: int = 8
    delay_s: float = 0.0
    robots: bool = True
    allow_private: bool = False
    output_dir: Path | None = None
    batch_size: int | None = None

    def validate(self, max_pixels: int) -> tuple[list[str], TransformPlan | None]:
        """Normalised seeds and the image plan; usage errors before anything is created."""
        seeds = []
        for seed in self.seeds:
            normal = normalize(seed)
            if normal is None:
                raise UsageError(f"not an http(s) URL: {seed!r} (seeds look like https://example.org/)")
            seeds.append(normal)
        if not seeds:
            raise UsageError("give at least one seed URL")
        plan = ImageJobRequest((), self.ops, self.format, self.quality).plan(max_pixels) if self.images else None
        if self.per_host > self.concurrency:
            raise UsageError(f"--per-host ({self.per_host}) cannot exceed --concurrency ({self.concurrency})")
        return list(dict.fromkeys(seeds)), plan


ADMIT_CHUNK = 500  # items registered per round trip at submit (memory stays flat: one chunk at a time)


def new_job_id() -> str:
    """Sortable and short enough to type: ``20261123-081502-3fa9c1``."""
    return time.strftime("%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(3)


def batched(items: Iterator[Item], size: int) -> Iterator[list[Item]]:
    """``itertools.batched`` for Python 3.11."""
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def _peeked(items: Iterator[Item]) -> Iterator[Item]:
    """The same items, but fail before anything is created when there are none."""
    first = next(items, None)
    if first is None:
        raise SourceError("no images found in the given sources")
    return itertools.chain([first], items)


class Producer:
    def __init__(self, settings: Settings, redis_url: str) -> None:
        self.settings, self.url = settings, redis_url
        self.ledger = Ledger(connect(redis_url))
        self._app: Celery | None = None

    @property
    def app(self) -> Celery:
        if self._app is None:
            self._app = create_app(self.settings, self.url)
        return self._app

    def close(self) -> None:
        self.ledger.client.close()
        if self._app is not None:
            self._app.close()

    def _send(self, name: str, args: list[Any]) -> None:
        try:
            self.app.send_task(name, args=args, retry=True, retry_policy={"max_retries": 3})
        except OperationalError as exc:
            raise BrokerUnavailable(f"broker unreachable: cannot publish to {redact(self.url)}: {exc}") from None

    def submit(
        self, request: ImageJobRequest | CrawlJobRequest, *, schedule: str | None = None, job_id: str | None = None
    ) -> str:
        """Submit any kind of job request (the scheduler's entry point).

        ``schedule`` links the job to the schedule that fired it; ``job_id`` is
        the id the scheduler claimed for the fire (so an adopted fire reuses it).
        """
        if isinstance(request, ImageJobRequest):
            return self.submit_images(request, schedule=schedule, job_id=job_id)
        return self.submit_crawl(request, schedule=schedule, job_id=job_id)

    def submit_crawl(self, request: CrawlJobRequest, *, schedule: str | None = None, job_id: str | None = None) -> str:
        seeds, plan = request.validate(self.settings.max_pixels)
        job_id = job_id or new_job_id()
        output_dir = (request.output_dir or self.settings.outputs / job_id).expanduser().resolve()
        scope = Scope.of(seeds, request.allow_domains)
        spec: dict[str, Any] = {
            "crawl": True, "seeds": seeds, "scope": scope.to_json(), "images": request.images,
            "trusted_hosts": sorted({urlsplit(seed).hostname or "" for seed in seeds}),
            "allow_private": request.allow_private, "robots": request.robots,
            "concurrency": request.concurrency, "per_host": request.per_host, "delay_s": request.delay_s,
            "max_pages": request.max_pages, "max_depth": request.max_depth, "output_dir": str(output_dir),
        }  # fmt: skip
        if plan is not None:
            spec.update(plan=plan.to_json(), ops=",".join(str(op) for op in plan.ops), format=plan.format)
        window = max(2 * request.concurrency, 2 * (request.batch_size or self.settings.batch_size))
        with reachable(self.url):
            self.ledger.create_job(
                job_id, "crawl", spec, str(output_dir), max_pages=request.max_pages,
                max_depth=-1 if request.max_depth is None else request.max_depth, window=window,
                **({"schedule": schedule} if schedule else {}),
            )  # fmt: skip
            self.ledger.client.sadd(ACTIVE_CRAWLS, job_id)
            self.ledger.seed(job_id, [(url_id(seed, "p"), seed) for seed in seeds])
            self._pump(job_id, window, request.batch_size or self.settings.batch_size)
        return job_id

    def _pump(self, job_id: str, window: int, batch_size: int) -> int:
        return pump(self.ledger, job_id, self._send, lease_s=self.settings.visibility_timeout_s, window=window,
                    batch_size=batch_size, page_task=CRAWL_PAGES, image_task=IMAGES_FETCH,
                    file_task=IMAGES_TRANSFORM, now=time.time())  # fmt: skip

    def submit_images(self, request: ImageJobRequest, *, schedule: str | None = None, job_id: str | None = None) -> str:
        plan = request.validate(self.settings.max_pixels)
        items = _peeked(expand_sources(request.sources))
        job_id = job_id or new_job_id()
        output_dir = (request.output_dir or self.settings.outputs / job_id).expanduser().resolve()
        spec = {"plan": plan.to_json(), "ops": ",".join(str(op) for op in plan.ops),
                "format": plan.format, "output_dir": str(output_dir)}  # fmt: skip
        batch_size = request.batch_size or self.settings.batch_size
        window = self.settings.job_window
        # A batch size the user chose is kept; the default adapts to the measured cost per item.
        fixed = request.batch_size is not None or "batch_size" in self.settings.model_fields_set
        extra = ({"schedule": schedule} if schedule else {}) | ({} if fixed else {"adaptive": 1})
        with reachable(self.url):
            self.ledger.create_job(job_id, "images", spec, str(output_dir), window=window, batch=batch_size, **extra)
            # Items wait in the job's frontier in Redis and are sent a window at a
            # time (by us now, then by the workers as batches finish): a big job
            # never fills the queues ahead of a small one, and a lost message is
            # re-sent when its lease runs out.
            self.ledger.client.sadd(ACTIVE_CRAWLS, job_id)
            for chunk in batched(items, max(batch_size, ADMIT_CHUNK)):
                self.ledger.admit_items(job_id, [(i.id, i.src, "i" if i.is_url else "f") for i in chunk])
                self._pump(job_id, window, batch_size)
            if self.ledger.seal(job_id):
                self._send(JOB_FINALIZE, [job_id])
            else:
                self._pump(job_id, window, batch_size)
        return job_id

    def retry(self, job_id: str) -> int:
        """Re-run only the failed items of a finished image job; returns how many were re-sent.

        The ledger takes them out of the aggregate first (one Lua call), so each
        counts once again when it is recorded: ok if it now works, failed if not.
        """
        with reachable(self.url):
            failed = [r.id for r in self.ledger.results(job_id, failed_only=True)]
            taken = self.ledger.retry(job_id, failed)
            for chunk in batched(iter([Item(item_id, src) for item_id, src in taken]), self.settings.batch_size):
                now = time.time()
                urls = [item.to_json() for item in chunk if item.is_url]
                files = [[item.id, item.src, 0.0, 0.0] for item in chunk if not item.is_url]
                if urls:
                    self._send(IMAGES_FETCH, [job_id, urls, now])
                if files:
                    self._send(IMAGES_TRANSFORM, [job_id, files, now])
        return len(taken)

    def cancel(self, job_id: str) -> bool:
        with reachable(self.url):
            cancelled = self.ledger.cancel(job_id)
            if cancelled:
                self._send(JOB_FINALIZE, [job_id])
            return cancelled
