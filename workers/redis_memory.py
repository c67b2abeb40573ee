"""The worker's view of Redis's memory: the figures, and the blob budget they allow.

Read with ``INFO memory`` at most every few seconds (a fetch batch asks each
time it stores bytes), so ``maxmemory`` raised or lowered on a running Redis
(``CONFIG SET``) takes effect without restarting workers.
"""

from __future__ import annotations

import logging
import threading
import time

from pipeline.ledger import Ledger
from pipeline.ledger.connection import REDIS_TROUBLE
from pipeline.ledger.memory import RedisMemory, blob_budget

log = logging.getLogger(__name__)


class MemoryWatch:
    REFRESH_S = 5.0

    def __init__(self, ledger: Ledger, configured_budget: int | None) -> None:
        self.ledger, self.configured = ledger, configured_budget
        self._lock = threading.Lock()
        self._memory = RedisMemory(0, 0)
        self._read_at = float("-inf")

    def memory(self) -> RedisMemory:
        """The last figures, re-read when older than ``REFRESH_S`` (the old ones if Redis does not answer)."""
        with self._lock:
            if time.monotonic() - self._read_at >= self.REFRESH_S:
                try:
                    self._memory = self.ledger.memory()
                except REDIS_TROUBLE:
                    log.debug("INFO memory failed; keeping the last figures", exc_info=True)
                self._read_at = time.monotonic()
            return self._memory

    def blob_budget(self) -> int:
        return blob_budget(self.memory(), self.configured)
