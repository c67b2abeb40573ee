"""Messages the workers must refuse: pickle payloads and unknown task names.

A pickled message could run arbitrary code on unpickling; the app accepts
JSON only. Neither kind of message may execute, and the worker must carry on.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from celery import Celery

from pipeline.kinds.images import TRANSFORM_STAGE, ImagesSpec
from pipeline.ledger import Ledger
from pipeline.producer import Producer
from tasks.names import TRANSFORM_QUEUE
from tests.helpers import expect_items, make_images, wait_for_job

pytestmark = pytest.mark.usefixtures("worker")


def _hostile_sender(redis_url: str, serializer: str) -> Celery:
    app = Celery("hostile", broker=redis_url, set_as_current=False)
    app.conf.update(task_serializer=serializer, accept_content=[serializer])
    return app


def _drain_with_a_real_job(producer: Producer, ledger: Ledger, tmp_path: Path) -> dict[str, object]:
    """A job submitted after the hostile message: when it ends, the queue has moved past it."""
    make_images(tmp_path / "after", 2)
    job_id = producer.submit(ImagesSpec(sources=[str(tmp_path / "after")], output_dir=tmp_path / "out"))
    return wait_for_job(ledger, job_id)


def test_a_pickled_task_message_is_refused_and_the_worker_keeps_working(
    redis_url: str, producer: Producer, ledger: Ledger, tmp_path: Path
) -> None:
    [image] = make_images(tmp_path / "in", 1)
    ledger.create_job("hostile-pickle", "images", {}, str(tmp_path / "never"))
    expect_items(ledger, "hostile-pickle", ["x"])
    sender = _hostile_sender(redis_url, "pickle")
    sender.send_task(
        TRANSFORM_STAGE.task, args=["hostile-pickle", [["x", str(image), 0.0, 0.0]], 0.0], queue=TRANSFORM_QUEUE
    )
    sender.close()
    assert _drain_with_a_real_job(producer, ledger, tmp_path)["state"] == "succeeded"
    assert ledger.totals("hostile-pickle").done == 0, "the pickled batch must not have run"
    assert ledger.client.llen(TRANSFORM_QUEUE) == 0
    assert not (tmp_path / "never").exists()


def test_a_message_for_an_unknown_task_is_discarded_and_the_worker_keeps_working(
    redis_url: str, producer: Producer, ledger: Ledger, tmp_path: Path
) -> None:
    sender = _hostile_sender(redis_url, "json")
    sender.send_task("pipeline.no.such.task", args=[1, 2], queue=TRANSFORM_QUEUE)
    sender.close()
    assert _drain_with_a_real_job(producer, ledger, tmp_path)["state"] == "succeeded"
    assert ledger.client.llen(TRANSFORM_QUEUE) == 0
