"""A background thread that calls one function every few seconds until stopped.

Every worker uses it to advance every active job: items whose lease ran out
(a lost message, a killed worker) are re-sent even when no batch is finishing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Ticker:
    def __init__(self, interval_s: float, tick: Callable[[], None], name: str = "pipeline-ticker") -> None:
        self.interval_s, self.tick = interval_s, tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception:
                log.warning("tick failed", exc_info=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
