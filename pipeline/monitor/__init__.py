"""Watching a running cluster: throughput per core and jobs in Flower, in Prometheus and in a terminal.

    worker runtime ── workers.metrics: items, busy seconds, items/s per pool slot and stage,
       │              and the items it recorded in the ledger (each once: the headline)
       │  every second: a `pipeline-cores` Celery event (tasks.monitoring)
       │  every 2 s:    the heartbeat record pl:worker:NAME in Redis (workers.heartbeat)
       ▼
    Flower (`pipeline flower`, server.py) ── its events thread ── board.CoreBoard ── history.Timeline
       │                                   ── a thread reading the ledger ── jobs.JobWatch
       ├── /cores, /api/cores, /api/cores/history, /cores/chart.svg    (web.py, charts.py, svg.py)
       ├── /jobs, /jobs/JOB, /api/jobs[/JOB], /jobs/JOB/chart.svg,
       │   POST /jobs/JOB/cancel|retry, /jobs/JOB/files/NAME            (jobs_web.py)
       └── /metrics      Flower's series + pipeline_core_*, pipeline_job_* (prometheus.py)
    `pipeline top` (top.py, terminal.py) ── reads the heartbeat records, queue lengths and the ledger

``cores`` is the one shape of a worker's figures all of these views share.
Only ``server``, ``web``, ``web_base`` and ``jobs_web`` import Flower or
Tornado; the rest is plain Python, tested without a browser.
"""
