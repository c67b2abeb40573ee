"""The result cache's key and entry format, and how cache hits are counted and shown."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.cli.render import status_line
from pipeline.core.aggregate import ItemResult, Totals
from pipeline.core.cache_key import CachedOutput, cache_digest, decode_entry, encode_entry, plan_digest
from pipeline.core.document import JobMeta, build_document
from pipeline.core.imaging import TransformPlan
from pipeline.core.ops import parse_ops
from tests.fold import record

SOURCE = b"\xff\xd8 some jpeg bytes \xff\xd9"


def plan(ops: str = "thumbnail:256", fmt: str = "webp", quality: int = 85, max_pixels: int = 64_000_000) -> Any:
    return TransformPlan(parse_ops(ops), fmt, quality, max_pixels).to_json()


def key(source: bytes = SOURCE, **plan_args: Any) -> str:
    return cache_digest(source, plan_digest(plan(**plan_args)))


# --- the key -------------------------------------------------------------------------------


def test_the_same_bytes_and_plan_give_the_same_key() -> None:
    assert key() == key()
    assert len(key()) == 64


def test_a_plan_rebuilt_from_its_json_gives_the_same_key() -> None:
    assert key() == cache_digest(SOURCE, plan_digest(TransformPlan.from_json(plan()).to_json()))


def test_the_key_does_not_depend_on_the_order_of_the_plan_fields() -> None:
    shuffled = dict(reversed(list(plan().items())))
    assert plan_digest(shuffled) == plan_digest(plan())


def test_different_bytes_give_a_different_key() -> None:
    assert key(SOURCE + b"\0") != key()


def test_every_field_that_changes_the_output_changes_the_key() -> None:
    variants = [
        key(ops="thumbnail:128"),
        key(ops="thumbnail:256,grayscale"),
        key(ops="grayscale,thumbnail:256"),
        key(ops="noexif,thumbnail:256"),
        key(fmt="jpeg"),
        key(fmt="png"),
        key(quality=84),
        key(max_pixels=1_000_000),  # decides whether the item fails: a hit must not skip the check
    ]
    assert len({key(), *variants}) == len(variants) + 1


def test_a_new_pillow_version_is_a_new_key_space() -> None:
    assert plan_digest(plan(), engine="pillow-99.0") != plan_digest(plan())


@settings(deadline=None, database=None)
@given(st.binary(max_size=64), st.binary(max_size=64))
def test_distinct_sources_never_share_a_key(first: bytes, second: bytes) -> None:
    assert (key(first) == key(second)) == (first == second)


# --- the entry ------------------------------------------------------------------------------


def test_an_entry_round_trips_bytes_and_size() -> None:
    output = CachedOutput(b"RIFF....WEBPVP8 ", 256, 192)
    assert decode_entry(encode_entry(output)) == output


def test_anything_that_is_not_an_entry_reads_as_a_miss() -> None:
    good = encode_entry(CachedOutput(b"data", 3, 4))
    for raw in (None, "a str", good.decode("latin-1"), b"", good[:12], b"xxxx" + good[4:], 42):
        assert decode_entry(raw) is None, raw


# --- counting and showing hits ---------------------------------------------------------------


def result(item_id: str, *, cached: bool, ok: bool = True) -> ItemResult:
    meta = {"cached": True} if cached else {}
    if not ok:
        return ItemResult.failure(item_id, "src", "truncated", meta=meta)
    return ItemResult(item_id, ok=True, format="webp", meta=meta)


def test_hits_are_counted_once_per_item_id_first_write_wins() -> None:
    ledger = record({}, [result("a", cached=True), result("a", cached=False), result("b", cached=False),
                         result("b", cached=True), result("c", cached=True)])  # fmt: skip
    assert Totals.of(ledger).cache_hits == 2


def test_only_successful_items_count_as_hits() -> None:
    assert Totals.of(record({}, [result("a", cached=True, ok=False)])).cache_hits == 0


def test_hits_survive_the_json_wire_format_and_the_stats_hash() -> None:
    raw = result("a", cached=True).to_json()
    assert raw["meta"] == {"cached": True}
    assert Totals.of({"a": ItemResult.from_json(raw)}).cache_hits == 1
    assert Totals.from_stats({"ok": "3", "cache_hits": "2"}).cache_hits == 2
    assert Totals.from_stats({"ok": "3"}).cache_hits == 0


def document(hits: int) -> dict[str, Any]:
    meta = JobMeta("job-1", "images", "succeeded", 100.0, "/out", total=4, finished_at=101.0)
    return build_document(meta, Totals(ok=4, cache_hits=hits), now=102.0)


def test_the_document_and_the_status_line_show_hits() -> None:
    assert document(3)["cache_hits"] == 3
    assert document(0)["cache_hits"] == 0
    assert "3 cached" in status_line(document(3))
    assert "cached" not in status_line(document(0))
