"""A crawl batch's session (``workers.crawl_session.Session``): how claims, fetches and recordings overlap.

The session's collaborators are replaced here by in-process fakes (a fetch that
answers after a few ms, a recording that takes a while on its thread, a frontier
of numbered pages), so what is specified is the session's own scheduling; the
real fetch, pool and ledger are exercised by the integration tests.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from pipeline.core.errors import FetchError
from pipeline.core.fetch import Fetched
from workers import crawl_session
from workers.crawl_session import FetchOutcome, PageEntry, Session

TARGET = 16


class Holds:
    """The worker's body budget: which holds were taken and not yet released."""

    def __init__(self) -> None:
        self.live: set[_Hold] = set()
        self.released = threading.Event()  # set by every release: what a recording's end looks like

    def hold(self) -> _Hold:
        return _Hold(self)


class _Hold:
    def __init__(self, holds: Holds) -> None:
        self.holds = holds
        holds.live.add(self)

    def release(self) -> None:
        self.holds.live.discard(self)
        self.holds.released.set()


class Frontier:
    """``total`` numbered pages handed out by ``refill``; records what was asked, when, and what was recorded."""

    def __init__(self, total: int, record_s: float = 0.03, fetch_s: float = 0.002) -> None:
        self.total, self.record_s, self.fetch_s = total, record_s, fetch_s
        self.next = 0
        self.lock = threading.Lock()
        self.claims: list[tuple[float, int, int]] = []  # (when, asked, unrecorded before the claim)
        self.recordings: list[tuple[float, float]] = []  # (start, end)
        self.recorded: list[str] = []
        self.holds = Holds()

    def entries(self, n: int) -> list[PageEntry]:
        with self.lock:
            ids = range(self.next, min(self.total, self.next + n))
            self.next = ids.stop
        return [PageEntry(str(i), f"http://site.test/{i}.html", 1, 0.0) for i in ids]

    def refill(self, wanted: int) -> list[PageEntry]:
        with self.lock:
            self.claims.append((time.monotonic(), wanted, self.next - len(self.recorded)))
        return self.entries(wanted)

    def record(self, outcomes: list[FetchOutcome]) -> tuple[int, bool]:
        started = time.monotonic()
        time.sleep(self.record_s)  # a pool round trip and a Lua call
        with self.lock:
            self.recorded += [entry.id for entry, _, _ in outcomes]
            self.recordings.append((started, time.monotonic()))
        return len(outcomes), False

    async def fetch(self, entry: PageEntry, hold: Any) -> FetchOutcome:
        seconds = self.fetch_s * (1 + int(entry.id) % 10)  # pages answer at different speeds, as sites do
        await asyncio.sleep(seconds)
        return entry, Fetched(b"<html></html>", "text/html", entry.url, 1, seconds), seconds


@pytest.fixture(autouse=True)
def long_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crawl_session, "SESSION_S", 60.0)  # a slow machine must not end the claims early


@pytest.fixture
def frontier() -> Frontier:
    return Frontier(total=160)


Fetch = Callable[[PageEntry, Any], Coroutine[Any, Any, FetchOutcome]]
Record = Callable[[list[FetchOutcome]], tuple[int, bool]]


async def _session(
    site: Frontier,
    deadline_s: float = 30.0,
    first: int = TARGET,
    fetch: Fetch | None = None,
    record: Record | None = None,
) -> tuple[int, bool]:
    session = Session(fetch or site.fetch, record or site.record, site.holds.hold, site.refill, TARGET, deadline_s)  # type: ignore[arg-type]
    return await session.run(site.entries(first))


def _run(
    site: Frontier,
    deadline_s: float = 30.0,
    first: int = TARGET,
    fetch: Fetch | None = None,
    record: Record | None = None,
) -> tuple[int, bool]:
    return asyncio.run(_session(site, deadline_s, first, fetch, record))


def test_pages_are_claimed_while_a_group_is_being_recorded(frontier: Frontier) -> None:
    _run(frontier)
    during = [when for when, _, _ in frontier.claims if any(a < when < b for a, b in frontier.recordings)]
    assert during, "every claim waited for the recording before it to end"


def test_every_claimed_page_is_recorded_exactly_once(frontier: Frontier) -> None:
    counted, ended = _run(frontier)
    assert sorted(frontier.recorded, key=int) == [str(i) for i in range(frontier.total)]
    assert (counted, ended) == (frontier.total, False)


def test_pages_fetched_but_not_recorded_stay_within_twice_the_target(frontier: Frontier) -> None:
    _run(frontier)
    assert frontier.claims
    assert all(unrecorded + asked <= 2 * TARGET for _, asked, unrecorded in frontier.claims)


def test_recordings_never_overlap(frontier: Frontier) -> None:
    _run(frontier)
    spans = sorted(frontier.recordings)
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))


async def _hang(entry: PageEntry, hold: Any) -> FetchOutcome:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def test_fetches_still_running_at_the_deadline_fail_as_deadline(frontier: Frontier) -> None:
    outcomes: list[FetchOutcome] = []

    def record(group: list[FetchOutcome]) -> tuple[int, bool]:
        outcomes.extend(group)
        return len(group), False

    started = time.monotonic()
    counted, _ = _run(frontier, deadline_s=0.3, fetch=_hang, record=record)
    assert time.monotonic() - started < 5
    assert counted == len(outcomes) == frontier.next
    assert {o.reason for _, o, _ in outcomes if isinstance(o, FetchError)} == {"deadline"}
    assert all(isinstance(o, FetchError) for _, o, _ in outcomes)


def test_a_failed_recording_ends_the_session_with_its_error(frontier: Frontier) -> None:
    def broken(group: list[FetchOutcome]) -> tuple[int, bool]:
        raise ConnectionError("redis went away")

    with pytest.raises(ConnectionError, match="redis went away"):
        _run(frontier, record=broken)


def test_no_page_is_claimed_past_the_deadline(frontier: Frontier) -> None:
    _run(frontier, deadline_s=0.3, fetch=_hang, record=lambda group: (len(group), False))
    assert frontier.next == TARGET  # the first batch only: a page claimed past the deadline would fail unfetched


def test_every_hold_on_the_body_budget_is_released(frontier: Frontier) -> None:
    holds = frontier.holds
    _run(frontier)
    assert not holds.live


def test_holds_are_released_even_if_cancelled_again_while_a_recording_finishes(frontier: Frontier) -> None:
    frontier.record_s = 0.2
    holds = frontier.holds

    async def cancel_twice() -> None:
        task = asyncio.create_task(_session(frontier))
        while not holds.live or not frontier.claims:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)  # the first group is in its recording thread
        task.cancel()
        await asyncio.sleep(0.01)
        task.cancel()  # e.g. the loop's drain after a caller's timeout
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_twice())
    assert not holds.live


class AdmittingFrontier(Frontier):
    """One page whose recording admits five more, and a claim that reads the frontier before that
    recording and returns after it (a slow claim: publishing other tasks, a loaded machine)."""

    def __init__(self) -> None:
        super().__init__(total=1)

    def refill(self, wanted: int) -> list[PageEntry]:
        with self.lock:
            self.claims.append((time.monotonic(), wanted, self.next - len(self.recorded)))
            empty = self.next >= self.total
        if not empty:
            return self.entries(wanted)
        self.holds.released.wait(5.0)  # returns once the session has accounted for the recording
        return []

    def record(self, outcomes: list[FetchOutcome]) -> tuple[int, bool]:
        result = super().record(outcomes)
        with self.lock:
            self.total = 6
        return result


def test_a_short_claim_that_overlapped_an_admitting_recording_is_asked_again() -> None:
    site = AdmittingFrontier()
    _run(site, first=1)
    assert sorted(site.recorded, key=int) == [str(i) for i in range(6)]


def test_an_empty_frontier_is_asked_again_only_after_a_recording(frontier: Frontier) -> None:
    asked_short: list[int] = []
    claim = frontier.refill

    def refill(wanted: int) -> list[PageEntry]:
        got = claim(wanted)
        if len(got) < wanted:
            asked_short.append(wanted)
        return got

    frontier.refill = refill  # type: ignore[method-assign]
    _run(frontier)
    assert asked_short
    assert len(asked_short) <= len(frontier.recordings) + 1
