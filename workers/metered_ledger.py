"""The worker's ledger, counting the items it records: the headline figure of monitoring.

Every result a worker records goes through ``Ledger.record_raw`` (``record``
calls it), whose Lua script answers how many ids it counted for the first
time. Those are the items the jobs report, ok or failed, each once, whichever
stages it took and however often a batch was re-delivered. Counting them here
rather than at each call site means a new stage cannot forget to.
"""

from __future__ import annotations

from collections.abc import Mapping

import redis

from pipeline.ledger import Ledger
from workers.metrics import SlotMetrics


class MeteredLedger(Ledger):
    def __init__(self, client: redis.Redis, metrics: SlotMetrics) -> None:
        super().__init__(client)
        self.metrics = metrics

    def record_raw(
        self, job_id: str, payload: list[str], progress: Mapping[str, int] | None = None
    ) -> tuple[int, bool]:
        added, finished = super().record_raw(job_id, payload, progress)
        self.metrics.observe_recorded(added)
        return added, finished
