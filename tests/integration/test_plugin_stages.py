"""The user's own image ops in real jobs, and the submit-time question to the live workers.

A real redis-server and a real worker; the ops come from the example plugin
package (examples/pipeline-example-plugins), installed in the test environment
by `make test` and found by the worker through its entry points.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from pipeline.cluster import WorkerProcess, start_worker, wait_ready
from pipeline.config import Settings
from pipeline.kinds.images import ImagesSpec
from pipeline.ledger import Ledger
from pipeline.localredis import start_redis
from pipeline.plugins import PluginError
from pipeline.producer import Producer
from tasks.control import ask_importable
from tests.helpers import make_images, wait_for_job, wait_until

PIPELINE = str(Path(sys.executable).parent / "pipeline")


@pytest.fixture
def answering(worker: WorkerProcess, producer: Producer) -> WorkerProcess:
    """The session worker, once it answers remote-control questions (its heartbeat comes first)."""
    wait_until(lambda: worker.name in ask_importable(producer.app, "op", "sepia", [worker.name], timeout=1.0).able, 30,
               f"worker {worker.name} to answer plugin_importable")  # fmt: skip
    return worker


def job_ids(ledger: Ledger) -> set[str]:
    return {meta.job_id for meta in ledger.recent_jobs(10_000)}


def test_a_live_worker_answers_whether_it_can_import_a_plugin(answering: WorkerProcess, producer: Producer) -> None:
    yes = ask_importable(producer.app, "op", "sepia", [answering.name])
    assert yes.able == (answering.name,) and yes.unable == {} and yes.silent == ()
    no = ask_importable(producer.app, "op", "no-such-op", [answering.name])
    assert no.able == ()
    assert "no op named 'no-such-op' in entry points 'pipeline.ops'" in no.unable[answering.name]
    extractor = ask_importable(producer.app, "extractor", "products", [answering.name])
    assert extractor.able == (answering.name,)


@pytest.mark.usefixtures("answering")
def test_an_image_job_with_a_plugin_op_writes_the_transformed_images(
    producer: Producer, ledger: Ledger, tmp_path: Path, outputs: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for index, gray in enumerate((40, 128, 200)):
        Image.new("RGB", (32, 24), (gray, gray, gray)).save(folder / f"g{index}.png")
    job_id = producer.submit(ImagesSpec(sources=(str(folder),), ops="plugin:sepia", format="png", output_dir=outputs))
    doc = wait_for_job(ledger, job_id)
    assert doc["state"] == "succeeded", doc
    assert doc["images"]["ok"] == 3
    for index, gray in enumerate((40, 128, 200)):
        with Image.open(outputs / f"g{index}.png") as out:
            expected = tuple(min(255, round(gray * sum(row))) for row in ((0.393, 0.769, 0.189),
                                                                          (0.349, 0.686, 0.168),
                                                                          (0.272, 0.534, 0.131)))  # fmt: skip
            assert out.size == (32, 24)
            assert out.convert("RGB").getpixel((16, 12)) == pytest.approx(expected, abs=1)


@pytest.mark.usefixtures("answering")
def test_a_plugin_op_that_raises_fails_only_its_items_with_op_error_and_the_message(
    producer: Producer, ledger: Ledger, tmp_path: Path, outputs: Path
) -> None:
    make_images(tmp_path / "in", 4, size=(64, 48), fmt="PNG", prefix="big")
    make_images(tmp_path / "in", 2, size=(12, 12), fmt="PNG", prefix="small")
    job_id = producer.submit(
        ImagesSpec(sources=(str(tmp_path / "in"),), ops="plugin:frame:8:red", format="png", output_dir=outputs)
    )
    doc = wait_for_job(ledger, job_id)
    assert doc["images"]["ok"] == 4 and doc["images"]["failed"] == 2, doc
    assert doc["failures"] == {"op_error": 2}
    failed = sorted(ledger.results(job_id, failed_only=True), key=lambda result: result.source)
    assert [Path(result.source).name for result in failed] == ["small-000.png", "small-001.png"]
    assert all(
        result.detail == "plugin op 'frame' raised ValueError: a 8 px frame covers the whole 12x12 image"
        for result in failed
    )
    with Image.open(outputs / "big-000.png") as framed:
        assert framed.convert("RGB").getpixel((0, 0)) == (255, 0, 0)
        assert framed.convert("RGB").getpixel((32, 24)) != (255, 0, 0)


@pytest.mark.usefixtures("answering")
def test_a_plugin_no_live_worker_can_import_is_refused_before_the_job_exists(
    producer: Producer, ledger: Ledger, tmp_path: Path, outputs: Path
) -> None:
    make_images(tmp_path / "in", 2, size=(32, 32))
    before = job_ids(ledger)
    with pytest.raises(PluginError, match=r"op 'nope' cannot be imported by any live worker \(.*no op named 'nope'"):
        producer.submit(ImagesSpec(sources=(str(tmp_path / "in"),), ops="plugin:nope", output_dir=outputs))
    assert job_ids(ledger) == before
    assert not outputs.exists()


@pytest.mark.usefixtures("answering")
def test_the_cli_refuses_an_unknown_plugin_with_exit_2_and_one_line_naming_the_workers_answer(
    redis_url: str, ledger: Ledger, tmp_path: Path, outputs: Path
) -> None:
    make_images(tmp_path / "in", 2, size=(32, 32))
    before = job_ids(ledger)
    proc = subprocess.run(
        [PIPELINE, "submit", "images", str(tmp_path / "in"), "--ops", "plugin:no_such_pkg.ops.sepia",
         "--output", str(outputs)],
        env={**os.environ, "PIPELINE_REDIS_URL": redis_url}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "op 'no_such_pkg.ops.sepia' cannot be imported by any live worker" in lines[0]
    assert "No module named 'no_such_pkg'" in lines[0]
    assert proc.stdout == ""
    assert job_ids(ledger) == before


@pytest.fixture
def lonely_producer(tmp_path: Path) -> Iterator[Producer]:
    """A producer on a Redis of its own, where no worker runs."""
    server = start_redis(tmp_path / "redis", appendonly=False)
    producer = Producer(Settings.load(redis_url=server.url), server.url)
    try:
        yield producer
    finally:
        producer.close()
        server.stop()


def test_with_no_live_worker_the_check_warns_that_nothing_could_be_verified(lonely_producer: Producer) -> None:
    spec = ImagesSpec(sources=("unused",), ops="plugin:sepia,plugin:frame:2")
    assert lonely_producer.check_plugins(spec) == [
        "op 'sepia' not checked: no live worker to ask (a worker that cannot import it fails those items "
        "with plugin_unavailable)",
        "op 'frame' not checked: no live worker to ask (a worker that cannot import it fails those items "
        "with plugin_unavailable)",
    ]


def test_a_job_without_plugins_asks_nobody(lonely_producer: Producer) -> None:
    assert lonely_producer.check_plugins(ImagesSpec(sources=("unused",), ops="thumbnail:64")) == []


@pytest.fixture
def worker_with_private_plugin(
    answering: WorkerProcess, redis_url: str, ledger: Ledger, producer: Producer, tmp_path: Path
) -> Iterator[WorkerProcess]:
    """A second worker with a plugin module on its PYTHONPATH: neither this process nor the session worker has it."""
    plugin_dir = tmp_path / "worker-only"
    plugin_dir.mkdir()
    (plugin_dir / "worker_only_ops.py").write_text("def invert(image):\n    return image.point(lambda v: 255 - v)\n")
    name = f"plugin-worker-{os.getpid()}@{socket.gethostname()}"
    process = start_worker(redis_url, name, env={"PYTHONPATH": str(plugin_dir)}, log_path=tmp_path / "worker.log")
    try:
        wait_ready(ledger, [process])
        both = [answering.name, name]
        wait_until(lambda: name in ask_importable(producer.app, "op", "sepia", both, timeout=1.0).able, 30,
                   f"worker {name} to answer plugin_importable")  # fmt: skip
        yield process
    finally:
        process.terminate()
        if not process.wait(30):
            process.kill()


def test_the_workers_are_asked_not_the_submitting_machine(
    worker_with_private_plugin: WorkerProcess, answering: WorkerProcess, producer: Producer
) -> None:
    ref = "worker_only_ops.invert"
    answers = ask_importable(producer.app, "op", ref, [worker_with_private_plugin.name, answering.name])
    assert answers.able == (worker_with_private_plugin.name,), answers
    assert "No module named 'worker_only_ops'" in answers.unable[answering.name]
    # Admitted (one worker can run it), with a warning naming the worker that cannot.
    warnings = producer.check_plugins(ImagesSpec(sources=("unused",), ops=f"plugin:{ref}"))
    assert len(warnings) == 1
    assert warnings[0].startswith(f"op {ref!r} cannot be imported on {answering.name}: ")
    assert warnings[0].endswith("(its items there fail with plugin_unavailable)")
