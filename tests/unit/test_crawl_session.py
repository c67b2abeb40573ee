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


class _Hold:
    def release(self) -> None:
        pass


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
    return site


def _run(site: Frontier, deadline_s: float = 30.0) -> tuple[int, bool]:
    rt = SimpleNamespace(settings=SimpleNamespace(task_deadline_s=deadline_s), bodies=SimpleNamespace(hold=_Hold))
    job = SimpleNamespace(guard=SimpleNamespace(limits=SimpleNamespace(concurrency=TARGET)))
    first = site.entries(TARGET)
    return asyncio.run(crawl_stages._session(rt, "job", job, None, None, first, site.refill))  # type: ignore[arg-type]


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
