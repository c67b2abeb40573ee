"""Building a configured Celery app: JSON only, late acks, one message per batch.

``create_app`` works for any Redis URL and needs no Redis to build: the producer
uses it to send tasks by name; ``tasks.app`` uses it for the worker. The worker
pool is ``threads``: Celery's prefork children are daemonic and cannot own a
process pool (celery/celery#1709); our runtime owns the processes instead, so
Celery's threads only wait on futures.
"""

from __future__ import annotations

from celery import Celery
from kombu.entity import Exchange, Queue

from pipeline.config import Settings
from pipeline.kinds import KINDS, stages
from tasks.names import JOB_FINALIZE, QUEUES, REDUCE_QUEUE, ROLES


def routes() -> dict[str, dict[str, str]]:
    """Each kind's stage tasks to their queue, and the reduce step to its own."""
    table = {task: {"queue": ROLES[stage.queue]} for task, stage in stages().items()}
    return table | {JOB_FINALIZE: {"queue": REDUCE_QUEUE}}


def create_app(settings: Settings, url: str, *, worker: bool = False) -> Celery:
    """A configured app; ``worker`` also imports the task modules (every kind's), lifecycle hooks and
    the remote-control commands (``tasks.control``)."""
    if worker:
        settings.check_worker()
    else:
        settings.check_delivery_timeouts()
    modules = dict.fromkeys(kind.task_module for kind in KINDS.values())
    include = [*modules, "tasks.flow", "tasks.holding", "tasks.signals", "tasks.control"] if worker else []
    app = Celery("pipeline", broker=url, include=include, set_as_current=worker)
    app.conf.update(
        # JSON in, JSON out; a pickle message is refused, never executed.
        task_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        event_serializer="json",
        # Results live in our ledger, not in a Celery result backend.
        task_ignore_result=True,
        # At-least-once: ack after the batch is recorded; a lost worker's batch
        # is re-delivered after the visibility timeout; the ledger dedups.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout_s,
            # Scan for expired unacked messages often enough to matter.
            "unacked_restore_interval": min(30.0, max(1.0, settings.visibility_timeout_s / 4)),
        },
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        # Explicit exchange and routing key per queue: left to defaults, kombu binds
        # every queue to the default exchange with one key, and the Redis transport
        # then copies each message into all of them.
        task_queues=[Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES],
        task_default_queue=REDUCE_QUEUE,
        task_routes=routes(),
        worker_pool="threads",
        worker_concurrency=settings.task_threads,
        # Flower sees nothing unless workers send events (-E).
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    app.pipeline_settings = settings
    app.pipeline_redis_url = url
    return app
