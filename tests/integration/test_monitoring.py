"""Per-core monitoring end to end: real Redis, two real workers, real `pipeline flower`.

One cluster for the module (its own Redis, so no other test's worker takes a
batch): two workers of two pool processes each, and Flower started by the
installed console script. One image job runs first; every count below is
checked against it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.cluster import start_worker, wait_ready
from pipeline.config import Settings
from pipeline.kinds.images import ImagesSpec
from pipeline.ledger import Ledger
from pipeline.ledger.connection import connect
from pipeline.producer import Producer
from tests.flower_cluster import FLOWER_USER, PIPELINE, MonitoredCluster, monitored_cluster, start_flower
from tests.helpers import expect_items, make_images, wait_for_job, wait_until

JOB_ITEMS = 24
UNAUTHENTICATED = ["/", "/workers", "/tasks", "/broker", "/cores", "/api/cores", "/api/workers", "/api/tasks",
                   "/metrics"]  # fmt: skip


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MonitoredCluster]:
    with monitored_cluster(tmp_path_factory.mktemp("monitored"), dict(os.environ)) as started:
        yield started


@pytest.fixture(scope="module")
def finished_job(cluster: MonitoredCluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One job of JOB_ITEMS local images, finished, with its last items reported to Flower."""
    folder = tmp_path_factory.mktemp("monitored-job")
    make_images(folder / "in", JOB_ITEMS, size=(800, 600))
    producer = Producer(Settings.load(redis_url=cluster.redis_url), cluster.redis_url)
    try:
        job_id = producer.submit(
            ImagesSpec(sources=[str(folder / "in")], ops="thumbnail:200", format="webp", output_dir=folder / "out")
        )
        doc = wait_for_job(producer.ledger, job_id)
    finally:
        producer.close()
    assert doc["images"]["ok"] == JOB_ITEMS, doc
    wait_until(lambda: transform_items(cluster.flower.cores()) == JOB_ITEMS, 15, "Flower to see every item")
    return doc


def transform_items(cores: dict[str, Any]) -> int:
    return sum(
        core["stages"].get("transform", {}).get("items", 0) for worker in cores["workers"] for core in worker["cores"]
    )


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PIPELINE, *args], env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)  # fmt: skip


def cli_env(cluster: MonitoredCluster) -> dict[str, str]:
    return {**os.environ, "PIPELINE_REDIS_URL": cluster.redis_url}


# -- Flower: the JSON endpoint and /metrics ---------------------------------------------------------


def test_the_cores_endpoint_lists_every_core_of_every_worker_with_counts_summing_to_the_jobs_items(
    cluster: MonitoredCluster, finished_job: dict[str, Any]
) -> None:
    doc = cluster.flower.cores()
    cores = {(w["name"], c["core"]): c for w in doc["workers"] for c in w["cores"]}
    assert cluster.core_names() <= set(cores)
    assert all(isinstance(cores[name]["pid"], int) for name in cluster.core_names())
    assert transform_items(doc) == JOB_ITEMS
    assert doc["totals"]["transform"]["items"] == JOB_ITEMS
    assert all(w["online"] for w in doc["workers"] if w["name"] in {p.name for p in cluster.workers})


def test_reading_and_writing_local_files_count_as_work_of_the_core_that_did_them(
    cluster: MonitoredCluster, finished_job: dict[str, Any]
) -> None:
    """A pool child reads the file, transforms and writes the output: one core, three stages."""
    workers = cluster.flower.cores()["workers"]
    for stage in ("fetch", "store"):
        assert sum(c["stages"].get(stage, {}).get("items", 0) for w in workers for c in w["cores"]) == JOB_ITEMS
    assert all(set(core["stages"]) <= {"fetch", "transform", "store"} for w in workers for core in w["cores"])


def test_metrics_carry_one_series_per_worker_core_and_stage_summing_to_the_jobs_items(
    cluster: MonitoredCluster, finished_job: dict[str, Any]
) -> None:
    reply = cluster.flower.get("/metrics")
    assert reply.status == 200
    families = {family.name: family for family in text_string_to_metric_families(reply.text)}
    items = {
        (s.labels["worker"], s.labels["core"]): s.value
        for s in families["pipeline_core_items"].samples
        if s.labels["stage"] == "transform"
    }
    assert cluster.core_names() <= set(items)
    assert sum(items.values()) == JOB_ITEMS
    busy = [s for s in families["pipeline_core_busy_seconds"].samples if s.labels["stage"] == "transform"]
    assert sum(s.value for s in busy) > 0
    assert "pipeline_core_items_per_second" in families
    assert "flower_events" in families, "Flower's own series must stay"


# -- Flower: auth and its own pages -----------------------------------------------------------------


@pytest.mark.parametrize("path", UNAUTHENTICATED)
def test_ui_api_cores_and_metrics_refuse_requests_without_credentials(cluster: MonitoredCluster, path: str) -> None:
    anonymous = cluster.flower.get(path, auth=None)
    assert anonymous.status == 401, path
    if not path.startswith("/api/") or path == "/api/cores":  # Flower's own API answers without a challenge
        assert anonymous.headers.get("www-authenticate", "").startswith("Basic"), path
    assert cluster.flower.get(path, auth=(FLOWER_USER, "wrong")).status == 401, path


def test_flowers_own_pages_keep_working_and_link_the_cores_page(cluster: MonitoredCluster) -> None:
    for path in ("/workers", "/tasks", "/broker", "/api/workers"):
        reply = cluster.flower.get(path)
        assert reply.status == 200, (path, reply.text[:500])
    assert 'href="/cores"' in cluster.flower.get("/workers").text
    page = cluster.flower.get("/cores")
    assert page.status == 200
    assert 'id="cores-table"' in page.text
    assert 'data-api="/api/cores"' in page.text
    assert cluster.flower.get("/healthcheck", auth=None).status == 200


# -- workers going away -----------------------------------------------------------------------------


def test_a_worker_that_shuts_down_is_shown_offline_with_its_rates_zeroed(
    cluster: MonitoredCluster, tmp_path: Path
) -> None:
    name = f"leaving@{socket.gethostname()}"
    worker = start_worker(cluster.redis_url, name, env=cluster.env, processes=1, log_path=tmp_path / "w.log")
    client = connect(cluster.redis_url)
    try:
        wait_ready(Ledger(client), [worker])
        wait_until(lambda: any(w["name"] == name for w in cluster.flower.cores()["workers"]), 15, "its first event")
        worker.terminate()
        assert worker.wait(30)
    finally:
        worker.kill()
        client.close()
    gone = wait_until(
        lambda: next((w for w in cluster.flower.cores()["workers"] if w["name"] == name and not w["online"]), None),
        10, "the worker shown offline",
    )  # fmt: skip
    assert all(core["items_per_s"] == 0 for core in gone["cores"])


# -- the CLI: top, workers, flower ------------------------------------------------------------------


def test_top_once_json_prints_one_snapshot_of_cores_queues_and_active_jobs(
    cluster: MonitoredCluster, finished_job: dict[str, Any]
) -> None:
    client = connect(cluster.redis_url)
    ledger = Ledger(client)
    try:
        wait_until(
            lambda: sum(s["stages"].get("transform", {}).get("items", 0) for w in Ledger(client).workers()
                        for s in w["slots"]) == JOB_ITEMS,
            15, "the heartbeats to carry every item",
        )  # fmt: skip
        # A job whose items are registered but not yet enqueued stays "queued": an active job at rest.
        ledger.create_job("20260101-000000-a1b2c3", "images", {"ops": "thumbnail:64"}, "/nonexistent")
        expect_items(ledger, "20260101-000000-a1b2c3", [f"item-{i}" for i in range(7)])
        proc = run_cli("top", "--once", "--json", env=cli_env(cluster))
    finally:
        ledger.cancel("20260101-000000-a1b2c3")
        client.close()
    assert proc.returncode == 0, proc.stderr
    snap = json.loads(proc.stdout)
    cores = {(w["name"], c["core"]): c for w in snap["workers"] for c in w["cores"]}
    assert cluster.core_names() <= set(cores)
    assert sum(c["stages"].get("transform", {}).get("items", 0) for c in cores.values()) == JOB_ITEMS
    assert snap["totals"]["transform"]["items"] == JOB_ITEMS
    assert snap["queues"] == {"pipeline.fetch": 0, "pipeline.transform": 0, "pipeline.reduce": 0}
    active = {job["job_id"]: job for job in snap["jobs"]}
    assert active["20260101-000000-a1b2c3"] | {"elapsed_s": 0, "items_per_s": 0} == {
        "job_id": "20260101-000000-a1b2c3", "kind": "images", "state": "queued", "done": 0, "failed": 0,
        "total": 7, "progress": 0.0, "elapsed_s": 0, "items_per_s": 0,
    }  # fmt: skip
    assert finished_job["job_id"] not in active, "finished jobs are not active"


def test_workers_json_includes_per_core_figures_and_the_io_pseudo_core(
    cluster: MonitoredCluster, finished_job: dict[str, Any]
) -> None:
    proc = run_cli("workers", "--json", env=cli_env(cluster))
    assert proc.returncode == 0, proc.stderr
    found = {w["name"]: w for w in json.loads(proc.stdout)}
    for worker in cluster.workers:
        record = found[worker.name]
        assert [slot["slot"] for slot in record["slots"]] == [0, 1]
        for slot in record["slots"]:
            assert {"items", "busy_s", "items_per_s", "busy_ratio", "stages", "pid"} <= set(slot)
        assert record["io"]["slot"] == "io"
        assert record["window_s"] > 0


def test_flower_refuses_unknown_and_space_separated_options_before_starting(cluster: MonitoredCluster) -> None:
    unknown = run_cli("flower", "--colour=blue", env=cli_env(cluster))
    assert unknown.returncode == 2
    assert "unknown Flower option --colour" in unknown.stderr
    spaced = run_cli("flower", "--port", "5556", env=cli_env(cluster))
    assert spaced.returncode == 2
    assert "--name=value" in spaced.stderr


def test_flower_without_a_configured_password_generates_one_prints_it_once_and_stops_cleanly(
    cluster: MonitoredCluster, tmp_path: Path
) -> None:
    env = {k: v for k, v in cluster.env.items() if not k.startswith("PIPELINE_FLOWER_")}
    flower = start_flower(cluster.redis_url, tmp_path / "flower.log", env, configured_login=False)
    try:
        assert flower.user == "admin"
        assert "generated for this run" in flower.log()
        assert flower.get("/cores").status == 200
        assert flower.get("/cores", auth=None).status == 401
    finally:
        flower.process.terminate()
        code = flower.process.wait(15)
    assert code == 0, flower.log()
    assert flower.log().count(flower.password) == 1, "the password is shown once"
    # Flower's event thread may still log a line after ours (a kombu reconnect), so not "endswith".
    lines = flower.log().splitlines()
    assert "stopped" in lines and lines.index("stopped") > lines.index("ready - Ctrl-C stops Flower")
