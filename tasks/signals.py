"""Worker lifecycle: build the runtime when a worker starts, stop it on shutdown.

The runtime's per-core figures are published as Celery events from here
(``tasks.monitoring``), because ``workers`` knows nothing of Celery.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import signals

from pipeline.core.errors import ConfigError
from pipeline.logs import setup_logging
from tasks.monitoring import CoreEvents
from workers.runtime import Runtime
from workers.ticker import Ticker

log = logging.getLogger(__name__)
_runtime: Runtime | None = None
_ticker: Ticker | None = None
_core_events: CoreEvents | None = None


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the worker runtime is not started (is this a celery worker?)")
    return _runtime


def _pool_name(pool_cls: Any) -> str:
    """``threads``, ``solo``, ``prefork``...: the name `--pool` takes, from a name or a class."""
    if isinstance(pool_cls, str):
        return pool_cls.lower()
    module = str(pool_cls.__module__).rsplit(".", 1)[-1]  # celery.concurrency.thread -> thread
    return {"thread": "threads"}.get(module, module)


@signals.worker_init.connect
def start_runtime(sender: Any, **_: Any) -> None:
    global _runtime, _core_events
    app = sender.app
    settings = app.pipeline_settings
    setup_logging(settings.log_level, settings.log_format)
    pool = _pool_name(sender.pool_cls)
    if pool not in ("threads", "solo"):
        raise ConfigError(
            "pipeline workers run with --pool threads (or solo): prefork children are daemonic "
            "and cannot own the runtime's process pool"
        )
    queues = sorted(app.amqp.queues.consume_from or app.amqp.queues)
    _runtime = Runtime.start(
        settings, app.pipeline_redis_url, sender.hostname,
        {"queues": queues, "concurrency": sender.concurrency, "pool": pool},
    )  # fmt: skip
    _core_events = CoreEvents(app, sender.hostname, _runtime.core_figures)
    _core_events.start()
    _start_crawl_ticker()


def _start_crawl_ticker() -> None:
    """Every worker re-pumps active jobs every few seconds (Redis makes it safe to overlap),
    after taking over the items of workers that died (``tasks.holding``)."""
    global _ticker
    from tasks.holding import tick

    _ticker = Ticker(2.0, tick, name="pipeline-crawl-pump")
    _ticker.start()


@signals.worker_shutdown.connect
def stop_runtime(**_: Any) -> None:
    global _runtime, _core_events, _ticker
    if _ticker is not None:
        _ticker.stop()
        _ticker = None
    if _core_events is not None:
        _core_events.stop()
        _core_events = None
    if _runtime is not None:
        _runtime.stop()
        _runtime = None
