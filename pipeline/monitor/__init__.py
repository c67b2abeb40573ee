"""Watching a running cluster: per-core throughput in Flower, in Prometheus and in a terminal.

    worker runtime ── workers.metrics: items, busy seconds, items/s per pool slot and stage
       │  every second: a `pipeline-cores` Celery event (tasks.monitoring)
       │  every 2 s:    the heartbeat record pl:worker:NAME in Redis (workers.heartbeat)
       ▼
    Flower (`pipeline flower`, server.py) ── its events thread ── board.CoreBoard
       ├── /cores        the Cores page (web.py, templates/cores.html), polling /api/cores
       ├── /api/cores    the same figures as JSON
       └── /metrics      Flower's series + pipeline_core_* (prometheus.py)
    `pipeline top` (top.py, terminal.py) ── reads the heartbeat records, queue lengths and the ledger

``cores`` is the one shape all of these views share.
"""
