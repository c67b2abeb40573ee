"""The Redis ledger implements the pure fold exactly, atomically, and once.

Hypothesis drives the Lua scripts on a real Redis and checks them against
``pipeline.core.aggregate``: same totals for any arrival order, re-deliveries
change nothing, the job ends exactly once.
"""

from __future__ import annotations

import threading
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.core.aggregate import ItemResult, Totals
from pipeline.ledger import Ledger
from tests.fold import record
from tests.helpers import expect_items

IDS = [f"item{i}" for i in range(12)]
results = st.builds(
    ItemResult,
    id=st.sampled_from(IDS),
    ok=st.booleans(),
    reason=st.sampled_from(["http_404", "timeout", "not_an_image"]),
    bytes_in=st.integers(0, 10_000),
    bytes_out=st.integers(0, 10_000),
    format=st.sampled_from(["jpeg", "webp"]),
    timings=st.fixed_dictionaries({"transform": st.floats(0, 2, allow_nan=False), "queue": st.floats(0, 1)}),
)
LEDGER_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _job(ledger: Ledger, ids: list[str] = IDS) -> str:
    job_id = f"test-{uuid.uuid4().hex[:10]}"
    ledger.create_job(job_id, "images", {}, "/tmp/out")
    expect_items(ledger, job_id, ids)
    return job_id


def _normalised(totals: Totals) -> tuple[object, ...]:
    """Compare counters exactly and float sums to rounding (Redis sums in its own order)."""
    timings = {k: round(v, 6) for k, v in totals.timings.items() if round(v, 6)}
    return (totals.ok, totals.failed, totals.bytes_in, totals.bytes_out, dict(totals.failures),
            dict(totals.formats), timings)  # fmt: skip


@LEDGER_SETTINGS
@given(arrivals=st.lists(results, max_size=40), cut=st.integers(1, 8))
def test_redis_totals_equal_the_pure_fold_for_any_arrival_order(
    ledger: Ledger, arrivals: list[ItemResult], cut: int
) -> None:
    job_id = _job(ledger)
    for start in range(0, len(arrivals), cut):
        ledger.record(job_id, arrivals[start : start + cut])
    expected = Totals.of(record({}, arrivals))
    assert _normalised(ledger.totals(job_id)) == _normalised(expected)


@LEDGER_SETTINGS
@given(arrivals=st.lists(results, min_size=1, max_size=30), replay=st.data())
def test_redelivering_any_subset_of_results_changes_nothing(
    ledger: Ledger, arrivals: list[ItemResult], replay: st.DataObject
) -> None:
    job_id = _job(ledger)
    ledger.record(job_id, arrivals)
    before = _normalised(ledger.totals(job_id))
    again = replay.draw(st.lists(st.sampled_from(arrivals), max_size=20))
    added, _ = ledger.record(job_id, again)
    assert added == 0
    assert _normalised(ledger.totals(job_id)) == before


def test_results_for_items_the_job_never_had_are_counted_as_unexpected_and_ignored(ledger: Ledger) -> None:
    job_id = _job(ledger, ["a"])
    added, _ = ledger.record(job_id, [ItemResult("stranger", ok=True), ItemResult("a", ok=True)])
    totals = ledger.totals(job_id)
    assert (added, totals.ok, totals.unexpected) == (1, 1, 1)


def test_the_job_ends_exactly_once_when_many_threads_record_its_last_items(ledger: Ledger) -> None:
    ids = [f"i{n}" for n in range(200)]
    job_id = _job(ledger, ids)
    ledger.seal(job_id)
    finishers: list[bool] = []
    lock = threading.Lock()

    def worker(chunk: list[str]) -> None:
        for item_id in chunk:  # every thread records every item of its chunk twice
            for _ in range(2):
                _, finished = ledger.record(job_id, [ItemResult(item_id, ok=True)])
                with lock:
                    finishers.append(finished)

    chunks = [ids[n::8] for n in range(8)]
    threads = [threading.Thread(target=worker, args=(c + c[:5],)) for c in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert finishers.count(True) == 1
    assert ledger.meta(job_id).state == "succeeded"


def test_sealing_after_the_last_result_ends_the_job_and_sealing_again_does_not(ledger: Ledger) -> None:
    job_id = _job(ledger, ["a", "b"])
    ledger.record(job_id, [ItemResult("a", ok=True), ItemResult("b", ok=False, reason="timeout")])
    assert ledger.meta(job_id).state == "running"
    assert ledger.seal(job_id) is True
    assert ledger.seal(job_id) is False
    assert ledger.meta(job_id).state == "succeeded"


def test_a_cancelled_job_keeps_its_partial_aggregate_and_never_changes_state_again(ledger: Ledger) -> None:
    job_id = _job(ledger, ["a", "b", "c"])
    ledger.seal(job_id)
    ledger.record(job_id, [ItemResult("a", ok=True)])
    assert ledger.cancel(job_id) is True
    assert ledger.cancel(job_id) is False
    ledger.record(job_id, [ItemResult("b", ok=True), ItemResult("c", ok=True)])
    meta = ledger.meta(job_id)
    assert meta.state == "cancelled"
    assert ledger.totals(job_id).ok == 3  # late results are kept, the state is not revived


def test_job_keys_expire_together_after_the_retention(ledger: Ledger) -> None:
    job_id = _job(ledger, ["a"])
    ledger.record(job_id, [ItemResult("a", ok=True)])
    ledger.expire(job_id, 100)
    keys = [k for k in ledger.client.scan_iter(match=f"pl:job:{job_id}*")]
    ttls = [ledger.client.ttl(k) for k in keys]
    assert keys and all(0 < ttl <= 100 for ttl in ttls)


def test_recent_jobs_lists_newest_first(ledger: Ledger) -> None:
    first, second = _job(ledger), _job(ledger)
    listed = [m.job_id for m in ledger.recent_jobs(500)]
    assert listed.index(second) < listed.index(first)
