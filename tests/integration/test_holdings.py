"""Held items and their takeover, against a real Redis: the Lua scripts of ``pipeline.holdings``.

No worker here: the scripts are driven directly, with a real ledger whose
``dispatch`` (the pump's claim) shows what would be sent again.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from pipeline.ledger import Ledger
from pipeline.ledger.holdings import Holdings
from pipeline.ledger.keys import LIVE_PREFIX, job_key
from workers.takeover import Takeover

LEASE_S = 300.0


@pytest.fixture
def job(ledger: Ledger) -> Iterator[str]:
    """An image job with items a, b, c, all dispatched (leased for 300 s)."""
    job_id = "holdings-" + secrets.token_hex(4)
    ledger.create_job(job_id, "images", {}, "/tmp/out", window=10, batch=1)
    ledger.admit_items(job_id, [(item, f"/src/{item}.png", "f") for item in "abc"])
    assert sorted(c.id for c in ledger.dispatch(job_id, LEASE_S, 10)) == ["a", "b", "c"]
    yield job_id
    ledger.client.delete(*(job_key(job_id, part) for part in ("", "items", "urls", "frontier", "leases", "held",
                                                                 "owners")))  # fmt: skip


def test_a_later_holder_overwrites_and_only_the_holder_releases(ledger: Ledger, job: str) -> None:
    holdings = Holdings(ledger.client)
    holdings.hold(job, "w1|i1", ["a", "b"], 60)
    holdings.hold(job, "w2|i2", ["b"], 60)  # b was re-sent and now runs on w2
    assert holdings.release(job, "w1|i1", ["a", "b"]) == 1
    assert holdings.held_by(job) == {"b": "w2|i2"}
    assert holdings.owners([job]) == {job: {"w1|i1", "w2|i2"}}
    assert 0 < ledger.client.ttl(job_key(job, "held")) <= 60


def test_taking_over_sends_again_only_what_the_dead_owner_holds_and_is_still_leased(ledger: Ledger, job: str) -> None:
    holdings = Holdings(ledger.client)
    holdings.hold(job, "dead|x", ["a", "b"], 60)
    holdings.hold(job, "live|y", ["c"], 60)
    ledger.client.zrem(job_key(job, "leases"), "b")  # b was recorded: no lease, never sent again
    assert ledger.dispatch(job, LEASE_S, 10) == []  # nothing expired yet
    assert holdings.take_over(job, ["dead|x"]) == 1
    assert [item.id for item in ledger.dispatch(job, LEASE_S, 10)] == ["a"]
    assert holdings.held_by(job) == {"c": "live|y"}
    assert holdings.owners([job]) == {job: {"live|y"}}
    assert ledger.dispatch(job, LEASE_S, 10) == []  # a is leased again: sent once


def test_a_worker_is_live_only_under_the_instance_that_beats(ledger: Ledger) -> None:
    node = "node-" + secrets.token_hex(4)
    ledger.client.set(LIVE_PREFIX + node, "now", px=5000)
    try:
        owners = {f"{node}|now", f"{node}|before", "gone-" + secrets.token_hex(4) + "|x"}
        assert Holdings(ledger.client).live_owners(owners) == {f"{node}|now"}
    finally:
        ledger.client.delete(LIVE_PREFIX + node)


def test_a_sweep_takes_over_dead_owners_but_never_its_own_items(ledger: Ledger, job: str) -> None:
    holdings = Holdings(ledger.client)
    me = "me-" + secrets.token_hex(4) + "|i"  # no pl:live key, as when Redis lost it for a moment
    holdings.hold(job, me, ["a"], 60)
    holdings.hold(job, "gone|i", ["b"], 60)
    assert Takeover(holdings, me, 60).sweep([job]) == 1
    assert holdings.held_by(job) == {"a": me}
    assert [item.id for item in ledger.dispatch(job, LEASE_S, 10)] == ["b"]
