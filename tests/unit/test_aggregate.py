"""The first-write-wins fold over item results, checked as properties with hypothesis."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.aggregate import STAGES, ItemResult, Totals
from tests.fold import merge, record

properties = settings(deadline=None, database=None)

# Few ids, so generated lists repeat ids often, with different content each time.
ids = st.sampled_from([f"item{n}" for n in range(6)])
seconds = st.floats(min_value=0, max_value=1e4, allow_nan=False, allow_infinity=False)
sizes = st.integers(min_value=0, max_value=10**9)
slots = st.none() | st.integers(min_value=0, max_value=63)
REASONS = ("http_404", "timeout", "truncated", "not_an_image", "too_large")
FORMATS = ("jpeg", "png", "webp")


def make_result(item_id: str, ok: bool, variant: int, size: int, spent: float, slot: int | None) -> ItemResult:
    """A well-formed result; ``variant`` makes two results for one id differ."""
    stages = {STAGES[variant % len(STAGES)]: spent, "fetch": spent / 2}
    if ok:
        return ItemResult(
            item_id, ok=True, source=f"/photos/{item_id}.png", output=f"{item_id}-{variant}.webp",
            bytes_in=size, bytes_out=size // 3, format=FORMATS[variant % 3], width=variant + 1,
            height=size % 97 + 1, timings=stages, slot=slot,
        )  # fmt: skip
    return ItemResult.failure(
        item_id, f"https://example.com/{item_id}.jpg", REASONS[variant % len(REASONS)],
        f"attempt {variant}", bytes_in=size, timings=stages,
    )  # fmt: skip


# Cheap to draw (the property tests run many examples), yet ids repeat with varying content.
results = st.builds(make_result, ids, st.booleans(), st.integers(0, 30), sizes, seconds, slots)
result_lists = st.lists(results, max_size=8)
ledgers = result_lists.map(lambda rs: record({}, rs))

# Every field drawn independently, with arbitrary text, for the JSON wire format.
text = st.text(max_size=20)
timings = st.dictionaries(st.sampled_from(STAGES), seconds, max_size=len(STAGES))
any_results = st.one_of(
    st.builds(
        ItemResult, id=text, ok=st.just(True), source=text, output=text, bytes_in=sizes, bytes_out=sizes,
        format=st.sampled_from(FORMATS), width=sizes, height=sizes, timings=timings, slot=slots,
    ),
    st.builds(
        ItemResult, id=text, ok=st.just(False), source=text, reason=st.sampled_from(REASONS) | text,
        detail=text, bytes_in=sizes, bytes_out=sizes, timings=timings,
    ),
)  # fmt: skip


def first_per_id(results: list[ItemResult]) -> dict[str, ItemResult]:
    first: dict[str, ItemResult] = {}
    for result in results:
        if result.id not in first:
            first[result.id] = result
    return first


def flat_stats(totals: Totals) -> dict[str, str]:
    """The Redis ``stats`` hash as the Lua script writes it (HGETALL returns strings)."""
    stats = {
        "ok": str(totals.ok),
        "failed": str(totals.failed),
        "bytes_in": str(totals.bytes_in),
        "bytes_out": str(totals.bytes_out),
    }
    stats.update({f"fail:{reason}": str(n) for reason, n in totals.failures.items()})
    stats.update({f"fmt:{fmt}": str(n) for fmt, n in totals.formats.items()})
    stats.update({f"t:{stage}": repr(s) for stage, s in totals.timings.items()})
    return stats


# --- merge ------------------------------------------------------------------------


@properties
@given(ledgers, ledgers, ledgers)
def test_merge_is_associative(a: dict[str, ItemResult], b: dict[str, ItemResult], c: dict[str, ItemResult]) -> None:
    assert merge(merge(a, b), c) == merge(a, merge(b, c))


@properties
@given(ledgers)
def test_merging_a_ledger_with_itself_changes_nothing(a: dict[str, ItemResult]) -> None:
    assert merge(a, a) == a


@properties
@given(ledgers, ledgers)
def test_on_a_shared_id_merge_keeps_the_left_result(a: dict[str, ItemResult], b: dict[str, ItemResult]) -> None:
    merged = merge(a, b)
    assert set(merged) == set(a) | set(b)
    for item_id, result in merged.items():
        assert result is (a[item_id] if item_id in a else b[item_id])


@properties
@given(ledgers)
def test_the_empty_ledger_is_the_identity_of_merge(a: dict[str, ItemResult]) -> None:
    assert merge({}, a) == a == merge(a, {})


# --- record -----------------------------------------------------------------------


@properties
@given(result_lists)
def test_record_keeps_the_first_result_per_id(rs: list[ItemResult]) -> None:
    assert record({}, rs) == first_per_id(rs)


@properties
@given(ledgers, result_lists)
def test_record_never_replaces_a_result_already_in_the_ledger(
    ledger: dict[str, ItemResult], rs: list[ItemResult]
) -> None:
    after = record(ledger, rs)
    for item_id, result in ledger.items():
        assert after[item_id] is result


@properties
@given(ledgers, result_lists)
def test_record_is_a_merge_with_the_results_own_ledger(ledger: dict[str, ItemResult], rs: list[ItemResult]) -> None:
    assert record(ledger, rs) == merge(ledger, record({}, rs))


@properties
@given(result_lists, result_lists)
def test_recording_in_two_batches_equals_recording_at_once(first: list[ItemResult], second: list[ItemResult]) -> None:
    assert record(record({}, first), second) == record({}, first + second)


@properties
@given(ledgers, result_lists)
def test_record_does_not_modify_the_ledger_it_is_given(ledger: dict[str, ItemResult], rs: list[ItemResult]) -> None:
    before = dict(ledger)
    record(ledger, rs)
    assert ledger == before


@properties
@given(st.data(), result_lists)
def test_re_recording_already_recorded_results_changes_neither_ledger_nor_totals(
    data: st.DataObject, rs: list[ItemResult]
) -> None:
    ledger = record({}, rs)
    totals = Totals.of(ledger)
    redelivered = data.draw(st.lists(st.sampled_from(rs), max_size=30) if rs else st.just([]))
    again = record(ledger, redelivered)
    assert again == ledger
    assert list(again) == list(ledger)  # same order, so the float sums are bit-identical too
    assert Totals.of(again) == totals


# --- totals -----------------------------------------------------------------------


@properties
@given(result_lists)
def test_every_distinct_id_is_counted_once_as_ok_or_failed(rs: list[ItemResult]) -> None:
    totals = Totals.of(record({}, rs))
    assert totals.ok + totals.failed == totals.done == len({r.id for r in rs})


@properties
@given(ledgers)
def test_the_failure_reasons_add_up_to_the_failed_count(ledger: dict[str, ItemResult]) -> None:
    totals = Totals.of(ledger)
    assert sum(totals.failures.values()) == totals.failed
    assert totals.failures == Counter(r.reason for r in ledger.values() if not r.ok)


@properties
@given(ledgers)
def test_the_output_formats_add_up_to_the_ok_count(ledger: dict[str, ItemResult]) -> None:
    totals = Totals.of(ledger)
    assert sum(totals.formats.values()) == totals.ok


@properties
@given(ledgers)
def test_bytes_are_summed_over_the_winning_results_only(ledger: dict[str, ItemResult]) -> None:
    totals = Totals.of(ledger)
    assert totals.bytes_in == sum(r.bytes_in for r in ledger.values())
    assert totals.bytes_out == sum(r.bytes_out for r in ledger.values())


def test_a_failure_without_a_reason_is_counted_as_error() -> None:
    totals = Totals.of({"a": ItemResult("a", ok=False)})
    assert totals.failures == Counter({"error": 1})


def test_every_stage_has_a_timing_even_when_nothing_ran() -> None:
    assert Totals.of({}).timings == dict.fromkeys(STAGES, 0.0)


def test_timings_are_summed_per_stage() -> None:
    ledger = record({}, [
        ItemResult("a", ok=True, timings={"fetch": 1.5, "store": 0.25}),
        ItemResult("b", ok=False, reason="timeout", timings={"fetch": 2.0}),
    ])  # fmt: skip
    assert Totals.of(ledger).timings == {"queue": 0.0, "fetch": 3.5, "parse": 0.0, "transform": 0.0, "store": 0.25}


# --- wire formats -----------------------------------------------------------------


@properties
@given(any_results)
def test_an_item_result_survives_a_json_round_trip(result: ItemResult) -> None:
    assert ItemResult.from_json(json.loads(json.dumps(result.to_json()))) == result


@properties
@given(
    any_results,
    st.none() | st.sampled_from(["image", "page", "ünïcode"]),
    st.dictionaries(text, st.booleans() | text | sizes, max_size=3),
    st.dictionaries(text, st.floats() | sizes, max_size=4),
)
def test_the_fast_json_text_is_exactly_what_json_dumps_writes(
    result: ItemResult, kind: str | None, meta: dict[str, object], odd_timings: dict[str, float]
) -> None:
    for variant in (result, replace(result, kind=kind, meta=meta), replace(result, timings=odd_timings)):
        assert variant.to_json_text() == json.dumps(variant.to_json(), separators=(",", ":"))


def test_failure_json_carries_the_reason_and_detail_not_the_output() -> None:
    raw = ItemResult.failure("a", "http://x/y.jpg", "http_404", "gone").to_json()
    assert raw["reason"] == "http_404"
    assert raw["detail"] == "gone"
    assert "output" not in raw


def test_failure_details_are_capped_at_500_characters() -> None:
    assert len(ItemResult.failure("a", "src", "corrupt_image", "x" * 10_000).detail) == 500


def test_the_slot_is_left_out_of_the_json_when_unknown() -> None:
    assert "slot" not in ItemResult("a", ok=True).to_json()
    assert ItemResult("a", ok=True, slot=3).to_json()["slot"] == 3


@properties
@given(ledgers)
def test_totals_read_back_from_the_flat_stats_hash_equal_the_totals_of_the_ledger(
    ledger: dict[str, ItemResult],
) -> None:
    totals = Totals.of(ledger)
    assert Totals.from_stats(flat_stats(totals)) == totals


def test_from_stats_reads_each_kind_of_key() -> None:
    totals = Totals.from_stats({
        "ok": "3", "failed": "2", "bytes_in": "1000", "bytes_out": "400",
        "fail:http_404": "1", "fail:truncated": "1", "fmt:webp": "3",
        "t:fetch": "1.25", "t:transform": "0.5", "duplicates": "4", "unexpected": "1",
    })  # fmt: skip
    assert (totals.ok, totals.failed, totals.bytes_in, totals.bytes_out) == (3, 2, 1000, 400)
    assert totals.failures == Counter({"http_404": 1, "truncated": 1})
    assert totals.formats == Counter({"webp": 3})
    assert totals.timings == {"queue": 0.0, "fetch": 1.25, "parse": 0.0, "transform": 0.5, "store": 0.0}
    assert (totals.duplicates, totals.unexpected) == (4, 1)
    assert totals.done == 5


def test_from_stats_ignores_keys_it_does_not_know() -> None:
    assert Totals.from_stats({"ok": "1", "something_new": "7"}) == Totals(ok=1)


def test_from_stats_of_an_empty_hash_is_all_zero() -> None:
    assert Totals.from_stats({}) == Totals()
