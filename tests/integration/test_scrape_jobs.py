"""Scrape jobs against the demo shop, checked against an independent scraper (tests/reference_scraper.py).

Two workers (the session's and one more) share every job: the feed must still
equal the oracle item for item, in order, and each format must round-trip.
"""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.cluster import WorkerProcess, start_worker, wait_ready
from pipeline.demo.site import DemoSite
from pipeline.kinds.scrape import ScrapeSpec
from pipeline.ledger import Ledger
from pipeline.producer import Producer
from tests.helpers import wait_for_report
from tests.reference_scraper import scrape_listings

pytestmark = pytest.mark.usefixtures("worker", "second_worker")
PIPELINE = str(Path(sys.executable).parent / "pipeline")
LISTING_FIELDS = (
    "name=css:h2.name a::text",
    r"price=css:span.price::text|re:[\d,]+\.\d+|float",
    "tags[]=css:ul.tags li::text",
    "link=css:h2.name a::attr(href)",
    "date=xpath:.//time/@datetime",
    "blurb=css:p.blurb::text",
    "sku=xpath:./@data-sku",
)


@pytest.fixture(scope="module")
def second_worker(
    redis_url: str, ledger_module: Ledger, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    logs = tmp_path_factory.mktemp("scrape-worker")
    process = start_worker(redis_url, f"scrape-second@{socket.gethostname()}", log_path=logs / "worker.log")
    try:
        wait_ready(ledger_module, [process])
    except BaseException:
        process.kill()
        raise
    yield process
    process.terminate()
    if not process.wait(30):
        process.kill()


@pytest.fixture(scope="module")
def ledger_module(redis_url: str) -> Iterator[Ledger]:
    from pipeline.ledger.connection import connect

    ledger = Ledger(connect(redis_url))
    yield ledger
    ledger.client.close()


@pytest.fixture(scope="module")
def site() -> Iterator[DemoSite]:
    with DemoSite(pages=40, products=90) as demo:
        yield demo


def _scrape(producer: Producer, ledger: Ledger, **fields: Any) -> dict[str, Any]:
    spec = ScrapeSpec.build(**fields)
    return wait_for_report(ledger, producer.submit(spec), timeout=120)


def _listing_spec(site: DemoSite, feed: Path, outputs: Path) -> dict[str, Any]:
    return {"seeds": [site.url + "/shop/"], "item": "css:div.product", "fields": LISTING_FIELDS,
            "follow": "css:a.next", "feed": feed, "output_dir": outputs, "batch_size": 2}  # fmt: skip


def test_the_feed_equals_an_independent_scrape_item_for_item_in_order(
    site: DemoSite, producer: Producer, ledger: Ledger, outputs: Path, tmp_path: Path
) -> None:
    expected = scrape_listings(site.url + "/shop/")
    feed = tmp_path / "products.jsonl"
    doc = _scrape(producer, ledger, **_listing_spec(site, feed, outputs))
    found = [json.loads(line) for line in feed.read_text(encoding="utf-8").splitlines()]
    assert len(expected) > 90  # every product, and the featured repeats
    assert found == expected
    assert doc["scrape"]["items"] == len(expected)
    assert doc["pages"]["ok"] == 12


def test_the_report_aggregates_every_field(
    site: DemoSite, producer: Producer, ledger: Ledger, outputs: Path, tmp_path: Path
) -> None:
    expected = scrape_listings(site.url + "/shop/")
    doc = _scrape(producer, ledger, **_listing_spec(site, tmp_path / "p.jsonl", outputs))
    fields = doc["scrape"]["fields"]
    prices = [item["price"] for item in expected]
    assert fields["price"]["numeric"]["min"] == min(prices)
    assert fields["price"]["numeric"]["max"] == max(prices)
    assert fields["price"]["numeric"]["sum"] == pytest.approx(sum(prices))
    assert fields["sku"]["distinct"] == len({item["sku"] for item in expected})
    assert fields["name"]["fill_rate"] == 1.0
    tags = [tag for item in expected for tag in item["tags"]]
    top_tag = max(set(tags), key=lambda t: (tags.count(t), -tags.index(t)))
    assert fields["tags"]["top"][0] == [top_tag, tags.count(top_tag)]
    report = json.loads(Path(doc["report"]).read_text())
    assert report["scrape"]["fields"] == fields


def test_a_unique_key_writes_each_product_once_and_counts_the_repeats(
    site: DemoSite, producer: Producer, ledger: Ledger, outputs: Path, tmp_path: Path
) -> None:
    expected = scrape_listings(site.url + "/shop/")
    feed = tmp_path / "unique.json"
    doc = _scrape(producer, ledger, **_listing_spec(site, feed, outputs), unique=("sku",))
    firsts: dict[str, dict[str, Any]] = {}
    for item in expected:
        firsts.setdefault(item["sku"], item)
    assert json.loads(feed.read_text(encoding="utf-8")) == list(firsts.values())
    assert doc["scrape"]["duplicates"] == len(expected) - len(firsts)


def test_a_csv_feed_round_trips_commas_quotes_newlines_and_unicode(
    site: DemoSite, producer: Producer, ledger: Ledger, outputs: Path, tmp_path: Path
) -> None:
    expected = scrape_listings(site.url + "/shop/")
    feed = tmp_path / "products.csv"
    _scrape(producer, ledger, **_listing_spec(site, feed, outputs))
    with feed.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == ["url", "name", "price", "tags", "link", "date", "blurb", "sku"]
    assert [row["name"] for row in rows] == [item["name"] for item in expected]
    assert [row["blurb"] for row in rows] == [item["blurb"] for item in expected]
    assert [row["tags"] for row in rows] == [",".join(item["tags"]) for item in expected]
    assert [float(row["price"]) for row in rows] == [item["price"] for item in expected]
    assert any('"' in row["name"] and "," in row["name"] for row in rows)
    assert any("\n" in row["blurb"] for row in rows) and any(not row["name"].isascii() for row in rows)


def test_a_required_field_leaves_items_out_as_incomplete_naming_the_field(
    site: DemoSite, producer: Producer, ledger: Ledger, outputs: Path, tmp_path: Path, redis_url: str
) -> None:
    spec = tmp_path / "items.toml"
    spec.write_text(
        'follow = "css:h2.name a"\nunique = ["sku"]\n[fields]\nname = "css:article h1::text"\n'
        '[fields.sku]\nselector = "css:span.sku::text"\nrequired = true\n'
        "[fields.stock]\nselector = \"css:span.stock::text\"\nre = '(\\d+) in stock'\n"
        'number = "int"\nrequired = true\n',
        encoding="utf-8",
    )
    feed = tmp_path / "stock.jsonl"
    proc = subprocess.run(
        [PIPELINE, "submit", "scrape", site.url + "/shop/list/0.html", "--spec", str(spec), "-o", str(feed),
         "--max-depth", "1", "--output", str(outputs), "--wait", "--json", "--timeout", "120"],
        env={"PIPELINE_REDIS_URL": redis_url, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    items = [json.loads(line) for line in feed.read_text(encoding="utf-8").splitlines()]
    # Listing 0 shows products 0-7, whose pages are depth 1; products 0 and 5 have no stock line.
    assert [item["sku"] for item in items] == [f"SKU-{i:05d}" for i in (1, 2, 3, 4, 6, 7)]
    assert all(isinstance(item["stock"], int) for item in items)
    assert doc["scrape"]["incomplete"] == {"sku": 1, "stock": 2}  # the listing itself has no sku


def test_an_extractor_that_raises_fails_its_page_and_the_rest_of_the_job_completes(
    site: DemoSite, producer: Producer, ledger: Ledger, outputs: Path, tmp_path: Path
) -> None:
    feed = tmp_path / "extracted.jsonl"
    doc = _scrape(producer, ledger, seeds=[site.url + "/shop/list/0.html"], follow="css:h2.name a", max_depth=1,
                  extractor="tests.scrape_extractors:sku_and_heading", feed=feed, output_dir=outputs)  # fmt: skip
    items = [json.loads(line) for line in feed.read_text(encoding="utf-8").splitlines()]
    assert [item["sku"] for item in items] == [f"SKU-{i:05d}" for i in (0, 1, 2, 3, 4, 6, 7)]
    assert all(item["url"].endswith(f"/item/{int(item['sku'][4:])}.html") for item in items)
    assert doc["failures"] == {"extractor_error": 1}
    failed = [r for r in ledger.results(doc["job_id"]) if not r.ok]
    assert [(r.source.rsplit("/", 1)[-1], r.reason) for r in failed] == [("5.html", "extractor_error")]
    assert "ValueError: product 5 is not for sale" in failed[0].detail
    assert doc["scrape"]["fields"]["heading"]["fill_rate"] == 1.0


def test_the_printed_report_shows_the_feed_and_each_fields_statistics(
    site: DemoSite, outputs: Path, tmp_path: Path, redis_url: str
) -> None:
    feed = tmp_path / "shown.csv"
    proc = subprocess.run(
        [PIPELINE, "submit", "scrape", site.url + "/shop/", "--item", "css:div.product", "--follow", "css:a.next",
         "--field", r"price=css:.price::text|re:[\d,]+\.\d+|float", "--field", "tags[]=css:ul.tags li::text",
         "-o", str(feed), "--output", str(outputs), "--wait", "--timeout", "120"],
        env={"PIPELINE_REDIS_URL": redis_url, "PATH": "/usr/bin:/bin", "COLUMNS": "200"}, capture_output=True,
        text=True, timeout=150,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    shown = proc.stdout + proc.stderr
    assert f"in {feed}" in shown
    price = next(line for line in shown.splitlines() if " price " in line)
    tags = next(line for line in shown.splitlines() if " tags " in line)
    assert "100% filled" in price and "min " in price and "mean " in price
    assert "100% filled; 10 distinct" in tags


def test_an_installed_extractor_named_by_its_entry_point_scrapes_the_listings(
    site: DemoSite, producer: Producer, ledger: Ledger, outputs: Path, tmp_path: Path
) -> None:
    expected = scrape_listings(site.url + "/shop/")
    feed = tmp_path / "by-plugin.jsonl"
    doc = _scrape(producer, ledger, seeds=[site.url + "/shop/"], follow="css:a.next", extractor="products",
                  feed=feed, output_dir=outputs)  # fmt: skip
    items = [json.loads(line) for line in feed.read_text(encoding="utf-8").splitlines()]
    assert [(item["url"], item["name"]) for item in items] == [(item["url"], item["name"]) for item in expected]
    assert doc["failures"] == {}
