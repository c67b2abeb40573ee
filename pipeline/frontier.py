"""What runs next: claim a job's items from its frontier in Redis, as batches for its stages.

This is the one place that decides it. ``claim`` is called by the producer
after admitting items, by a worker after every batch it finishes, by every
worker's ticker every few seconds (which re-sends items whose lease expired
because their message or worker was lost), and by a crawl batch topping
itself up (``limit``: only the pages it can start). The caller sends what it
gets; claims are atomic in Redis, so any number can run at once.

Item codes map to stages through the job's kind (``pipeline.kinds``); batch
sizes follow the job's own ``batch`` field, or its measured cost per item when
it adapts (``pipeline.core.batching``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.config import Settings
from pipeline.core import batching
from pipeline.kinds import kind_named
from pipeline.kinds.base import Stage
from pipeline.ledger import Claimed, Ledger


@dataclass(frozen=True)
class Batch:
    """Items of one job for one stage: one task message ``(job_id, items, sent_at)``."""

    stage: Stage
    job_id: str
    items: list[list[Any]]
    sent_at: float

    @property
    def task(self) -> str:
        return self.stage.task

    @property
    def args(self) -> list[Any]:
        return [self.job_id, self.items, self.sent_at]


def _message_item(item: Claimed) -> list[Any]:
    """An item as its stage's message carries it: pages keep their depth; files carry zero timings."""
    if item.code == "p":
        return [item.id, item.source, item.depth]
    if item.code == "f":
        return [item.id, item.source, 0.0, 0.0]
    return [item.id, item.source]


def _chunks(items: Sequence[list[Any]], size: int) -> list[list[list[Any]]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


class Frontier:
    """Claims batches for any job; one per producer and per worker process."""

    def __init__(self, ledger: Ledger, settings: Settings) -> None:
        self.ledger = ledger
        self.lease_s = settings.visibility_timeout_s
        self.window = settings.job_window
        self.batch_size = settings.batch_size

    def claim(self, job_id: str, *, now: float, limit: int = 0) -> list[Batch]:
        """Lease what may run now (at most ``limit`` pages, if not 0) and return it as batches."""
        params = self.ledger.dispatch_params(job_id, batching.STAT_FIELDS)
        if params.kind is None:
            return []  # the job is gone (expired or never created)
        kind = kind_named(params.kind)
        size = adaptive_size = params.batch or self.batch_size
        if params.adaptive:
            adaptive_size = batching.adaptive_batch(size, params.stats)
        # Images go out in whole batches; a crawl's too while its pages may find more (dispatch.lua).
        whole = size if kind.streams_items else adaptive_size
        min_window = batching.window_for(0, adaptive_size) if params.adaptive else 0
        claimed = self.ledger.dispatch(job_id, self.lease_s, self.window, min_window=min_window, batch=whole,
                                       limit=limit)  # fmt: skip
        by_code: dict[str, list[list[Any]]] = {}
        for item in claimed:
            by_code.setdefault(item.code, []).append(_message_item(item))
        batches = []
        for code, items in by_code.items():
            stage = kind.stages[code]
            for chunk in _chunks(items, adaptive_size if stage.adaptive else size):
                batches.append(Batch(stage, job_id, chunk, now))
        return batches
