"""The worker's Celery app, configured from the environment.

Start a worker with ``pipeline worker`` (or ``celery -A tasks.app worker``);
``pipeline up`` starts several for you.
"""

from __future__ import annotations

from celery import Celery

import tasks.control  # noqa: F401  # registers `plugin_importable` for `celery -A tasks.app inspect` too
from pipeline.config import Settings
from pipeline.localredis import resolve_redis_url
from tasks.factory import create_app


def _worker_app() -> Celery:
    settings = Settings.load()
    return create_app(settings, resolve_redis_url(settings), worker=True)


app = _worker_app()
