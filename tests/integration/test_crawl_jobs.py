"""Crawl jobs against the generated demo site, checked against an independent crawler.

The reference (tests/reference_crawler.py) shares no code with pipeline; a
crawl job over the same site with the same limits must find exactly the same
pages, failures, non-HTML documents and images.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.demo.site import DemoSite
from pipeline.kinds.crawl import CrawlSpec
from pipeline.ledger import Ledger
from pipeline.producer import Producer
from tests.helpers import wait_for_job
from tests.reference_crawler import ReferenceResult, reference_crawl

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture(scope="module")
def site() -> Iterator[DemoSite]:
    with DemoSite(pages=80, slow_s=0.3) as demo:  # well inside the workers' 2 s fetch timeout
        yield demo


def _crawl(producer: Producer, ledger: Ledger, request: CrawlSpec, timeout: float = 120) -> dict[str, Any]:
    return wait_for_job(ledger, producer.submit(request), timeout=timeout)


def _outcomes(ledger: Ledger, job_id: str) -> ReferenceResult:
    """The crawl job's results in the reference crawler's shape."""
    found = ReferenceResult()
    for result in ledger.results(job_id):
        if result.kind == "page" and result.ok:
            found.pages_ok.add(result.source)
        elif result.kind == "page":
            found.pages_failed[result.source] = str(result.reason)
        elif result.kind == "other":
            found.other_ok.add(result.source)
        elif result.kind == "image":
            found.images.add(result.source)
    return found


def test_a_crawl_finds_exactly_what_an_independent_breadth_first_crawl_finds(
    site: DemoSite, producer: Producer, ledger: Ledger, outputs: Path
) -> None:
    expected = reference_crawl([site.url + "/"], max_depth=6)
    doc = _crawl(producer, ledger, CrawlSpec(seeds=[site.url + "/"], max_depth=6, images=True, output_dir=outputs))
    found = _outcomes(ledger, doc["job_id"])
    assert found.pages_ok == expected.pages_ok
    assert found.pages_failed == expected.pages_failed
    assert found.other_ok == expected.other_ok
    assert found.images == expected.images
    assert doc["pages"]["ok"] == len(expected.pages_ok)
    assert doc["images"]["ok"] + doc["images"]["failed"] == len(expected.images)
    assert doc["ledger"] == {"duplicates": 0, "unexpected": 0}
    assert doc["top_words"] and doc["top_words"][0][1] >= doc["top_words"][-1][1]
    assert (outputs / "pages.jsonl").exists() or doc["report"] is None


@pytest.mark.parametrize("max_pages", [1, 7, 40])
def test_max_pages_is_honoured_exactly(site: DemoSite, producer: Producer, ledger: Ledger, max_pages: int) -> None:
    doc = _crawl(producer, ledger, CrawlSpec(seeds=[site.url + "/"], max_pages=max_pages))
    pages = doc["pages"]
    assert pages["ok"] + pages["failed"] + pages["non_html"] == max_pages
    assert pages["links_capped"] > 0


def test_max_depth_zero_fetches_only_the_seeds(site: DemoSite, producer: Producer, ledger: Ledger) -> None:
    doc = _crawl(producer, ledger, CrawlSpec(seeds=[site.url + "/", site.url + "/page/3.html"], max_depth=0))
    assert doc["pages"]["ok"] == 2
    assert doc["pages"]["links_beyond_depth"] > 0


def test_depths_are_breadth_first_depths_even_with_many_batches_racing(
    site: DemoSite, producer: Producer, ledger: Ledger
) -> None:
    expected = reference_crawl([site.url + "/"], max_depth=4)
    doc = _crawl(producer, ledger, CrawlSpec(seeds=[site.url + "/"], max_depth=4, batch_size=2))
    depths = {r.source: r.meta.get("depth") for r in ledger.results(doc["job_id"]) if r.kind == "page"}
    assert depths == {url: expected.depth[url] for url in depths}


def test_the_crawler_trap_stops_at_the_page_cap(site: DemoSite, producer: Producer, ledger: Ledger) -> None:
    doc = _crawl(producer, ledger, CrawlSpec(seeds=[site.url + "/calendar/2024/01/"], max_pages=30))
    assert doc["state"] == "succeeded"
    pages = doc["pages"]
    assert pages["ok"] + pages["failed"] + pages["non_html"] == 30
    assert pages["links_capped"] > 0


def test_robots_txt_is_obeyed_unless_ignored(site: DemoSite, producer: Producer, ledger: Ledger) -> None:
    seeds = [site.url + "/private/1.html", site.url + "/private/2.html"]  # disallowed by the site's robots.txt
    obeyed = _crawl(producer, ledger, CrawlSpec(seeds=seeds, max_depth=0))
    ignored = _crawl(producer, ledger, CrawlSpec(seeds=seeds, max_depth=0, robots=False))
    assert obeyed["failures"] == {"robots": 2}
    assert ignored["failures"] == {}
    assert ignored["pages"]["ok"] == 2


def test_each_failure_has_its_reason(site: DemoSite, producer: Producer, ledger: Ledger) -> None:
    doc = _crawl(producer, ledger, CrawlSpec(seeds=[site.url + "/"], max_depth=6))
    for reason in ("http_404", "http_500", "robots", "redirect_loop"):
        assert doc["failures"].get(reason, 0) > 0, f"{reason} missing from {doc['failures']}"


def test_a_slow_page_times_out_as_a_per_item_failure(producer: Producer, ledger: Ledger) -> None:
    with DemoSite(pages=20, slow_s=6) as slow_site:  # the workers' fetch timeout is 2 s
        doc = _crawl(producer, ledger, CrawlSpec(seeds=[slow_site.url + "/slow.html"]))
    assert doc["failures"] == {"timeout": 1}
