"""An image batch that reaches its deadline fails only the images still being fetched.

A crawl's images pass its politeness gate; with one request at a time per host and
a slow image server, a batch can outlast ``PIPELINE_TASK_DEADLINE_S``. The images
fetched by then are transformed and counted; the rest fail as ``deadline``. Before,
the whole batch failed as ``internal_error``, the images already fetched with it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline.kinds.crawl import CrawlSpec
from tests.faults.conftest import FaultCluster
from tests.helpers import image_bytes, wait_for_job
from tests.link_site import LinkSite

IMAGES = 12
ANSWER_S = 0.6  # each image; one at a time, the batch needs ~7 s against a 4 s deadline


@pytest.fixture(scope="module")
def slow_gallery() -> Iterator[LinkSite]:
    pages = {f"/img/{n}.jpg": ("image/jpeg", image_bytes((64, 48))) for n in range(IMAGES)}
    tags = "".join(f'<img src="/img/{n}.jpg">' for n in range(IMAGES))
    pages["/"] = ("text/html", f"<html><body><h1>Slow gallery</h1>{tags}</body></html>".encode())
    with LinkSite(pages, delay_s=lambda path: ANSWER_S if path.startswith("/img/") else 0.0) as site:
        yield site


def test_images_still_fetching_at_the_batch_deadline_fail_alone_and_the_rest_count(
    cluster: FaultCluster, slow_gallery: LinkSite
) -> None:
    cluster.start("deadline@test", PIPELINE_TASK_DEADLINE_S="4", PIPELINE_FETCH_RETRIES="0",
                  PIPELINE_BATCH_SIZE=str(IMAGES))  # fmt: skip
    request = CrawlSpec(seeds=[slow_gallery.url + "/"], images=True, ops="thumbnail:32", format="webp",
                        robots=False, allow_private=True, per_host=1,
                        output_dir=cluster.tmp_path / "gallery")  # fmt: skip
    doc = wait_for_job(cluster.ledger, cluster.producer.submit(request), timeout=90)
    images = doc["images"]
    assert images["ok"] + images["failed"] == IMAGES
    assert 0 < images["ok"] < IMAGES, images
    assert set(doc["failures"]) == {"deadline"}, doc["failures"]
