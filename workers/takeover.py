"""Taking over a dead worker's in-flight items within seconds.

A worker that is killed (SIGKILL, the OOM killer, its host gone) leaves its
batches unacknowledged: the broker would re-deliver them only after the
visibility timeout (300 s by default), and until then the job stalls. Instead,
each task writes that its worker holds its items (``pipeline.ledger.holdings``), and
every worker's ticker sweeps the active jobs every 2 s: a holder whose
``pl:live:NODE`` key is gone (it did not beat for ``PIPELINE_WORKER_LOST_S``) or
names another instance (the container restarted under the same name) is dead,
and the leases of its items are expired so the same tick's pump re-sends them.

A worker never takes itself for dead, even when Redis lost its key for a moment
(a restart): the heartbeat writes it again within 2 s. A worker that was only
frozen (SIGSTOP, a long pause) and wakes up finishes its batch: the ledger
keeps the first result per item, so its late results count once, as
``ledger.duplicates``. The broker's visibility timeout stays as the last resort
(a message lost before any worker started it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from pipeline.ledger.holdings import Holdings

log = logging.getLogger(__name__)


class Takeover:
    def __init__(self, holdings: Holdings, owner: str, ttl_s: int) -> None:
        self.holdings, self.owner, self.ttl_s = holdings, owner, ttl_s

    def hold(self, job_id: str, item_ids: Sequence[str]) -> None:
        self.holdings.hold(job_id, self.owner, item_ids, self.ttl_s)

    def release(self, job_id: str, item_ids: Sequence[str]) -> None:
        self.holdings.release(job_id, self.owner, item_ids)

    def sweep(self, job_ids: Iterable[str]) -> int:
        """Expire the leases of items held by dead workers in these jobs; returns how many."""
        by_job = self.holdings.owners(job_ids)
        others = {owner for owners in by_job.values() for owner in owners} - {self.owner}
        if not others:
            return 0
        dead = others - self.holdings.live_owners(others)
        expired = 0
        for job_id, owners in by_job.items():
            gone = owners & dead
            if gone:
                count = self.holdings.take_over(job_id, gone)
                expired += count
                log.warning(
                    "took over %d in-flight items of dead workers %s", count, ", ".join(sorted(gone)),
                    extra={"job_id": job_id, "items": count},
                )  # fmt: skip
        return expired
