"""A batch that fails with a bug (``tasks.flow.guarded`` records ``tasks.crashes.crashed_batch``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tasks.crashes import crashed_batch

ITEMS = [("a", "http://x/a"), ("b", "http://x/b")]


def _unknown() -> str | None:
    raise RuntimeError("the job record is gone")


def test_every_item_of_a_crashed_batch_fails_as_an_internal_error() -> None:
    failures = crashed_batch("job", ITEMS, KeyError("a bug"))
    assert [(r.id, r.source, r.ok, r.reason) for r in failures] == [
        ("a", "http://x/a", False, "internal_error"),
        ("b", "http://x/b", False, "internal_error"),
    ]
    assert all(r.detail == "KeyError: 'a bug'" for r in failures)


@pytest.mark.parametrize("kind", ["page", "image"])
def test_a_crashed_batch_names_its_items_kind(kind: str) -> None:
    failures = crashed_batch("job", ITEMS, KeyError("a bug"), kind=lambda: kind)
    assert [r.to_json()["kind"] for r in failures] == [kind, kind]  # what record.lua counts as failed:<kind>


@pytest.mark.parametrize("kind", [lambda: None, _unknown])
def test_items_of_an_unknown_kind_still_fail_unnamed(kind: Callable[[], str | None]) -> None:
    failures = crashed_batch("job", ITEMS, KeyError("a bug"), kind=kind)
    assert [(r.reason, "kind" in r.to_json()) for r in failures] == [("internal_error", False)] * 2
