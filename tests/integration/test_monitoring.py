"""Monitoring end to end: real Redis, two real workers, real `pipeline flower`.

One cluster for the module (its own Redis, so no other test's worker takes a
batch): two workers of two pool processes each, and Flower started by the
installed console script. One image job runs first; every count below is
checked against it and against the ledger. The browser drives the same pages
in test_flower_browser.py; here they are spoken to over HTTP.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.cluster import start_worker, wait_ready
from pipeline.config import Settings
from pipeline.kinds import job_document
from pipeline.kinds.images import ImagesSpec
from pipeline.ledger import Ledger
from pipeline.ledger.connection import connect
from pipeline.monitor.cores import STALE_AFTER_S
from pipeline.producer import Producer
from tests.flower_cluster import FLOWER_USER, PIPELINE, MonitoredCluster, monitored_cluster, start_flower
from tests.helpers import expect_items, make_images, wait_for_job, wait_until

JOB_ITEMS = 24
UNAUTHENTICATED = ["/", "/workers", "/tasks", "/broker", "/cores", "/api/cores", "/api/workers", "/api/tasks",
                   "/metrics", "/jobs", "/api/jobs", "/api/cores/history", "/cores/chart.svg",
                   "/jobs/20260101-000000-abcdef", "/api/jobs/20260101-000000-abcdef",
                   "/jobs/20260101-000000-abcdef/chart.svg",
                   "/jobs/20260101-000000-abcdef/files/report.json"]  # fmt: skip
XSRF_FIELD = re.compile(r'name="_xsrf" value="([^"]+)"')


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


def ledger_done(cluster: MonitoredCluster) -> int:
    """Items done (ok or failed) over every job in the ledger: what the jobs report."""
    client = connect(cluster.redis_url)
    ledger = Ledger(client)
    try:
        return sum(
            (doc.get("items") or doc["images"])["ok"] + (doc.get("items") or doc["images"])["failed"]
            for doc in (job_document(ledger, meta.job_id) for meta in ledger.recent_jobs(1000))
        )
    finally:
        client.close()


def test_the_headline_counts_each_item_once_as_the_ledger_does_not_once_per_stage(
    cluster: MonitoredCluster, finished_job: dict[str, Any]
) -> None:
    done = ledger_done(cluster)
    doc = wait_until(lambda: (d := cluster.flower.cores())["headline"]["items"] == done and d, 15,
                     "the headline to count every item")  # fmt: skip
    passes = sum(total["items"] for total in doc["totals"].values())
    assert done == JOB_ITEMS
    assert passes == 3 * JOB_ITEMS, "read, transform and store: three passes of each item, in the table only"
    assert sum(worker["items"] for worker in doc["workers"]) == done
    assert sum(core["items"] for worker in doc["workers"] for core in worker["cores"]) == done


def watched_finished(cluster: MonitoredCluster, job_id: str) -> dict[str, Any]:
    """The job as /api/jobs shows it, once Flower's watch (a refresh a second) has seen it end."""
    job: dict[str, Any] = wait_until(
        lambda: next((j for j in cluster.flower.get("/api/jobs").json()["jobs"]
                      if j["job_id"] == job_id and j["state"] == "succeeded"), None),
        15, f"Flower to see job {job_id} end",
    )  # fmt: skip
    return job


def test_metrics_carry_per_job_series_for_the_recent_jobs(
    cluster: MonitoredCluster, finished_job: dict[str, Any]
) -> None:
    watched_finished(cluster, finished_job["job_id"])
    job_id = finished_job["job_id"]
    families = {f.name: f for f in text_string_to_metric_families(cluster.flower.get("/metrics").text)}
    items = {s.labels["state"]: s.value for s in families["pipeline_job_items"].samples if s.labels["job"] == job_id}
    states = {s.labels["state"] for s in families["pipeline_job_state"].samples
              if s.labels["job"] == job_id and s.value == 1}  # fmt: skip
    assert items == {"ok": JOB_ITEMS, "failed": 0}
    assert states == {"succeeded"}
    assert {s.labels["kind"] for s in families["pipeline_job_items"].samples} == {"images"}
    assert sum(s.value for s in families["pipeline_worker_items"].samples) == JOB_ITEMS


# -- Flower: the charts' history --------------------------------------------------------------------


def test_the_history_has_a_series_for_every_core_and_every_stage_one_point_a_second(
    cluster: MonitoredCluster, finished_job: dict[str, Any]
) -> None:
    def every_core_charted() -> dict[str, Any] | None:
        doc: dict[str, Any] = cluster.flower.get("/api/cores/history?minutes=5").json()
        cores = {(s["worker"], s["core"]) for s in doc["series"] if s["kind"] == "core" and len(s["points"]) >= 3}
        return doc if cluster.core_names() <= cores else None

    doc = wait_until(every_core_charted, 15, "three seconds of history for every core")
    stages = {s["stage"] for s in doc["series"] if s["kind"] == "stage"}
    items = next(s for s in doc["series"] if s["kind"] == "items")
    steps = [b[0] - a[0] for a, b in zip(items["points"], items["points"][1:], strict=False)]
    assert {"fetch", "transform", "store"} <= stages
    assert doc["span_s"] == 300
    assert steps and 0.5 < sorted(steps)[len(steps) // 2] < 1.5, steps  # about one point a second
    chart = cluster.flower.get("/cores/chart.svg?by=core")
    assert chart.status == 200
    assert chart.headers["content-type"].startswith("image/svg+xml")
    for worker, core in cluster.core_names():
        assert f'data-core="{core}"' in chart.text and f'data-worker="{worker}"' in chart.text
    assert cluster.flower.get("/cores/chart.svg?by=nonsense").status == 400


# -- Flower: the Jobs pages -------------------------------------------------------------------------


def test_the_jobs_endpoint_lists_the_finished_job_as_the_ledger_reports_it(
    cluster: MonitoredCluster, finished_job: dict[str, Any]
) -> None:
    job_id = finished_job["job_id"]
    job = watched_finished(cluster, job_id)
    assert job | {"elapsed_s": None, "created_at": None, "finished_at": None, "items_per_s": None} == {
        "job_id": job_id, "kind": "images", "state": "succeeded", "ok": JOB_ITEMS, "failed": 0, "done": JOB_ITEMS,
        "total": JOB_ITEMS, "pending": 0, "progress": 1.0, "items_per_s": None, "recent_items_per_s": None,
        "failures": {}, "elapsed_s": None, "created_at": None, "finished_at": None, "schedule": None, "reason": None,
        "output_dir": finished_job["output_dir"], "report": finished_job["report"] or job["report"],
    }  # fmt: skip
    assert job["elapsed_s"] == finished_job["elapsed_s"]


def test_a_jobs_detail_has_its_stage_timings_its_files_and_what_can_be_done(
    cluster: MonitoredCluster, finished_job: dict[str, Any]
) -> None:
    job_id = finished_job["job_id"]
    doc = wait_until(lambda: (d := cluster.flower.get(f"/api/jobs/{job_id}").json())["files"].get("report.json")
                     and d, 15, "the job's report")  # fmt: skip
    assert doc["timings"]["transform_s"] > 0
    assert doc["files"] == {"report.json": True, "failures.jsonl": True, "pages.jsonl": False}
    assert doc["actions"] == {"cancel": False, "retry": False, "retry_why": "No failed items to retry."}
    assert doc["top_failures"] == {"items": [], "scanned": 0, "complete": True}
    report = cluster.flower.get(f"/jobs/{job_id}/files/report.json")
    assert report.status == 200
    assert report.json()["images"]["ok"] == JOB_ITEMS
    assert cluster.flower.get(f"/jobs/{job_id}/files/pages.jsonl").status == 404  # an image job has none
    assert cluster.flower.get(f"/jobs/{job_id}/files/..%2F..%2Fetc%2Fpasswd").status == 404
    assert cluster.flower.get("/api/jobs/20260101-000000-000000").status == 404
    page = cluster.flower.get(f"/jobs/{job_id}")
    assert page.status == 200
    assert f'action="/jobs/{job_id}/cancel"' in page.text and f'action="/jobs/{job_id}/retry"' in page.text
    chart = cluster.flower.get(f"/jobs/{job_id}/chart.svg")
    assert chart.status == 200 and chart.text.startswith("<svg")


def form_token(cluster: MonitoredCluster, job_id: str) -> tuple[str, str]:
    """(the _xsrf cookie, the form's token) as the job's page hands them to a browser."""
    page = cluster.flower.get(f"/jobs/{job_id}")
    cookie = page.headers["set-cookie"].split(";", 1)[0]
    match = XSRF_FIELD.search(page.text)
    assert match, page.text[:2000]
    return cookie, match.group(1)


def queued_job(cluster: MonitoredCluster, job_id: str) -> Ledger:
    """A job with items registered and none sent: it stays queued until cancelled."""
    ledger = Ledger(connect(cluster.redis_url))
    ledger.create_job(job_id, "images", {"ops": "thumbnail:64"}, "/nonexistent")
    expect_items(ledger, job_id, [f"item-{i}" for i in range(3)])
    return ledger


def test_cancel_and_retry_are_refused_without_the_pages_token_or_from_another_site(cluster: MonitoredCluster) -> None:
    job_id = "20260101-000000-c0ffee"
    ledger = queued_job(cluster, job_id)
    try:
        cookie, token = form_token(cluster, job_id)
        assert cluster.flower.post(f"/jobs/{job_id}/cancel", {}).status == 403  # no token
        assert cluster.flower.post(f"/jobs/{job_id}/cancel", {"_xsrf": token}).status == 403  # no cookie
        cross_site = {"Cookie": cookie, "Sec-Fetch-Site": "cross-site"}
        assert cluster.flower.post(f"/jobs/{job_id}/cancel", {"_xsrf": token}, headers=cross_site).status == 403
        other_origin = {"Cookie": cookie, "Origin": "http://evil.example"}
        assert cluster.flower.post(f"/jobs/{job_id}/retry", {"_xsrf": token}, headers=other_origin).status == 403
        anonymous = cluster.flower.post(f"/jobs/{job_id}/cancel", {"_xsrf": token}, headers={"Cookie": cookie},
                                        auth=None)  # fmt: skip
        assert anonymous.status == 401
        assert cluster.flower.get(f"/jobs/{job_id}/cancel").status == 405, "a link cannot cancel"
        assert ledger.meta(job_id).state == "queued"
    finally:
        ledger.cancel(job_id)
        ledger.client.close()


def test_cancel_posted_from_the_jobs_page_cancels_it_and_the_page_then_says_so(cluster: MonitoredCluster) -> None:
    job_id = "20260101-000000-cafe01"
    ledger = queued_job(cluster, job_id)
    try:
        cookie, token = form_token(cluster, job_id)
        reply = cluster.flower.post(f"/jobs/{job_id}/cancel", {"_xsrf": token}, headers={"Cookie": cookie})
        state = ledger.meta(job_id).state
    finally:
        ledger.client.close()
    assert reply.status == 303
    assert reply.headers["location"] == f"/jobs/{job_id}"
    assert state == "cancelled"
    notice = reply.headers["set-cookie"].split(";", 1)[0]
    page = cluster.flower.get(f"/jobs/{job_id}", headers={"Cookie": notice})
    assert "Job cancelled" in page.text
    again = cluster.flower.post(f"/jobs/{job_id}/cancel", {"_xsrf": token}, headers={"Cookie": cookie})
    page = cluster.flower.get(f"/jobs/{job_id}", headers={"Cookie": again.headers["set-cookie"].split(";", 1)[0]})
    assert "had already ended (cancelled)" in page.text


# -- Flower: auth and its own pages -----------------------------------------------------------------


@pytest.mark.parametrize("path", UNAUTHENTICATED)
def test_ui_api_cores_and_metrics_refuse_requests_without_credentials(cluster: MonitoredCluster, path: str) -> None:
    anonymous = cluster.flower.get(path, auth=None)
    assert anonymous.status == 401, path
    if not path.startswith("/api/") or path == "/api/cores":  # Flower's own API answers without a challenge
        assert anonymous.headers.get("www-authenticate", "").startswith("Basic"), path
    assert cluster.flower.get(path, auth=(FLOWER_USER, "wrong")).status == 401, path


def test_flowers_own_pages_keep_working_and_link_our_pages(cluster: MonitoredCluster) -> None:
    for path in ("/workers", "/tasks", "/broker", "/api/workers"):
        reply = cluster.flower.get(path)
        assert reply.status == 200, (path, reply.text[:500])
    assert 'href="/cores"' in cluster.flower.get("/workers").text
    assert 'href="/jobs"' in cluster.flower.get("/workers").text
    page = cluster.flower.get("/cores")
    assert page.status == 200
    assert 'id="cores-table"' in page.text
    assert 'data-api="/api/cores"' in page.text
    assert cluster.flower.get("/healthcheck", auth=None).status == 200


# -- workers going away -----------------------------------------------------------------------------


def test_a_worker_that_shuts_down_is_shown_offline_with_its_rates_zeroed_and_marked_on_the_charts(
    cluster: MonitoredCluster, tmp_path: Path
) -> None:
    # Workers heard in Flower's first seconds were there before it: only later ones are marked as joining.
    wait_until(lambda: time.time() - cluster.flower_started_at > STALE_AFTER_S + 1, 30, "Flower to settle")
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
    marks = [(m["worker"], m["change"]) for m in cluster.flower.get("/api/cores/history").json()["markers"]]
    assert marks.count((name, "joined")) == 1 and marks.count((name, "left")) == 1
    assert marks.index((name, "joined")) < marks.index((name, "left"))
    chart = cluster.flower.get("/cores/chart.svg?by=core").text
    assert f'class="marker" data-kind="left" data-worker="{name}"' in chart


# -- the CLI: top, workers, flower ------------------------------------------------------------------


def test_top_once_json_prints_one_snapshot_of_cores_queues_and_active_jobs(
    cluster: MonitoredCluster, finished_job: dict[str, Any]
) -> None:
    client = connect(cluster.redis_url)
    ledger = Ledger(client)
    try:
        wait_until(
            lambda: sum(w.get("recorded", {}).get("items", 0) for w in ledger.workers()) == ledger_done(cluster),
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
    assert snap["headline"]["items"] == JOB_ITEMS, "each item once, as the ledger counts it"
    assert snap["totals"]["fetch"]["items"] + snap["totals"]["store"]["items"] == 2 * JOB_ITEMS
    assert snap["queues"] == {"pipeline.fetch": 0, "pipeline.transform": 0, "pipeline.reduce": 0}
    active = {job["job_id"]: job for job in snap["jobs"]}
    assert active["20260101-000000-a1b2c3"] | {"elapsed_s": 0, "items_per_s": 0} == {
        "job_id": "20260101-000000-a1b2c3", "kind": "images", "state": "queued", "done": 0, "failed": 0,
        "total": 7, "progress": 0.0, "elapsed_s": 0, "items_per_s": 0,
    }  # fmt: skip
    assert finished_job["job_id"] not in active, "finished jobs are not active"


def test_top_once_heads_its_screen_with_the_items_the_ledger_counts(
    cluster: MonitoredCluster, finished_job: dict[str, Any]
) -> None:
    done = ledger_done(cluster)
    client = connect(cluster.redis_url)
    try:
        wait_until(lambda: sum(w.get("recorded", {}).get("items", 0) for w in Ledger(client).workers()) == done, 15,
                   "the heartbeats to carry every item")  # fmt: skip
    finally:
        client.close()
    proc = run_cli("top", "--once", env=cli_env(cluster))
    assert proc.returncode == 0, proc.stderr
    first_lines = proc.stdout.splitlines()[:3]  # a snapshot is data: stdout (a live `top` draws on stderr)
    assert any(f"{done:,} items done" in line for line in first_lines), proc.stdout


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


# -- last: a second job (the counts above are those of the first) -------------------------------------


def test_retry_posted_from_the_jobs_page_runs_its_failed_items_again(cluster: MonitoredCluster, tmp_path: Path) -> None:
    make_images(tmp_path / "in", 3, size=(320, 240))
    (tmp_path / "in" / "broken.jpg").write_bytes(b"this is not an image")
    producer = Producer(Settings.load(redis_url=cluster.redis_url), cluster.redis_url)
    try:
        job_id = producer.submit(ImagesSpec(sources=[str(tmp_path / "in")], output_dir=tmp_path / "out"))
        first = wait_for_job(producer.ledger, job_id)
        detail = wait_until(lambda: (d := cluster.flower.get(f"/api/jobs/{job_id}").json())["actions"]["retry"]
                            and d, 15, "Flower to offer the retry")  # fmt: skip
        cookie, token = form_token(cluster, job_id)
        reply = cluster.flower.post(f"/jobs/{job_id}/retry", {"_xsrf": token}, headers={"Cookie": cookie})
        wait_until(lambda: (producer.ledger.meta(job_id).finished_at or 0) > first["finished_at"], 30,
                   "the retried job to end again")  # fmt: skip
        again = wait_for_job(producer.ledger, job_id)
    finally:
        producer.close()
    assert first["failures"] == {"not_an_image": 1}
    assert detail["top_failures"]["items"][0]["item"].endswith("broken.jpg")
    assert detail["top_failures"]["items"][0]["reason"] == "not_an_image"
    assert reply.status == 303
    page = cluster.flower.get(f"/jobs/{job_id}", headers={"Cookie": reply.headers["set-cookie"].split(";", 1)[0]})
    assert "Retrying 1 failed item(s)." in page.text
    assert again["images"] == first["images"], "the broken file fails again, and counts once"
