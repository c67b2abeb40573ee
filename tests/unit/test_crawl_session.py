"""A crawl batch's session (``workers.crawl_stages._Session``): how claims, fetches and recordings overlap.

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
from types import SimpleNamespace
from typing import Any

import pytest

from pipeline.core.errors import FetchError
from pipeline.core.fetch import Fetched
from workers import crawl_stages
from workers.crawl_stages import FetchOutcome, PageEntry

TARGET = 16


class Holds:
    """The worker's body budget: which holds were taken and not yet released."""

    def __init__(self) -> None:
        self.live: set[_Hold] = set()

    def hold(self) -> _Hold:
        return _Hold(self)


class _Hold:
    def __init__(self, holds: Holds) -> None:
        self.holds = holds
        holds.live.add(self)

    def release(self) -> None:
        self.holds.live.discard(self)


class Frontier:
    """``total`` numbered pages handed out by ``refill``; records what was asked, when, and what was recorded."""

    def __init__(self, total: int, record_s: float = 0.03, fetch_s: float = 0.002) -> None:
        self.total, self.record_s, self.fetch_s = total, record_s, fetch_s
        self.next = 0
        self.lock = threading.Lock()
        self.claims: list[tuple[float, int, int]] = []  # (when, asked, unrecorded before the claim)
        self.recordings: list[tuple[float, float]] = []  # (start, end)
        self.recorded: list[str] = []

    def entries(self, n: int) -> list[PageEntry]:
        with self.lock:
            ids = range(self.next, min(self.total, self.next + n))
            self.next = ids.stop
        return [PageEntry(str(i), f"http://site.test/{i}.html", 1, 0.0) for i in ids]

    def refill(self, wanted: int) -> list[PageEntry]:
        with self.lock:
            self.claims.append((time.monotonic(), wanted, self.next - len(self.recorded)))
        return self.entries(wanted)

    def record(self, rt: Any, job_id: str, job: Any, outcomes: list[FetchOutcome], parser: Any) -> tuple[int, bool]:
        started = time.monotonic()
        time.sleep(self.record_s)  # a pool round trip and a Lua call
        with self.lock:
            self.recorded += [entry.id for entry, _, _ in outcomes]
            self.recordings.append((started, time.monotonic()))
        return len(outcomes), False

    async def fetch(self, rt: Any, entry: PageEntry, *args: Any) -> FetchOutcome:
        seconds = self.fetch_s * (1 + int(entry.id) % 10)  # pages answer at different speeds, as sites do
        await asyncio.sleep(seconds)
        return entry, Fetched(b"<html></html>", "text/html", entry.url, 1, seconds), seconds


@pytest.fixture
def frontier(monkeypatch: pytest.MonkeyPatch) -> Frontier:
    site = Frontier(total=160)
    monkeypatch.setattr(crawl_stages, "_fetch_one", site.fetch)
    monkeypatch.setattr(crawl_stages, "_record", site.record)
    monkeypatch.setattr(crawl_stages, "SESSION_S", 60.0)  # a slow machine must not end the claims early
    return site


def _session(site: Frontier, deadline_s: float = 30.0, holds: Holds | None = None, first: int = TARGET) -> Any:
    rt = SimpleNamespace(settings=SimpleNamespace(task_deadline_s=deadline_s), bodies=holds or Holds())
    job = SimpleNamespace(guard=SimpleNamespace(limits=SimpleNamespace(concurrency=TARGET)))
    return crawl_stages._session(rt, "job", job, None, None, site.entries(first), site.refill)  # type: ignore[arg-type]


def _run(site: Frontier, deadline_s: float = 30.0, holds: Holds | None = None, first: int = TARGET) -> tuple[int, bool]:
    result: tuple[int, bool] = asyncio.run(_session(site, deadline_s, holds, first))
    return result


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


def test_fetches_still_running_at_the_deadline_fail_as_deadline(
    frontier: Frontier, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcomes: list[FetchOutcome] = []

    async def hang(rt: Any, entry: PageEntry, *args: Any) -> FetchOutcome:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    def record(rt: Any, job_id: str, job: Any, group: list[FetchOutcome], parser: Any) -> tuple[int, bool]:
        outcomes.extend(group)
        return len(group), False

    monkeypatch.setattr(crawl_stages, "_fetch_one", hang)
    monkeypatch.setattr(crawl_stages, "_record", record)
    started = time.monotonic()
    counted, _ = _run(frontier, deadline_s=0.3)
    assert time.monotonic() - started < 5
    assert counted == len(outcomes) == frontier.next
    assert {o.reason for _, o, _ in outcomes if isinstance(o, FetchError)} == {"deadline"}
    assert all(isinstance(o, FetchError) for _, o, _ in outcomes)


def test_a_failed_recording_ends_the_session_with_its_error(
    frontier: Frontier, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> tuple[int, bool]:
        raise ConnectionError("redis went away")

    monkeypatch.setattr(crawl_stages, "_record", broken)
    with pytest.raises(ConnectionError, match="redis went away"):
        _run(frontier)


def test_no_page_is_claimed_past_the_deadline(frontier: Frontier, monkeypatch: pytest.MonkeyPatch) -> None:
    async def hang(rt: Any, entry: PageEntry, *args: Any) -> FetchOutcome:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    monkeypatch.setattr(crawl_stages, "_fetch_one", hang)
    monkeypatch.setattr(crawl_stages, "_record", lambda rt, job_id, job, group, parser: (len(group), False))
    _run(frontier, deadline_s=0.3)
    assert frontier.next == TARGET  # the first batch only: a page claimed past the deadline would fail unfetched


def test_every_hold_on_the_body_budget_is_released(frontier: Frontier) -> None:
    holds = Holds()
    _run(frontier, holds=holds)
    assert not holds.live


def test_holds_are_released_even_if_cancelled_again_while_a_recording_finishes(frontier: Frontier) -> None:
    frontier.record_s = 0.2
    holds = Holds()

    async def cancel_twice() -> None:
        task = asyncio.create_task(_session(frontier, holds=holds))
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
        self.recorded_once = threading.Event()

    def refill(self, wanted: int) -> list[PageEntry]:
        with self.lock:
            self.claims.append((time.monotonic(), wanted, self.next - len(self.recorded)))
            empty = self.next >= self.total
        if not empty:
            return self.entries(wanted)
        self.recorded_once.wait(5.0)
        time.sleep(0.01)  # returns after the recording has been accounted for
        return []

    def record(self, rt: Any, job_id: str, job: Any, outcomes: list[FetchOutcome], parser: Any) -> tuple[int, bool]:
        result = super().record(rt, job_id, job, outcomes, parser)
        with self.lock:
            self.total = 6
        self.recorded_once.set()
        return result


def test_a_short_claim_that_overlapped_an_admitting_recording_is_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    site = AdmittingFrontier()
    monkeypatch.setattr(crawl_stages, "_fetch_one", site.fetch)
    monkeypatch.setattr(crawl_stages, "_record", site.record)
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
