"""What every command needs: settings, the Redis URL, a producer — built lazily.

Commands that never touch Redis (``--help``, a usage error) must not fail for
lack of one, so nothing here connects until asked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline.config import Settings
from pipeline.core.document import FINAL_STATES
from pipeline.core.errors import BrokerUnavailable, ConfigError, JobNotFound, LedgerLost
from pipeline.kinds import job_document
from pipeline.ledger import Ledger
from pipeline.localredis import resolve_redis_url

OUTAGE_GRACE_S = 60.0  # how long `--wait` rides out an unreachable Redis before giving up (exit 3)
WORKERS_POLL_S = 2.0  # how often `--wait` looks for live workers (a worker's heartbeat is every 2 s)


@dataclass
class CliContext:
    _settings: Settings | None
    _problem: ConfigError | None = None  # raised on first use, so `--help` works with bad settings
    _url: str | None = None
    _producer: Any = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            raise self._problem or ConfigError("configuration not loaded")
        return self._settings

    @property
    def redis_url(self) -> str:
        if self._url is None:
            self._url = resolve_redis_url(self.settings)
        return self._url

    @property
    def producer(self) -> Any:
        if self._producer is None:
            from pipeline.producer import Producer  # imports Celery: only when sending

            self._producer = Producer(self.settings, self.redis_url)
        return self._producer

    @property
    def ledger(self) -> Ledger:
        ledger: Ledger = self.producer.ledger
        return ledger

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()

    def wait(
        self,
        job_id: str,
        on_update: Callable[[dict[str, Any], dict[str, int], bool], None] | None = None,
        timeout: float | None = None,
        poll_s: float = 0.2,
    ) -> dict[str, Any]:
        """Poll the ledger until the job is final (or ``timeout``); returns the document.

        ``on_update(document, stage progress, workers_live)``: the live workers are
        counted every ``WORKERS_POLL_S``, so bars can say why nothing moves.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        seen, outage_since = False, None
        workers_live, workers_seen_at = True, 0.0
        while True:
            try:
                doc = job_document(self.ledger, job_id)
                if on_update is not None:
                    if time.monotonic() - workers_seen_at >= WORKERS_POLL_S:
                        workers_live, workers_seen_at = bool(self.ledger.workers()), time.monotonic()
                    on_update(doc, self.ledger.progress(job_id), workers_live)
            except BrokerUnavailable:
                # A Redis restart or a network blip mid-wait is waited out, for a while.
                outage_since = outage_since or time.monotonic()
                if not seen or time.monotonic() - outage_since > OUTAGE_GRACE_S:
                    raise
                time.sleep(poll_s)
                continue
            except JobNotFound:
                if not seen:
                    raise
                # It was there a moment ago and no retention can expire a running job.
                raise LedgerLost(
                    f"job {job_id} failed: ledger lost: its records vanished from Redis while it ran "
                    "(Redis restarted without persistence?); submit it again"
                ) from None
            seen, outage_since = True, None
            if doc["state"] in FINAL_STATES:
                return doc
            if deadline is not None and time.monotonic() > deadline:
                return doc
            time.sleep(poll_s)
