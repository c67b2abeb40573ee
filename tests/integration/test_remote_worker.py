"""A worker on "another machine": its own network namespace, Redis reached only at the address it is given.

The README's recipe for workers elsewhere is `PIPELINE_REDIS_URL=redis://:PASSWORD@redis-host:6379/0
pipeline worker` on a machine that shares the storage for files. Here the other machine is a
network namespace this test makes (``ip netns``) joined to this one by a veth pair on a /30 of
its own: inside it, 127.0.0.1 is the namespace's own loopback, so the Redis of this host is
reachable only at the veth address. The file system is shared, as NFS would be. The job is
submitted from this host; the namespaced worker is the only one, so every item is its.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.children import spawn
from pipeline.cluster import WorkerProcess, wait_ready, worker_command
from pipeline.config import Settings
from pipeline.kinds.images import ImagesSpec
from pipeline.ledger import Ledger
from pipeline.ledger.connection import connect
from pipeline.localredis import RedisServer, start_redis
from pipeline.producer import Producer
from tests.helpers import make_images, wait_for_report, wait_until


@dataclass(frozen=True)
class OtherHost:
    namespace: str
    host_address: str  # this machine's end of the veth pair: where the other host finds Redis
    address: str  # the other host's own address

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.namespace, *argv], capture_output=True, text=True,
                              timeout=30, check=False)  # fmt: skip


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)}: {result.stderr.strip()} (needs root and iproute2)")


@pytest.fixture
def other_host() -> Iterator[OtherHost]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        raise AssertionError("the remote-worker test makes a network namespace: it needs root and iproute2 (`ip`)")
    used = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True, check=True).stdout
    subnet = next(f"10.254.{n}" for n in random.sample(range(256), 256) if f" 10.254.{n}." not in used)
    tag = f"{os.getpid() % 100000}{random.randrange(100)}"
    namespace, outside, inside = f"plhost{tag}", f"plv{tag}a", f"plv{tag}b"
    _ip("netns", "add", namespace)
    try:
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", namespace)
        _ip("addr", "add", f"{subnet}.1/30", "dev", outside)
        _ip("link", "set", outside, "up")
        _ip("-n", namespace, "addr", "add", f"{subnet}.2/30", "dev", inside)
        _ip("-n", namespace, "link", "set", inside, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        yield OtherHost(namespace, f"{subnet}.1", f"{subnet}.2")
    finally:
        subprocess.run(["ip", "link", "del", outside], capture_output=True, check=False)  # takes its peer along
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)


@pytest.fixture
def redis_on_both(tmp_path: Path, other_host: OtherHost) -> Iterator[RedisServer]:
    server = start_redis(tmp_path / "redis", appendonly=False, also_bind=[other_host.host_address])
    yield server
    server.stop()


def test_a_worker_on_another_host_reaches_redis_at_its_given_address_and_takes_the_items(
    tmp_path: Path, other_host: OtherHost, redis_on_both: RedisServer
) -> None:
    port = redis_on_both.url.rsplit(":", 1)[1].split("/")[0]
    # On the other host, this machine's loopback is out of reach: only the given address leads to Redis.
    probe = ("import socket,sys; s=socket.socket(); s.settimeout(2); sys.exit(s.connect_ex((sys.argv[1], "
             f"{port})))")  # fmt: skip
    assert other_host.run("python3", "-c", probe, "127.0.0.1").returncode != 0
    assert other_host.run("python3", "-c", probe, other_host.host_address).returncode == 0, "veth not up"

    remote_url = redis_on_both.url.replace("127.0.0.1", other_host.host_address)
    name = f"remote@{socket.gethostname()}"
    command = ["ip", "netns", "exec", other_host.namespace, *worker_command(name)]
    worker = WorkerProcess(name, spawn(command, {"PIPELINE_REDIS_URL": remote_url}, tmp_path / "remote.log"),
                           tmp_path / "remote.log")  # fmt: skip
    client = connect(redis_on_both.url)
    producer = Producer(Settings.load(redis_url=redis_on_both.url), redis_on_both.url)
    try:
        wait_ready(Ledger(client), [worker])
        make_images(tmp_path / "shared" / "inputs", 30, size=(160, 120))  # storage both hosts mount
        job_id = producer.submit(
            ImagesSpec(sources=[str(tmp_path / "shared" / "inputs")], output_dir=tmp_path / "shared" / "out")
        )
        doc = wait_for_report(producer.ledger, job_id, timeout=60)

        def transformed_by_the_remote_worker() -> int:  # its heartbeat (every 2 s) carries per-core counts
            return sum(slot["stages"].get("transform", {}).get("items", 0)
                       for w in Ledger(client).workers() if w["name"] == name for slot in w["slots"])  # fmt: skip

        taken = wait_until(
            lambda: transformed_by_the_remote_worker() == 30 and 30,
            10,
            lambda: f"30 items in the remote worker's counts: {transformed_by_the_remote_worker()}",
        )
    finally:
        worker.terminate()
        if not worker.wait(20):
            worker.kill()
        producer.close()
        client.close()
    assert doc["state"] == "succeeded" and doc["images"] == {"ok": 30, "failed": 0, "total": 30, "pending": 0}
    assert taken == 30  # every item was the remote worker's
    assert len(list((tmp_path / "shared" / "out").glob("*.jpg"))) == 30  # written to the shared storage
