"""The worker process's runtime, as the task bindings reach it.

Set once by the lifecycle hooks (``tasks.signals``) when the worker starts,
cleared when it stops; tasks only read it.
"""

from __future__ import annotations

from workers.runtime import Runtime

_runtime: Runtime | None = None


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the worker runtime is not started (is this a celery worker?)")
    return _runtime


def install(rt: Runtime | None) -> None:
    global _runtime
    _runtime = rt
