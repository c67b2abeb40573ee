"""Per-core Prometheus series on Flower's ``/metrics``, read from the board at scrape time.

A custom collector rather than Counter objects: the workers keep the counts;
Flower only relays their latest totals, so each scrape reports exactly what
the board holds, and a forgotten worker's series simply stop. (Pattern:
prometheus_client's "Custom Collectors" documentation.) Flower's ``/metrics``
handler exposes the default registry, where ``register`` puts this.

    pipeline_core_items_total{worker,core,stage}          items finished (counter)
    pipeline_core_busy_seconds_total{worker,core,stage}   time spent on them (counter)
    pipeline_core_items_per_second{worker,core,stage}     the worker's recent-window rate (gauge)

``core`` is the pool slot number, or ``io`` for fetch/store work outside the pool.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline.monitor.board import CoreBoard
from pipeline.monitor.cores import stage_lines

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
        for line in stage_lines(self.board.workers()):
            labels = [line.worker, line.core, line.stage]
            items.add_metric(labels, line.items)
            busy.add_metric(labels, line.busy_s)
            rate.add_metric(labels, line.items_per_s)
        yield from (items, busy, rate)


def register(board: CoreBoard, registry: CollectorRegistry = REGISTRY) -> CoresCollector:
    collector = CoresCollector(board)
    registry.register(collector)
    return collector
