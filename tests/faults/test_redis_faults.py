"""Redis itself fails: killed and restarted (with and without its append-only
file), or unreachable for 10 s behind a proxy. Never a hang; with persistence
nothing is lost; without it the loss is reported as such.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pipeline.demo.server import StaticServer
from pipeline.localredis import start_redis
from tests.faults.cli import PIPELINE, run_cli
from tests.faults.conftest import FaultCluster
from tests.faults.proxy import TcpProxy
from tests.helpers import make_images, wait_until


@pytest.fixture
def site(tmp_path: Path) -> Iterator[StaticServer]:
    make_images(tmp_path / "site", 30, size=(320, 240))
    with StaticServer(tmp_path / "site") as server:
        yield server


@pytest.fixture
def aof_cluster(tmp_path: Path, fault_env: dict[str, str]) -> Iterator[FaultCluster]:
    box = FaultCluster(start_redis(tmp_path / "redis", appendonly=True), tmp_path, fault_env)
    yield box
    box.close()


def restart_redis(cluster: FaultCluster, *, appendonly: bool) -> None:
    """SIGKILL the test's Redis (no shutdown save) and start it again on the same port and password."""
    old = cluster.redis
    parts = urlsplit(old.url)
    old.kill()
    cluster.redis = start_redis(old.directory, port=parts.port, password=parts.password, appendonly=appendonly)
    cluster.connect(cluster.redis.url)


def urls(site: StaticServer, count: int, delay: float = 0.3) -> list[str]:
    return [site.url_for(f"slow/{delay}/img-{i:03d}.jpg") for i in range(count)]


def test_redis_killed_and_restarted_with_its_append_only_file_loses_nothing(
    aof_cluster: FaultCluster, site: StaticServer, tmp_path: Path
) -> None:
    cluster = aof_cluster
    cluster.start("aof@test")
    job_id, submitted = cluster.submit(urls(site, 24, 1.0), batch_size=2)
    wait_until(lambda: cluster.done(job_id) >= 4, 30, "the job to be under way")
    assert cluster.done(job_id) < 20, "the job almost finished before the kill; nothing was tested"
    restart_redis(cluster, appendonly=True)
    verdict = cluster.check(job_id, submitted, deadline_s=90, label="aof-restart")
    assert verdict.doc["images"]["failed"] == 0
    after, after_ids = cluster.submit(urls(site, 3, 0), output_dir=tmp_path / "after")
    cluster.check(after, after_ids, deadline_s=30, label="aof-new-job")


def test_redis_restarted_without_persistence_fails_the_waiting_client_with_ledger_lost_and_never_hangs(
    cluster: FaultCluster, site: StaticServer, tmp_path: Path
) -> None:
    cluster.start("amnesia@test")
    job_id, _ = cluster.submit(urls(site, 24, 1.0), batch_size=2)
    wait_until(lambda: cluster.done(job_id) >= 2, 30, "the job to be under way")
    env_url = cluster.url
    waiter = subprocess.Popen([PIPELINE, "result", job_id, "--wait", "--json"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PIPELINE_REDIS_URL": env_url})  # fmt: skip
    try:
        # The client is polling the job (its reads are the only HGETALLs on the job hash mid-job), and
        # has been for a second: several polls of 0.2 s, so it has seen the job (a Redis lost during
        # its very first read is "unreachable", exit 3, not a lost ledger).
        def client_has_read_the_job() -> bool:
            return any(c["cmd"] == "hgetall" and int(c["age"]) >= 1 for c in cluster.ledger.client.client_list())

        wait_until(client_has_read_the_job, 30, "the waiting client to read the job")
        restart_redis(cluster, appendonly=False)
        _, err = waiter.communicate(timeout=60)
    finally:
        if waiter.poll() is None:
            waiter.send_signal(signal.SIGKILL)
            waiter.wait()
    assert waiter.returncode == 1, err
    assert "ledger lost" in err and "without persistence" in err
    # The cluster itself carries on: a new job on the empty Redis completes.
    after, after_ids = cluster.submit(urls(site, 3, 0), output_dir=tmp_path / "after")
    cluster.check(after, after_ids, deadline_s=60, label="amnesia-new-job")


def test_redis_unreachable_for_ten_seconds_mid_job_delays_but_loses_nothing(
    cluster: FaultCluster, site: StaticServer
) -> None:
    port = urlsplit(cluster.url).port
    assert port is not None
    with TcpProxy(port) as proxy:
        via_proxy = proxy.url_for(cluster.url)
        worker = cluster.start("cut-off@test", url=via_proxy)
        job_id, submitted = cluster.submit(urls(site, 20, 1.0), batch_size=2)
        wait_until(lambda: cluster.done(job_id) >= 4, 30, "the job to be under way")
        proxy.cut()
        cut_at = time.monotonic()
        # While it is cut off, a submit through the same route fails at once, clearly.
        refused = run_cli("submit", "images", urls(site, 1)[0], redis_url=via_proxy, timeout=30)
        time.sleep(max(0.0, 10 - (time.monotonic() - cut_at)))  # the fault itself lasts 10 s
        proxy.restore()
        verdict = cluster.check(job_id, submitted, deadline_s=90, label="proxy-cut")
        assert worker.alive()
    assert refused.returncode == 3, refused.stderr
    assert "broker unreachable" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert urlsplit(cluster.url).password not in refused.stderr + refused.stdout
    assert verdict.doc["images"]["failed"] == 0
    assert json.dumps(verdict.doc)  # the evidence document is plain JSON
