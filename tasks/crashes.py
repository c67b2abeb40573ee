"""What a batch that failed with a bug records for its items (``tasks.flow.guarded``).

Apart from the task bindings, so it can be specified without a Celery app.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from pipeline.core.aggregate import ItemResult

log = logging.getLogger(__name__)


def no_kind() -> str | None:
    return None


def crashed_batch(
    job_id: str, items: Sequence[tuple[str, str]], error: Exception, kind: Callable[[], str | None] = no_kind
) -> list[ItemResult]:
    """Every item of the batch failed as ``internal_error``, named as what it is (``kind()``, e.g. a
    crawl's ``page`` or ``image``) so the job's document counts it where it belongs; an item whose
    kind cannot be told (the lookup fails too) still fails, unnamed."""
    try:
        label = kind()
    except Exception:
        log.exception("the failed batch's kind is unknown", extra={"job_id": job_id})
        label = None
    detail = f"{type(error).__name__}: {error}"
    return [ItemResult.failure(i, src, "internal_error", detail, kind=label) for i, src in items]
