"""A worker killed with SIGKILL mid-scrape: the feed is still exact (every item once, in order).

The killed worker's pages are taken over or re-delivered; items travel with
their page's result, first write wins, so nothing is lost or doubled. The
expected feed comes from the shop's own values (``pipeline.demo.shop.product``),
not from parsing.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.demo import shop
from pipeline.demo.site import DemoSite
from pipeline.kinds.scrape import ScrapeSpec
from tests.faults.conftest import FaultCluster
from tests.helpers import wait_for_report, wait_until

PRODUCTS = 160


@pytest.fixture
def site() -> Iterator[DemoSite]:
    with DemoSite(pages=40, products=PRODUCTS) as demo:
        yield demo


def test_a_worker_killed_with_sigkill_mid_scrape_leaves_the_feed_exact(
    cluster: FaultCluster, site: DemoSite, tmp_path: Path
) -> None:
    doomed = cluster.start("doomed@test")
    feed = tmp_path / "products.jsonl"
    spec = ScrapeSpec(seeds=[site.url + "/shop/"], follow="css:a.next, h2.name a", item="css:article.product-detail",
                      fields=("sku=css:.sku::text", "name=css:h1::text", "price=css:.price::text"), feed=feed,
                      output_dir=tmp_path / "out", delay_s=0.03, per_host=1, concurrency=2, batch_size=2)  # fmt: skip
    job_id = cluster.producer.submit(spec)
    wait_until(lambda: cluster.done(job_id) >= 30, 60, "the doomed worker to be mid-scrape")
    cluster.signal(doomed, signal.SIGKILL)
    doomed.process.wait()
    assert cluster.done(job_id) < PRODUCTS, "the scrape finished before the kill; nothing was tested"
    cluster.start("rescuer@test")
    doc = wait_for_report(cluster.ledger, job_id, timeout=120)
    base = site.url + "/shop/item/"
    order = sorted(range(PRODUCTS), key=lambda i: (i // shop.PER_PAGE, f"{base}{i}.html"))
    expected = [{"url": f"{base}{i}.html", "sku": shop.product(site.seed, i)["sku"],
                 "name": shop.product(site.seed, i)["name"], "price": shop.product(site.seed, i)["price"]}
                for i in order]  # fmt: skip
    found = [json.loads(line) for line in feed.read_text(encoding="utf-8").splitlines()]
    assert found == expected
    assert doc["scrape"]["items"] == PRODUCTS and doc["pages"]["failed"] == 0
    assert doc["ledger"]["unexpected"] == 0
