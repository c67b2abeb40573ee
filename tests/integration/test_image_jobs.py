"""Image jobs end to end: a real Redis, a real worker process, real files and HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from pipeline.cluster import WorkerProcess
from pipeline.demo.server import StaticServer
from pipeline.kinds.images import ImagesSpec
from pipeline.ledger import Ledger
from pipeline.producer import Producer
from tests.helpers import make_images, wait_for_job, wait_for_report

pytestmark = pytest.mark.usefixtures("worker")


def test_a_job_of_local_files_writes_every_output_at_the_requested_size_and_format(
    producer: Producer, ledger: Ledger, tmp_path: Path, outputs: Path
) -> None:
    sources = make_images(tmp_path / "in", 12, size=(800, 600))
    job_id = producer.submit(
        ImagesSpec(sources=[str(tmp_path / "in")], ops="thumbnail:200", format="webp", output_dir=outputs)
    )
    doc = wait_for_job(ledger, job_id)
    assert doc["state"] == "succeeded"
    assert doc["images"] == {"ok": 12, "failed": 0, "total": 12, "pending": 0}
    written = sorted(p for p in outputs.iterdir() if p.suffix == ".webp")
    assert [p.stem for p in written] == sorted(p.stem for p in sources)
    for path in written:
        with Image.open(path) as image:
            assert image.format == "WEBP"
            assert image.size == (200, 150)


def test_the_report_counts_bytes_formats_and_stage_timings_exactly(
    producer: Producer, ledger: Ledger, tmp_path: Path, outputs: Path
) -> None:
    sources = make_images(tmp_path / "in", 7)
    job_id = producer.submit(
        ImagesSpec(sources=[str(tmp_path / "in")], ops="grayscale", format="png", output_dir=outputs)
    )
    doc = wait_for_job(ledger, job_id)
    assert doc["bytes_in"] == sum(p.stat().st_size for p in sources)
    assert doc["bytes_out"] == sum(p.stat().st_size for p in outputs.glob("*.png"))
    assert doc["outputs"]["formats"] == {"png": 7}
    assert doc["failures"] == {}
    assert doc["ledger"] == {"duplicates": 0, "unexpected": 0}
    assert all(doc["timings"][f"{stage}_s"] > 0 for stage in ("transform", "store", "fetch"))
    assert doc["output_dir"] == str(outputs.resolve())
    finalized = wait_for_report(ledger, job_id)
    assert finalized["report"] == str(outputs.resolve() / "report.json")
    assert json.loads((outputs / "report.json").read_text())["images"]["ok"] == 7


def test_images_served_over_http_are_fetched_by_the_worker_and_transformed(
    producer: Producer, ledger: Ledger, tmp_path: Path, outputs: Path
) -> None:
    make_images(tmp_path / "site", 6, size=(320, 240), fmt="PNG")
    with StaticServer(tmp_path / "site") as server:
        urls = [server.url_for(f"img-{i:03d}.png") for i in range(6)]
        job_id = producer.submit(ImagesSpec(sources=urls, ops="thumbnail:64", format="jpeg", output_dir=outputs))
        doc = wait_for_job(ledger, job_id)
        hits = server.hits
    assert doc["images"]["ok"] == 6
    assert all(hits[f"/img-{i:03d}.png"] == 1 for i in range(6))
    assert {p.name for p in outputs.glob("*.jpg")} == {f"img-{i:03d}.jpg" for i in range(6)}
    assert not list(ledger.client.scan_iter(match=f"pl:blob:{job_id}:*")), "fetched bytes must be cleaned up"


def test_sources_with_the_same_file_name_get_distinct_outputs(
    producer: Producer, ledger: Ledger, tmp_path: Path, outputs: Path
) -> None:
    make_images(tmp_path / "a", 2)
    make_images(tmp_path / "b", 2, size=(300, 300))
    job_id = producer.submit(ImagesSpec(sources=[str(tmp_path / "a"), str(tmp_path / "b")], output_dir=outputs))
    doc = wait_for_job(ledger, job_id)
    assert doc["images"]["ok"] == 4
    names = sorted(p.name for p in outputs.glob("*.jpg"))
    assert len(names) == 4
    assert {"img-000.jpg", "img-001.jpg"} <= set(names)


def test_a_source_listed_twice_is_processed_once(
    producer: Producer, ledger: Ledger, tmp_path: Path, outputs: Path
) -> None:
    [path] = make_images(tmp_path / "in", 1)
    job_id = producer.submit(ImagesSpec(sources=[str(path), str(path), str(tmp_path / "in")], output_dir=outputs))
    doc = wait_for_job(ledger, job_id)
    assert doc["images"] == {"ok": 1, "failed": 0, "total": 1, "pending": 0}


def test_a_url_list_file_mixes_urls_and_relative_paths(
    producer: Producer, ledger: Ledger, tmp_path: Path, outputs: Path
) -> None:
    make_images(tmp_path / "site", 2)
    make_images(tmp_path / "local", 2, prefix="local")
    with StaticServer(tmp_path / "site") as server:
        listing = tmp_path / "urls.txt"
        remote = "\n\n".join(server.url_for(f"img-00{i}.jpg") for i in range(2))
        listing.write_text(f"# two remote, two local\n{remote}\nlocal/local-000.jpg\nlocal/local-001.jpg\n")
        job_id = producer.submit(ImagesSpec(sources=[str(listing)], output_dir=outputs))
        doc = wait_for_job(ledger, job_id)
    assert doc["images"]["ok"] == 4


def test_the_worker_owns_its_process_pool_as_live_child_processes(worker: WorkerProcess, ledger: Ledger) -> None:

    [record] = [w for w in ledger.workers() if w["pid"] == worker.pid]
    assert record["pool"] == "threads", "celery must run on threads; the runtime owns the processes"
    assert record["processes"] == 2
    pids = [slot["pid"] for slot in record["slots"]]
    assert len(pids) == 2 and all(pids)
    for pid in pids:
        assert _is_descendant(pid, worker.pid), f"pool process {pid} is not under worker {worker.pid}"


def _is_descendant(pid: int, ancestor: int) -> bool:
    while pid > 1:
        status = Path(f"/proc/{pid}/status").read_text()
        pid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
        if pid == ancestor:
            return True
    return False


def test_asking_celery_for_the_prefork_pool_still_runs_threads_with_the_runtime(redis_url: str, tmp_path: Path) -> None:
    """Prefork children are daemonic and could not own the process pool; our config wins over -P."""
    import os
    import subprocess
    import sys

    from pipeline.cluster import WorkerProcess, wait_ready
    from pipeline.ledger.connection import connect
    from pipeline.ledger.keys import WORKER_PREFIX

    env = {**os.environ, "PIPELINE_REDIS_URL": redis_url, "PIPELINE_PROCESSES": "1"}
    command = [sys.executable, "-m", "celery", "-A", "tasks.app", "worker", "--pool", "prefork", "-n", "prefork@test"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = WorkerProcess("prefork@test", process)
    client = connect(redis_url)
    try:
        wait_ready(Ledger(client), [worker])
        assert client.hget(WORKER_PREFIX + "prefork@test", "pool") == '"threads"'
    finally:
        worker.terminate()
        worker.wait(30)
        worker.kill()
        client.close()
