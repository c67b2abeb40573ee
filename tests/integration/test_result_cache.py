"""Reuse across jobs: the same image content with the same ops is transformed once.

A real worker with the result cache on (the default) runs identical jobs one
after the other; a second worker on its own Redis runs with the cache off.
Images are random noise made per test, so no other test can have warmed the
cache for them.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pipeline.cluster import WorkerProcess, start_worker, wait_ready
from pipeline.config import Settings
from pipeline.core.aggregate import ItemResult, Totals
from pipeline.core.cache_key import CachedOutput, cache_digest, encode_entry, plan_digest
from pipeline.kinds.images import ImagesSpec
from pipeline.ledger import Ledger
from pipeline.ledger.connection import connect
from pipeline.ledger.keys import CACHE_PREFIX, CACHE_TOTAL, cache_entry_key
from pipeline.localredis import RedisServer, start_redis
from pipeline.producer import Producer
from tests.fold import record
from tests.helpers import expect_items, wait_for_job, wait_for_report, wait_until
from workers.result_cache import CacheSettings, ResultCache

PIPELINE = str(Path(sys.executable).parent / "pipeline")


def noise_images(folder: Path, count: int, size: tuple[int, int] = (1200, 900)) -> list[Path]:
    """JPEGs of random pixels: content no other test (or earlier run) has produced."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        out = io.BytesIO()
        Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(out, "JPEG", quality=80)
        path = folder / f"noise-{index:03d}.jpg"
        path.write_bytes(out.getvalue())
        paths.append(path)
    return paths


def cli(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``pipeline ARGS`` in a subprocess, against ``redis_url``."""
    env = {**os.environ, "PIPELINE_REDIS_URL": redis_url}
    return subprocess.run([PIPELINE, *args], env=env, capture_output=True, text=True, timeout=60)


def run_job(producer: Producer, ledger: Ledger, sources: Path, out: Path, ops: str = "thumbnail:300") -> dict[str, Any]:
    job_id = producer.submit(ImagesSpec(sources=[str(sources)], ops=ops, format="webp", output_dir=out))
    doc = wait_for_job(ledger, job_id)
    assert doc["state"] == "succeeded", doc
    return doc


def outputs_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.webp"))}


def job_plan(ledger: Ledger, job_id: str) -> dict[str, Any]:
    return dict(ledger.meta(job_id).spec["plan"])


# --- the shared worker, cache on ---------------------------------------------------------------


@pytest.mark.usefixtures("worker")
def test_a_second_identical_job_takes_every_output_from_the_cache_with_identical_bytes_and_exact_totals(
    producer: Producer, ledger: Ledger, tmp_path: Path
) -> None:
    sources = noise_images(tmp_path / "in", 8)
    first = run_job(producer, ledger, tmp_path / "in", tmp_path / "out1")
    second = run_job(producer, ledger, tmp_path / "in", tmp_path / "out2")

    assert first["cache_hits"] == 0
    assert second["cache_hits"] == 8
    assert second["images"] == first["images"] == {"ok": 8, "failed": 0, "total": 8, "pending": 0}
    assert (second["bytes_in"], second["bytes_out"]) == (first["bytes_in"], first["bytes_out"])
    assert second["bytes_in"] == sum(p.stat().st_size for p in sources)
    assert second["outputs"] == first["outputs"] == {"formats": {"webp": 8}}
    assert second["ledger"] == {"duplicates": 0, "unexpected": 0}
    assert outputs_of(tmp_path / "out2") == outputs_of(tmp_path / "out1")
    assert len(outputs_of(tmp_path / "out2")) == 8
    assert all(r.meta == {"cached": True} for r in ledger.results(second["job_id"]))
    assert all(r.width == 300 and r.height == 225 for r in ledger.results(second["job_id"]))
    # A lookup (hash + GET) instead of decode + resize + encode of 1200x900 pixels.
    assert second["timings"]["transform_s"] < first["timings"]["transform_s"] / 2
    assert wait_for_report(ledger, second["job_id"])["cache_hits"] == 8
    report = (tmp_path / "out2" / "report.json").read_text()
    assert '"cache_hits": 8' in report


@pytest.mark.usefixtures("worker")
def test_the_same_images_with_different_ops_or_format_are_transformed_again(
    producer: Producer, ledger: Ledger, tmp_path: Path
) -> None:
    noise_images(tmp_path / "in", 4, size=(640, 480))
    run_job(producer, ledger, tmp_path / "in", tmp_path / "out1", ops="thumbnail:100")
    other_ops = run_job(producer, ledger, tmp_path / "in", tmp_path / "out2", ops="thumbnail:100,grayscale")
    spec = ImagesSpec(sources=[str(tmp_path / "in")], ops="thumbnail:100", format="png", output_dir=tmp_path / "out3")
    job_id = producer.submit(spec)
    other_format = wait_for_job(ledger, job_id)
    assert other_ops["cache_hits"] == 0
    assert other_format["cache_hits"] == 0
    assert other_format["images"]["ok"] == other_ops["images"]["ok"] == 4


@pytest.mark.usefixtures("worker")
def test_a_malformed_or_wrongly_typed_cache_entry_is_a_miss_and_is_replaced(
    producer: Producer, ledger: Ledger, tmp_path: Path
) -> None:
    sources = noise_images(tmp_path / "in", 2, size=(640, 480))
    first = run_job(producer, ledger, tmp_path / "in", tmp_path / "out1")
    plan = plan_digest(job_plan(ledger, first["job_id"]))
    garbage, wrong_type = (cache_entry_key(cache_digest(p.read_bytes(), plan)) for p in sources)
    assert ledger.client.exists(garbage, wrong_type) == 2, "the first job must have filled the cache"
    ledger.client.set(garbage, "not an entry")
    ledger.client.delete(wrong_type)
    ledger.client.hset(wrong_type, "a", "hash")  # GET on it is a WRONGTYPE error from Redis

    repaired = run_job(producer, ledger, tmp_path / "in", tmp_path / "out2")
    again = run_job(producer, ledger, tmp_path / "in", tmp_path / "out3")

    assert repaired["images"]["ok"] == 2 and repaired["cache_hits"] == 0
    assert outputs_of(tmp_path / "out2") == outputs_of(tmp_path / "out1")
    assert again["cache_hits"] == 2, "the broken entries must have been written afresh"
    assert outputs_of(tmp_path / "out3") == outputs_of(tmp_path / "out1")


@pytest.mark.usefixtures("worker")
def test_status_and_result_show_the_cache_hits(
    producer: Producer, ledger: Ledger, redis_url: str, tmp_path: Path
) -> None:
    noise_images(tmp_path / "in", 3, size=(320, 240))
    run_job(producer, ledger, tmp_path / "in", tmp_path / "out1")
    job_id = run_job(producer, ledger, tmp_path / "in", tmp_path / "out2")["job_id"]
    status, result = cli(redis_url, "status", job_id), cli(redis_url, "result", job_id)
    assert status.returncode == 0 and "3 cached" in status.stdout, status
    assert result.returncode == 0 and "3 outputs reused from the result cache" in result.stdout, result


def cache_cli(redis_url: str, *args: str) -> dict[str, Any]:
    done = cli(redis_url, "cache", "--json", *args)
    assert done.returncode == 0, done
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures


@pytest.mark.usefixtures("worker")
def test_pipeline_cache_shows_what_is_kept_and_clear_empties_it(
    producer: Producer, ledger: Ledger, redis_url: str, tmp_path: Path
) -> None:
    noise_images(tmp_path / "in", 3, size=(320, 240))
    run_job(producer, ledger, tmp_path / "in", tmp_path / "out1")
    before = cache_cli(redis_url)
    assert before["entries"] >= 3 and before["bytes"] > 0
    assert before["max_total_bytes"] == Settings.load().cache_max_total_bytes

    cleared = cache_cli(redis_url, "--clear")
    assert cleared["removed"] >= 3 and cleared["entries"] == 0 and cleared["bytes"] == 0
    assert run_job(producer, ledger, tmp_path / "in", tmp_path / "out2")["cache_hits"] == 0
    assert run_job(producer, ledger, tmp_path / "in", tmp_path / "out3")["cache_hits"] == 3, "it fills again"


def test_an_entry_over_the_size_cap_is_not_cached(redis_url: str) -> None:
    cache = ResultCache(CacheSettings(redis_url, ttl_s=60, max_bytes=10))
    key = CACHE_PREFIX + "test-" + uuid.uuid4().hex
    cache.put(key, CachedOutput(b"x" * 11, 1, 1))
    assert cache.get(key) is None
    cache.put(key, CachedOutput(b"x" * 10, 1, 1))
    assert cache.get(key) == CachedOutput(b"x" * 10, 1, 1)
    client = connect(redis_url)
    try:
        assert 0 < client.ttl(key) <= 60
    finally:
        client.close()


def test_an_unreachable_redis_is_a_miss_and_pauses_the_cache_instead_of_failing() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cache = ResultCache(CacheSettings(f"redis://127.0.0.1:{port}/0", ttl_s=60, max_bytes=2**20))
    assert cache.get(CACHE_PREFIX + "x") is None
    cache.put(CACHE_PREFIX + "x", CachedOutput(b"data", 1, 1))  # no exception
    assert cache._redis() is None, "after a connection error the cache is left alone for a while"


# --- the cache keeps its total under PIPELINE_CACHE_MAX_TOTAL_BYTES --------------------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[str]:
    """A Redis of its own: a small cap would evict the entries the other tests' jobs rely on."""
    server = start_redis(tmp_path / "redis", appendonly=False)
    try:
        yield server.url
    finally:
        server.stop()


ENTRY = len(encode_entry(CachedOutput(b"x" * 100, 1, 1)))  # bytes one 100-byte output takes


def capped(url: str, entries: int, ttl_s: int = 60) -> ResultCache:
    return ResultCache(CacheSettings(url, ttl_s=ttl_s, max_bytes=2**20, max_total_bytes=entries * ENTRY))


def kept_bytes(url: str) -> int:
    client = connect(url)
    try:
        return int(client.get(CACHE_TOTAL) or 0)
    finally:
        client.close()


def test_the_cache_drops_the_entries_closest_to_expiry_to_stay_under_its_total_cap(own_redis: str) -> None:
    cache = capped(own_redis, entries=3)
    for index in range(5):
        cache.put(CACHE_PREFIX + f"k{index}", CachedOutput(bytes([index]) * 100, 1, 1))
    assert [cache.get(CACHE_PREFIX + f"k{i}") is not None for i in range(5)] == [False, False, True, True, True]
    assert kept_bytes(own_redis) == 3 * ENTRY


def test_an_overwritten_entry_is_counted_once(own_redis: str) -> None:
    cache = capped(own_redis, entries=3)
    for _ in range(4):
        cache.put(CACHE_PREFIX + "same", CachedOutput(b"y" * 100, 1, 1))
    cache.put(CACHE_PREFIX + "other", CachedOutput(b"z" * 100, 1, 1))
    assert cache.get(CACHE_PREFIX + "same") is not None and cache.get(CACHE_PREFIX + "other") is not None
    assert kept_bytes(own_redis) == 2 * ENTRY


def test_expired_entries_leave_the_count(own_redis: str) -> None:
    cache = capped(own_redis, entries=3, ttl_s=1)
    cache.put(CACHE_PREFIX + "brief", CachedOutput(b"b" * 100, 1, 1))
    # Redis expires it no earlier than the expiry time the index holds (computed before the SET).
    wait_until(lambda: cache.get(CACHE_PREFIX + "brief") is None, 10, "the entry's TTL to expire it")
    cache.put(CACHE_PREFIX + "next", CachedOutput(b"n" * 100, 1, 1))
    assert kept_bytes(own_redis) == ENTRY


def test_an_output_bigger_than_the_whole_cache_is_not_kept_and_evicts_nothing(own_redis: str) -> None:
    cache = capped(own_redis, entries=2)
    cache.put(CACHE_PREFIX + "small", CachedOutput(b"s" * 100, 1, 1))
    cache.put(CACHE_PREFIX + "huge", CachedOutput(b"h" * (3 * ENTRY), 1, 1))
    assert cache.get(CACHE_PREFIX + "huge") is None
    assert cache.get(CACHE_PREFIX + "small") is not None
    assert kept_bytes(own_redis) == ENTRY


def test_no_total_cap_when_it_is_zero(own_redis: str) -> None:
    cache = capped(own_redis, entries=0)
    for index in range(20):
        cache.put(CACHE_PREFIX + f"k{index}", CachedOutput(b"u" * 100, 1, 1))
    assert all(cache.get(CACHE_PREFIX + f"k{i}") is not None for i in range(20))
    assert kept_bytes(own_redis) == 20 * ENTRY


# --- the ledger counts hits first-write-wins, like every other counter --------------------------

IDS = [f"item{i}" for i in range(8)]
results = st.builds(
    ItemResult,
    id=st.sampled_from(IDS),
    ok=st.booleans(),
    reason=st.just("truncated"),
    format=st.just("webp"),
    meta=st.sampled_from([{}, {"cached": True}, {"cached": False}]),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arrivals=st.lists(results, max_size=30), cut=st.integers(1, 6), replay=st.data())
def test_redis_counts_cache_hits_as_the_pure_fold_does_and_redelivery_changes_nothing(
    ledger: Ledger, arrivals: list[ItemResult], cut: int, replay: st.DataObject
) -> None:
    job_id = f"test-{uuid.uuid4().hex[:10]}"
    ledger.create_job(job_id, "images", {}, "/tmp/out")
    expect_items(ledger, job_id, IDS)
    for start in range(0, len(arrivals), cut):
        ledger.record(job_id, arrivals[start : start + cut])
    expected = Totals.of(record({}, arrivals)).cache_hits
    assert ledger.totals(job_id).cache_hits == expected
    if arrivals:
        ledger.record(job_id, replay.draw(st.lists(st.sampled_from(arrivals), max_size=10)))
    assert ledger.totals(job_id).cache_hits == expected


# --- a worker with the cache off -------------------------------------------------------------------


@dataclass
class Uncached:
    producer: Producer
    ledger: Ledger


@pytest.fixture(scope="module")
def uncached(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uncached]:
    """Its own Redis and worker with PIPELINE_CACHE_TTL_S=0 (the session worker would take its tasks)."""
    folder = tmp_path_factory.mktemp("uncached")
    server: RedisServer = start_redis(folder / "redis", appendonly=False)
    worker: WorkerProcess | None = None
    producer: Producer | None = None
    try:
        worker = start_worker(server.url, f"uncached@{socket.gethostname()}", env={"PIPELINE_CACHE_TTL_S": "0"},
                              log_path=folder / "worker.log")  # fmt: skip
        client = connect(server.url)
        try:
            wait_ready(Ledger(client), [worker])
        finally:
            client.close()
        producer = Producer(Settings.load(redis_url=server.url), server.url)
        yield Uncached(producer, producer.ledger)
    finally:
        if producer is not None:
            producer.close()
        if worker is not None:
            worker.terminate()
            if not worker.wait(30):
                worker.kill()
        server.stop()


def test_with_the_cache_off_nothing_is_cached_or_reused(uncached: Uncached, tmp_path: Path) -> None:
    noise_images(tmp_path / "in", 4, size=(640, 480))
    first = run_job(uncached.producer, uncached.ledger, tmp_path / "in", tmp_path / "out1")
    second = run_job(uncached.producer, uncached.ledger, tmp_path / "in", tmp_path / "out2")
    assert first["cache_hits"] == second["cache_hits"] == 0
    assert second["images"]["ok"] == 4
    assert outputs_of(tmp_path / "out2") == outputs_of(tmp_path / "out1")
    assert not list(uncached.ledger.client.scan_iter(match=CACHE_PREFIX + "*"))
