"""One resource, one item: spellings of a URL that a server sees as one are fetched once.

``/a~b``, ``/a%7Eb`` and ``/a%7eb``; ``/e/€``, ``/e/%E2%82%AC`` and ``/e/%e2%82%ac``;
``/%78%38`` and ``/x8``; ``café`` and ``caf%C3%A9``: a crawl once counted 24 pages for 17
resources and asked the server for the same path three times. Checked against a real
worker, a server counting requests per decoded path, and the independent reference crawler.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.kinds.crawl import CrawlSpec
from pipeline.kinds.images import ImagesSpec
from pipeline.ledger import Ledger
from pipeline.producer import Producer
from tests.helpers import image_bytes, wait_for_job
from tests.link_site import LinkSite
from tests.reference_crawler import reference_crawl

pytestmark = pytest.mark.usefixtures("worker")

SPELLINGS = {  # decoded path (the resource) -> the spellings the start page links to
    "/a~b": ["/a~b", "/a%7Eb", "/a%7eb"],
    "/e/€": ["/e/€", "/e/%E2%82%AC", "/e/%e2%82%ac"],
    "/x8": ["/%78%38", "/x8"],
    "/café": ["café", "caf%C3%A9", "/caf%c3%a9"],
}


def _html(body: str) -> tuple[str, bytes]:
    return "text/html", f"<!doctype html><html><head><meta charset=utf-8></head><body>{body}</body></html>".encode()


@pytest.fixture(scope="module")
def site() -> Iterator[LinkSite]:
    links = " ".join(f'<a href="{href}">{href}</a>' for hrefs in SPELLINGS.values() for href in hrefs)
    pages = {"/": _html(links + ' <img src="a.jpg"> <img src="a.jpg#x"> <img src="/./a.jpg">')}
    pages.update({path: _html(f"<p>the page {path}</p>") for path in SPELLINGS})
    pages["/a.jpg"] = ("image/jpeg", image_bytes((64, 48)))
    with LinkSite(pages) as served:
        yield served


def test_a_crawl_fetches_each_resource_once_whatever_its_spelling(
    site: LinkSite, producer: Producer, ledger: Ledger
) -> None:
    job_id = producer.submit(CrawlSpec(seeds=[site.url + "/"], images=True))
    doc = wait_for_job(ledger, job_id, timeout=60)
    assert doc["pages"]["ok"] == 1 + len(SPELLINGS)
    assert doc["images"] == {"ok": 1, "failed": 0}
    assert doc["failures"] == {}
    fetched = {path: n for path, n in site.hits.items() if path != "/robots.txt"}
    assert fetched == dict.fromkeys(["/", *SPELLINGS, "/a.jpg"], 1)


def test_the_reference_crawler_counts_the_same_resources(site: LinkSite, producer: Producer, ledger: Ledger) -> None:
    expected = reference_crawl([site.url + "/"])
    job_id = producer.submit(CrawlSpec(seeds=[site.url + "/"]))
    wait_for_job(ledger, job_id, timeout=60)
    found = {r.source for r in ledger.results(job_id) if r.kind == "page" and r.ok}
    assert found == expected.pages_ok
    assert len(found) == 1 + len(SPELLINGS)


def test_an_image_job_makes_one_item_of_one_image_however_it_is_spelled(
    site: LinkSite, producer: Producer, ledger: Ledger, tmp_path: Path
) -> None:
    before = site.hits["/a.jpg"]
    sources = [site.url + "/a.jpg", site.url + "/a.jpg#x", site.url + "//a.jpg", site.url + "/./a%2Ejpg"]
    job_id = producer.submit(ImagesSpec(sources=sources, output_dir=tmp_path / "out"))
    doc = wait_for_job(ledger, job_id, timeout=60)
    assert doc["images"] == {"ok": 1, "failed": 0, "total": 1, "pending": 0}
    assert site.hits["/a.jpg"] - before == 1
    assert [p.name for p in (tmp_path / "out").iterdir() if p.suffix == ".jpg"] == ["a.jpg"]
