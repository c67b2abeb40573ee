"""--max-pages admits the shallowest pages, however unevenly the branches of a site progress.

Pages go out without waiting for a depth to finish, so a fast branch can run far ahead of
a slow one. Under the cap that once spent the budget on the fast branch's deep pages while
the slow branch's shallow ones were refused. Now, from half the cap on, a page waits while
one two levels shallower is open, and at the cap a deeper page still waiting gives its
place to a shallower link.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from pipeline.core.aggregate import ItemResult
from pipeline.core.urls import url_id
from pipeline.kinds import job_document
from pipeline.kinds.crawl import CrawlSpec
from pipeline.ledger import Ledger
from pipeline.producer import Producer
from tests.helpers import wait_for_job
from tests.link_site import LinkSite
from tests.reference_crawler import reference_crawl

ORIGIN = "http://site.test"
GRAPH = {"/": ["/slow", "/a1"], "/slow": ["/s1"], "/a1": ["/a2"], "/a2": ["/a3"], "/a3": ["/a4"]}


def _id(path: str) -> str:
    return url_id(ORIGIN + path, "p")


class Crawl:
    """One crawl job driven through the ledger by hand (as in test_crawl_depths)."""

    def __init__(self, ledger: Ledger, max_pages: int) -> None:
        self.ledger, self.job_id = ledger, f"cap-{uuid.uuid4().hex[:8]}"
        ledger.create_job(self.job_id, "crawl", {"crawl": True}, "/nowhere", max_pages=max_pages, window=100)
        ledger.seed(self.job_id, [(_id("/"), ORIGIN + "/")])
        self.dispatched: dict[str, int] = {}

    def dispatch(self) -> set[str]:
        claimed = self.ledger.dispatch(self.job_id, 300, 100)
        self.dispatched.update({item.source.removeprefix(ORIGIN): item.depth for item in claimed})
        return {item.source.removeprefix(ORIGIN) for item in claimed}

    def record(self, path: str) -> None:
        result = ItemResult(id=_id(path), ok=True, source=ORIGIN + path, kind="page",
                            meta={"depth": self.dispatched[path]}).to_json()  # fmt: skip
        result["_links"] = [[_id(link), ORIGIN + link] for link in GRAPH.get(path, [])]
        self.ledger.record_raw(self.job_id, [json.dumps(result)])


def test_at_the_cap_a_deeper_waiting_page_gives_its_place_to_a_shallower_link(ledger: Ledger) -> None:
    crawl = Crawl(ledger, max_pages=5)
    assert crawl.dispatch() == {"/"}
    crawl.record("/")
    assert crawl.dispatch() == {"/slow", "/a1"}
    crawl.record("/a1")
    assert crawl.dispatch() == {"/a2"}  # depth 2: within one level of the open /slow
    crawl.record("/a2")  # admits /a3 (depth 3): the 5th page, the cap
    assert crawl.dispatch() == set(), "/a3 waits: /slow (depth 1) may still link to depth 2"
    crawl.record("/slow")  # /s1 (depth 2) takes /a3's place
    assert crawl.dispatch() == {"/s1"}
    crawl.record("/s1")
    assert crawl.dispatch() == set()
    doc = job_document(ledger, crawl.job_id)
    assert doc["state"] == "succeeded"
    pages = {r.source.removeprefix(ORIGIN) for r in ledger.results(crawl.job_id)}
    assert pages == {"/", "/slow", "/a1", "/a2", "/s1"}
    assert doc["pages"]["links_capped"] == 1  # /a3, let go


CHAIN = 60


def _html(links: list[str]) -> tuple[str, bytes]:
    anchors = " ".join(f'<a href="{link}">{link}</a>' for link in links)
    return "text/html", f"<html><body><p>a page</p>{anchors}</body></html>".encode()


@pytest.fixture(scope="module")
def two_chains() -> Iterator[LinkSite]:
    """``/`` starts two endless-looking chains: /slow/k answers in 0.1 s, /fast/k at once."""
    pages = {"/": _html(["/slow/1", "/fast/1"])}
    for branch in ("slow", "fast"):
        pages.update({f"/{branch}/{k}": _html([f"/{branch}/{k + 1}"]) for k in range(1, CHAIN)})
    with LinkSite(pages, delay_s=lambda path: 0.1 if path.startswith("/slow/") else 0.0) as site:
        yield site


@pytest.mark.usefixtures("worker")
def test_a_fast_branch_does_not_take_the_budget_of_a_slow_one(
    two_chains: LinkSite, producer: Producer, ledger: Ledger
) -> None:
    max_pages = 41  # breadth first: / and both chains down to depth 20
    expected = reference_crawl([two_chains.url + "/"], max_pages=max_pages)
    job_id = producer.submit(CrawlSpec(seeds=[two_chains.url + "/"], max_pages=max_pages))
    doc = wait_for_job(ledger, job_id, timeout=90)
    depths = {r.source: r.meta["depth"] for r in ledger.results(job_id) if r.kind == "page"}
    assert depths == expected.depth
    assert max(depths.values()) == 20
    assert doc["pages"]["ok"] == max_pages
