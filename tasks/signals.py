"""Worker lifecycle: build the runtime when a worker starts, stop it on shutdown.

The runtime's per-core figures are published as Celery events from here
(``tasks.monitoring``), because ``workers`` knows nothing of Celery.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import signals

from pipeline.core.errors import ConfigError
from pipeline.kinds.images import TRANSFORM_STAGE
from pipeline.logs import setup_logging
from tasks import redis_full, runtime
from tasks.holding import tick
from tasks.monitoring import CoreEvents
from tasks.names import ROLES
from workers import heap
from workers.runtime import Runtime
from workers.ticker import Ticker

log = logging.getLogger(__name__)
TICK_S = 2.0  # how often every worker advances every active job (re-sending expired leases)
_ticker: Ticker | None = None
_core_events: CoreEvents | None = None


def _pool_name(pool_cls: Any) -> str:
    """``threads``, ``solo``, ``prefork``...: the name `--pool` takes, from a name or a class."""
    if isinstance(pool_cls, str):
        return pool_cls.lower()
    module = str(pool_cls.__module__).rsplit(".", 1)[-1]  # celery.concurrency.thread -> thread
    return {"thread": "threads"}.get(module, module)


@signals.worker_init.connect
def start_runtime(sender: Any, **_: Any) -> None:
    global _core_events, _ticker
    app = sender.app
    settings = app.pipeline_settings
    setup_logging(settings.log_level, settings.log_format)
    pool = _pool_name(sender.pool_cls)
    if pool not in ("threads", "solo"):
        raise ConfigError(
            "pipeline workers run with --pool threads (or solo): prefork children are daemonic "
            "and cannot own the runtime's process pool"
        )
    redis_full.install()  # a full Redis makes this worker wait, not exit (tasks.redis_full)
    queues = sorted(app.amqp.queues.consume_from or app.amqp.queues)
    rt = Runtime.start(
        settings, app.pipeline_redis_url, sender.hostname,
        {"queues": queues, "concurrency": sender.concurrency, "pool": pool},
    )  # fmt: skip
    # A worker that transforms keeps what it fetched (workers.image_stages); one that does not must spill.
    rt.transforms_fetched = settings.handoff == "local" and ROLES[TRANSFORM_STAGE.queue] in queues
    runtime.install(rt)
    _core_events = CoreEvents(app, sender.hostname, rt.core_figures)
    _core_events.start()
    # Every few seconds every worker takes over dead workers' items, then advances every active job
    # (claims in Redis make overlaps safe; see tasks.holding).
    _ticker = Ticker(TICK_S, tick, name="pipeline-advance")
    _ticker.start()


@signals.worker_ready.connect
def settle_heap(**_: Any) -> None:
    """Started: freeze what start-up built, so the collector stops rescanning it (``workers.heap``)."""
    heap.settle()


@signals.worker_shutdown.connect
def stop_runtime(**_: Any) -> None:
    global _core_events, _ticker
    if _ticker is not None:
        _ticker.stop()
        _ticker = None
    if _core_events is not None:
        _core_events.stop()
        _core_events = None
    try:
        rt = runtime.runtime()
    except RuntimeError:
        return
    runtime.install(None)
    rt.stop()
