"""The blobs' budget (``pipeline.ledger.blobs``, ``lua/blob_reserve.lua``) against a real Redis.

Fetched bytes wait in Redis between fetch and transform, shared by every
worker: room is reserved atomically before a blob is written, given back when
it is deleted, and expires with its blob, so a dead worker cannot hold it for ever.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.ledger.blobs import BlobStore
from pipeline.ledger.connection import connect
from pipeline.ledger.keys import BLOB_HELD, blob_key
from pipeline.localredis import RedisServer, start_redis
from tests.helpers import fill_redis, unfill_redis

KB = 1024


@pytest.fixture(scope="module")
def budget_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis of this module's own: the budget's counters are global, and each test starts them at zero."""
    server = start_redis(tmp_path_factory.mktemp("budget-redis"), appendonly=False)
    yield server
    server.stop()


@pytest.fixture
def redis_url(budget_redis: RedisServer) -> str:
    return budget_redis.url


@pytest.fixture
def blobs(redis_url: str) -> Iterator[BlobStore]:
    store = BlobStore(connect(redis_url, binary=True))
    yield store
    store.client.flushdb()  # our own server: nothing else lives there
    store.close()


def test_blobs_are_written_while_they_fit_the_budget_and_the_rest_wait(blobs: BlobStore) -> None:
    stored = blobs.put_many("job", {"a": b"x" * 40 * KB, "b": b"x" * 40 * KB, "c": b"x" * 40 * KB},
                            ttl_s=60, budget=100 * KB)  # fmt: skip
    assert stored.written == ["a", "b"]
    assert stored.no_room == ["c"]
    assert blobs.get_many("job", ["a", "b", "c"]) == [b"x" * 40 * KB, b"x" * 40 * KB, None]
    assert blobs.budget_state().held == 80 * KB


def test_a_blob_larger_than_the_whole_budget_is_refused_as_too_large_not_kept_waiting(blobs: BlobStore) -> None:
    stored = blobs.put_many("job", {"huge": b"x" * 200 * KB}, ttl_s=60, budget=100 * KB, wait_s=5)
    assert stored.too_large == ["huge"] and not stored.written and not stored.no_room


def test_deleting_blobs_gives_their_room_back(blobs: BlobStore) -> None:
    blobs.put_many("job", {"a": b"x" * 60 * KB}, ttl_s=60, budget=100 * KB)
    assert blobs.put_many("job", {"b": b"x" * 60 * KB}, ttl_s=60, budget=100 * KB).no_room == ["b"]
    assert blobs.delete_many("job", ["a"]) == 60 * KB
    assert blobs.put_many("job", {"b": b"x" * 60 * KB}, ttl_s=60, budget=100 * KB).written == ["b"]
    assert blobs.budget_state().held == 60 * KB


def test_a_fetch_waiting_for_room_gets_it_when_another_worker_deletes_its_blobs(blobs: BlobStore) -> None:
    blobs.put_many("job", {"first": b"x" * 80 * KB}, ttl_s=60, budget=100 * KB)
    done = threading.Event()
    result: list[list[str]] = []

    def waiter() -> None:
        result.append(blobs.put_many("job", {"second": b"y" * 80 * KB}, ttl_s=60, budget=100 * KB, wait_s=30).written)
        done.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    assert not done.wait(0.3), "the second blob was written while the budget was spent"
    blobs.delete_many("job", ["first"])
    thread.join(30)
    assert result == [["second"]]


def test_a_reservation_expires_with_its_blob_so_a_dead_workers_room_comes_back(blobs: BlobStore) -> None:
    blobs.put_many("job", {"orphan": b"x" * 80 * KB}, ttl_s=1, budget=100 * KB)  # its worker then dies
    deadline = time.monotonic() + 10
    while (stored := blobs.put_many("job", {"next": b"y" * 80 * KB}, ttl_s=60, budget=100 * KB)).no_room:
        assert time.monotonic() < deadline, "the dead worker's reservation never expired"
        time.sleep(0.2)
    assert stored.written == ["next"]
    assert blobs.get_many("job", ["orphan"]) == [None]
    assert blobs.budget_state().held == 80 * KB


def test_an_item_stored_again_trades_its_old_room_for_the_new(blobs: BlobStore) -> None:
    """A re-delivered fetch writes the same item again: its room is counted once, not twice."""
    for _ in range(3):
        assert blobs.put_many("job", {"a": b"x" * 70 * KB}, ttl_s=60, budget=100 * KB).written == ["a"]
    assert blobs.budget_state() == blobs.budget_state().__class__(held=70 * KB, blobs=1)


def test_the_budget_is_shared_by_every_client_and_never_overbooked(redis_url: str, blobs: BlobStore) -> None:
    stores = [BlobStore(connect(redis_url, binary=True)) for _ in range(4)]
    written: list[str] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        for n in range(10):
            got = stores[index].put_many(f"job{index}", {f"i{n}": b"x" * 10 * KB}, ttl_s=60, budget=100 * KB)
            with lock:
                written.extend(f"{index}:{i}" for i in got.written)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for store in stores:
        store.close()
    assert len(written) == 10  # 40 asked for 10 KiB each, 100 KiB in all: exactly 10 fit
    assert blobs.budget_state().held == 100 * KB


def test_a_spent_budget_stops_new_fetches_but_not_items_that_already_hold_room(blobs: BlobStore) -> None:
    """A dead worker's items, sent again, must be able to replace their own bytes: else they wait for its expiry."""
    assert blobs.may_fetch("job", ["a", "b"], budget=100 * KB)
    blobs.put_many("job", {"a": b"x" * 100 * KB}, ttl_s=60, budget=100 * KB)
    assert not blobs.may_fetch("job", ["b", "c"], budget=100 * KB)
    assert blobs.may_fetch("job", ["a", "b"], budget=100 * KB)


def test_deleting_a_finished_jobs_blobs_releases_all_of_them(blobs: BlobStore) -> None:
    blobs.put_many("done-job", {f"i{n}": b"x" * KB for n in range(5)}, ttl_s=60, budget=100 * KB)
    blobs.put_many("other-job", {"keep": b"x" * KB}, ttl_s=60, budget=100 * KB)
    assert blobs.delete_job("done-job") == 5
    assert blobs.budget_state().held == KB
    assert blobs.client.zrange(BLOB_HELD, 0, -1) == [blob_key("other-job", "keep").encode()]


@pytest.fixture
def small_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of our own with a small maxmemory and noeviction (``start_redis`` sets the policy)."""
    server = start_redis(tmp_path / "redis", appendonly=False)
    connect(server.url).config_set("maxmemory", str(8 * 2**20))
    yield server
    server.stop()


def test_a_full_redis_counts_as_no_room_and_deleting_works_on_it(small_redis: RedisServer) -> None:
    filler = connect(small_redis.url)
    fill_redis(filler)
    store = BlobStore(connect(small_redis.url, binary=True))
    try:
        stored = store.put_many("job", {"a": b"x" * 100 * KB}, ttl_s=60, budget=2**30)
        assert stored.no_room == ["a"] and store.budget_state().held == 0
        unfill_redis(filler)
        assert store.put_many("job", {"a": b"x" * 100 * KB}, ttl_s=60, budget=2**30).written == ["a"]
        fill_redis(filler)  # full again, with a blob in it
        assert store.delete_many("job", ["a"]) == 100 * KB
        assert store.budget_state().held == 0
    finally:
        store.close()
        filler.close()
