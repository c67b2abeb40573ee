"""Many large images in one batch: more than the worker's body budget has room for.

A batch of URL images keeps its bodies until all are transformed (or in the blob
store), so each body over 1 MiB holds room in the worker's body budget
(``pipeline.core.bodies``) until the batch ends. With more such images in a
batch than the budget holds, the rest once waited for room only their own batch
held: the job hung until every waiting fetch timed out. Now a batch that already
holds room gives such an image back, to be fetched again once there is room.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator

import pytest
from PIL import Image

from pipeline.kinds.crawl import CrawlSpec
from tests.faults.conftest import FaultCluster
from tests.helpers import wait_for_job
from tests.link_site import LinkSite

IMAGES = 12
MiB = 2**20


def _large_png() -> bytes:
    """~1.3 MiB: noise does not compress, so the body is over the budget's 1 MiB line."""
    noise = Image.frombytes("RGB", (640, 700), os.urandom(640 * 700 * 3))
    out = io.BytesIO()
    noise.save(out, "PNG", compress_level=0)
    return out.getvalue()


@pytest.fixture(scope="module")
def photo_site() -> Iterator[LinkSite]:
    pages = {f"/photo/{n}.png": ("image/png", _large_png()) for n in range(IMAGES)}
    gallery = "".join(f'<img src="/photo/{n}.png">' for n in range(IMAGES))
    pages["/"] = ("text/html", f"<html><body><h1>Gallery</h1>{gallery}</body></html>".encode())
    assert all(len(body) > MiB for path, (_, body) in pages.items() if path.startswith("/photo/"))
    with LinkSite(pages) as site:
        yield site


def test_a_batch_of_more_large_images_than_the_body_budget_holds_completes_every_image(
    cluster: FaultCluster, photo_site: LinkSite
) -> None:
    # Two large-body slots (8 MiB / 4 MiB); a waiting fetch would time out in 5 s, three times.
    cluster.start("photos@test", PIPELINE_MAX_BODY_BYTES=str(4 * MiB), PIPELINE_FETCH_MEMORY_BYTES=str(8 * MiB),
                  PIPELINE_FETCH_TIMEOUT_S="5")  # fmt: skip
    urls = [f"{photo_site.url}/photo/{n}.png" for n in range(IMAGES)]
    job_id, submitted = cluster.submit(urls, ops="thumbnail:64", format="webp", batch_size=IMAGES)
    verdict = cluster.check(job_id, submitted, deadline_s=90)
    assert verdict.doc["images"]["ok"] == IMAGES, verdict.doc["failures"]
    assert verdict.doc["elapsed_s"] < 30, "no image waited for a fetch timeout"
    assert sum(photo_site.hits.values()) > IMAGES, "some images were given back and fetched again"


def test_a_crawl_of_a_page_full_of_large_images_processes_every_one(
    cluster: FaultCluster, photo_site: LinkSite
) -> None:
    cluster.start("gallery@test", PIPELINE_MAX_BODY_BYTES=str(4 * MiB), PIPELINE_FETCH_MEMORY_BYTES=str(8 * MiB),
                  PIPELINE_FETCH_TIMEOUT_S="5", PIPELINE_BATCH_SIZE=str(IMAGES))  # fmt: skip
    request = CrawlSpec(seeds=[photo_site.url + "/"], images=True, ops="thumbnail:64", format="webp", robots=False,
                        allow_private=True, output_dir=cluster.tmp_path / "gallery")  # fmt: skip
    doc = wait_for_job(cluster.ledger, cluster.producer.submit(request), timeout=90)
    assert doc["state"] == "succeeded", doc["failures"]
    assert doc["images"]["ok"] == IMAGES and doc["images"]["failed"] == 0
