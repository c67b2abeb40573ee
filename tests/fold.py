"""The reference fold the Redis ledger must equal: first result per item id wins.

``merge`` is associative and idempotent (property-tested in
``tests/unit/test_aggregate.py``); ``record`` folds results in arrival order,
as ``lua/record.lua`` does; ``Totals.of(record(...))`` must equal the ledger's
counters for the same results.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pipeline.core.aggregate import ItemResult


def merge(first: Mapping[str, ItemResult], second: Mapping[str, ItemResult]) -> dict[str, ItemResult]:
    """Union of two partial ledgers; on a shared id the left (earlier) result wins."""
    merged = dict(second)
    merged.update(first)
    return merged


def record(ledger: Mapping[str, ItemResult], results: Iterable[ItemResult]) -> dict[str, ItemResult]:
    """Fold results into a ledger in arrival order (what the Redis script does)."""
    out = dict(ledger)
    for result in results:
        out.setdefault(result.id, result)
    return out
