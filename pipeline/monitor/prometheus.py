"""Per-core Prometheus series on Flower's ``/metrics``, read from the board at scrape time.

A custom collector rather than Counter objects: the workers keep the counts;
Flower only relays their latest totals, so each scrape reports exactly what
the board holds, and a forgotten worker's series simply stop. (Pattern:
prometheus_client's "Custom Collectors" documentation.) Flower's ``/metrics``
handler exposes the default registry, where ``register`` puts this.

    pipeline_core_items_total{worker,core,stage}          items finished (counter)
    pipeline_core_busy_seconds_total{worker,core,stage}   time spent on them (counter)
    pipeline_core_items_per_second{worker,core,stage}     the worker's recent-window rate (gauge)
    pipeline_worker_items_total{worker}                   items it recorded in the ledger, each once
    pipeline_items_per_second                             the headline: all workers, each item once (gauge)

``core`` is the pool slot number, or ``io`` for fetch/store work outside the pool.

Per job, for the ``JOBS_WATCHED`` most recent jobs (so the number of series
is bounded; an older job's series simply stop), from ``JobWatch``:

    pipeline_job_items_total{job,kind,state}      items done, ``state`` = ok | failed (the item's outcome)
    pipeline_job_items_expected{job,kind}         items the job has so far (a crawl's grows)
    pipeline_job_state{job,kind,state}            1 for the job's state, 0 for the others
    pipeline_job_items_per_second{job,kind}       over its last few seconds while it runs, else 0
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline.core.document import STATES
from pipeline.monitor.board import CoreBoard
from pipeline.monitor.cores import headline, stage_lines

LABELS = ("worker", "core", "stage")


class CoresCollector(Collector):
    def __init__(self, board: CoreBoard) -> None:
        self.board = board

    def collect(self) -> Iterator[Metric]:
        items = CounterMetricFamily(
            "pipeline_core_items", "Items each worker core finished, per stage (core io: outside the process pool)",
            labels=LABELS,
        )  # fmt: skip
        busy = CounterMetricFamily(
            "pipeline_core_busy_seconds", "Seconds each worker core spent on its items, per stage", labels=LABELS
        )
        rate = GaugeMetricFamily(
            "pipeline_core_items_per_second", "Items per second per worker core and stage, over the worker's "
            "recent window (0 when the worker is offline)", labels=LABELS,
        )  # fmt: skip
        worker_items = CounterMetricFamily(
            "pipeline_worker_items", "Items each worker recorded in the ledger, ok or failed, each item once",
            labels=["worker"],
        )  # fmt: skip
        workers = self.board.workers()
        for line in stage_lines(workers):
            labels = [line.worker, line.core, line.stage]
            items.add_metric(labels, line.items)
            busy.add_metric(labels, line.busy_s)
            rate.add_metric(labels, line.items_per_s)
        for worker in workers:
            worker_items.add_metric([worker["name"]], worker["items"])
        overall = GaugeMetricFamily(
            "pipeline_items_per_second", "Items per second over all workers, each item once (what jobs report)",
            value=headline(workers)["items_per_s"],
        )  # fmt: skip
        yield from (items, busy, rate, worker_items, overall)


class Jobs(Protocol):
    """What the job series read: ``JobWatch.jobs`` (summaries of the watched jobs)."""

    def jobs(self) -> list[dict[str, Any]]: ...


class JobsCollector(Collector):
    def __init__(self, watch: Jobs) -> None:
        self.watch = watch

    def collect(self) -> Iterator[Metric]:
        items = CounterMetricFamily(
            "pipeline_job_items", "Items of a recent job done, by outcome (state: ok or failed)",
            labels=("job", "kind", "state"),
        )  # fmt: skip
        expected = GaugeMetricFamily(
            "pipeline_job_items_expected", "Items a recent job has so far (a crawl's total grows as it finds pages)",
            labels=("job", "kind"),
        )  # fmt: skip
        state = GaugeMetricFamily(
            "pipeline_job_state", "1 for a recent job's state, 0 for the others", labels=("job", "kind", "state")
        )
        rate = GaugeMetricFamily(
            "pipeline_job_items_per_second", "Items per second of a recent job over its last seconds (0 once ended)",
            labels=("job", "kind"),
        )  # fmt: skip
        for job in self.watch.jobs():
            ids = [job["job_id"], job["kind"]]
            items.add_metric([*ids, "ok"], job["ok"])
            items.add_metric([*ids, "failed"], job["failed"])
            expected.add_metric(ids, job["total"])
            for name in STATES:
                state.add_metric([*ids, name], 1.0 if job["state"] == name else 0.0)
            rate.add_metric(ids, job["recent_items_per_s"] or 0.0)
        yield from (items, expected, state, rate)


def register(board: CoreBoard, watch: Jobs | None = None, registry: CollectorRegistry = REGISTRY) -> list[Collector]:
    collectors: list[Collector] = [CoresCollector(board)]
    if watch is not None:
        collectors.append(JobsCollector(watch))
    for collector in collectors:
        registry.register(collector)
    return collectors
