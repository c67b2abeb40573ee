"""Per-core progress as Celery events: one ``pipeline-cores`` event per worker a second.

Why an event as well as the heartbeat in Redis: Flower already consumes the
Celery event stream, so a custom event type reaches our Flower extension
(``pipeline.monitor``) with no extra connection on Flower's side. One event a
second per worker, whatever the item rate, so the cost does not grow with
throughput; each carries cumulative counters plus the worker's own items/s over
its recent window, so a lost event loses nothing but one refresh.

The event's fields: ``cores`` (one row per pool slot), ``io`` (work outside the
pool), ``window_s``, ``processes`` and ``online`` (False on the last event a
worker sends while shutting down). The row shape is ``workers.metrics``'.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from celery import Celery

log = logging.getLogger(__name__)

CORES_EVENT = "pipeline-cores"
# Celery's event State dispatches on the part before the first dash.
EVENT_GROUP = CORES_EVENT.split("-", 1)[0]
INTERVAL_S = 1.0


class CoreEvents:
    """A daemon thread that publishes ``snapshot()`` as a ``pipeline-cores`` event each interval."""

    def __init__(
        self,
        app: Celery,
        hostname: str,
        snapshot: Callable[[], dict[str, Any]],
        interval_s: float = INTERVAL_S,
    ) -> None:
        self.app, self.hostname, self.snapshot = app, hostname, snapshot
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pipeline-core-events", daemon=True)
        self._failing = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; its last event says ``online: False``, so Flower shows the worker gone at once."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        dispatcher: Any = None
        online = True
        while online:
            dispatcher = self._send(dispatcher, online=True)
            online = not self._stop.wait(self.interval_s)
        _close(self._send(dispatcher, online=False))

    def _send(self, dispatcher: Any, *, online: bool) -> Any:
        """Publish one snapshot; returns the dispatcher to reuse (None after a failure)."""
        try:
            if dispatcher is None:
                dispatcher = self._dispatcher()
            dispatcher.send(CORES_EVENT, online=online, **self.snapshot())
        except Exception as exc:  # the broker went away: reconnect on the next tick
            self._failed(exc)
            _close(dispatcher)
            return None
        self._recovered()
        return dispatcher

    def _dispatcher(self) -> Any:
        # Our own connection, used only by this thread (kombu connections are not thread-safe);
        # no buffering while offline: the next second's snapshot supersedes this one.
        connection = self.app.connection_for_write()
        try:
            return self.app.events.Dispatcher(
                connection, hostname=self.hostname, enabled=True, buffer_while_offline=False
            )
        except Exception:
            connection.release()
            raise

    def _failed(self, exc: Exception) -> None:
        if not self._failing:
            log.warning("per-core monitoring events not sent (%s); retrying every %g s", exc, self.interval_s)
        self._failing = True

    def _recovered(self) -> None:
        if self._failing:
            log.info("per-core monitoring events flowing again")
        self._failing = False


def _close(dispatcher: Any) -> None:
    if dispatcher is not None:
        try:
            dispatcher.close()
            dispatcher.connection.release()
        except Exception:
            log.debug("closing the monitoring event connection failed", exc_info=True)
