"""Breadth-first depths without a depth barrier: a shorter path found late corrects a depth.

Pages are dispatched without waiting for shallower ones to finish, so a page
can be reached first by a long path while the page on its shortest path is
still slow. The ledger then lowers its depth wherever it is (frontier, in
flight, recorded) and admits the links it had refused as too deep: the crawl
ends with breadth-first depths and exactly the pages within --max-depth.

The graph, with --max-depth 4: ``/`` links a slow shortcut and a fast chain
``a1 -> a2 -> a3``; both lead to ``target``, which starts a chain
``t1 -> t2 -> t3``. Through the shortcut target is at depth 2, so t2 (4) is
in and t3 (5) is out; through the chain target would be at 4 and t1 out.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from pipeline.core.aggregate import ItemResult
from pipeline.core.urls import url_id
from pipeline.demo.server import StaticServer
from pipeline.kinds import job_document
from pipeline.kinds.crawl import CrawlSpec
from pipeline.ledger import Ledger
from pipeline.ledger.keys import job_key
from pipeline.producer import Producer
from tests.helpers import wait_for_job

ORIGIN = "http://site.test"
GRAPH = {
    "/": ["/shortcut", "/a1"],
    "/shortcut": ["/target"],
    "/a1": ["/a2"],
    "/a2": ["/a3"],
    "/a3": ["/target"],
    "/target": ["/t1"],
    "/t1": ["/t2"],
    "/t2": ["/t3"],
}
DEPTHS = {"/": 0, "/shortcut": 1, "/a1": 1, "/a2": 2, "/a3": 3, "/target": 2, "/t1": 3, "/t2": 4}


def _id(path: str) -> str:
    return url_id(ORIGIN + path, "p")


def _result(path: str, depth: int) -> str:
    """A page's result as a worker sends it: the depth it was dispatched with, and its links."""
    result = ItemResult(id=_id(path), ok=True, source=ORIGIN + path, kind="page", meta={"depth": depth}).to_json()
    result["_links"] = [[_id(link), ORIGIN + link] for link in GRAPH.get(path, [])]
    return json.dumps(result)


class Crawl:
    """Drive one crawl job through the ledger by hand, in an order the test chooses."""

    def __init__(self, ledger: Ledger, max_depth: int) -> None:
        self.ledger, self.job_id = ledger, f"depths-{uuid.uuid4().hex[:8]}"
        ledger.create_job(self.job_id, "crawl", {"crawl": True}, "/nowhere", max_pages=100, max_depth=max_depth,
                          window=100)  # fmt: skip
        ledger.seed(self.job_id, [(_id("/"), ORIGIN + "/")])
        self.dispatched: dict[str, int] = {}
        self.finished = 0

    def dispatch(self) -> set[str]:
        claimed = self.ledger.dispatch(self.job_id, 300, 100)
        paths = {item.source.removeprefix(ORIGIN) for item in claimed}
        self.dispatched.update({item.source.removeprefix(ORIGIN): item.depth for item in claimed})
        return paths

    def record(self, path: str) -> None:
        _, finished = self.ledger.record_raw(self.job_id, [_result(path, self.dispatched[path])])
        self.finished += finished

    def depths(self) -> dict[str, int]:
        return {r.source.removeprefix(ORIGIN): r.meta["depth"] for r in self.ledger.results(self.job_id)}


@pytest.mark.parametrize("target_is", ["waiting", "in_flight", "recorded"])
def test_a_shorter_path_found_late_lowers_the_depth_and_admits_what_was_too_deep(
    ledger: Ledger, target_is: str
) -> None:
    crawl = Crawl(ledger, max_depth=4)
    assert crawl.dispatch() == {"/"}
    crawl.record("/")
    assert crawl.dispatch() == {"/shortcut", "/a1"}
    for step in ("/a1", "/a2"):  # the fast chain runs ahead while the shortcut is slow
        crawl.record(step)
        crawl.dispatch()
    crawl.record("/a3")  # admits target at depth 4
    if target_is != "waiting":
        assert crawl.dispatch() == {"/target"} and crawl.dispatched["/target"] == 4
    if target_is == "recorded":
        crawl.record("/target")  # at depth 4 its link to t1 (5) is refused
        assert job_document(ledger, crawl.job_id)["pages"]["links_beyond_depth"] == 1
    crawl.record("/shortcut")
    if target_is != "recorded":
        crawl.dispatch()
        crawl.record("/target")
    for step in ("/t1", "/t2"):
        assert step in crawl.dispatch()
        crawl.record(step)
    assert crawl.dispatch() == set()

    doc = job_document(ledger, crawl.job_id)
    assert doc["state"] == "succeeded" and crawl.finished == 1
    assert crawl.depths() == DEPTHS
    assert doc["pages"]["links_beyond_depth"] == 1, "only t2 -> t3 is beyond --max-depth"
    assert ledger.client.exists(job_key(crawl.job_id, "links"), job_key(crawl.job_id, "unsettled")) == 0


def test_a_page_keeps_its_links_only_while_a_shorter_path_to_it_may_turn_up(ledger: Ledger) -> None:
    crawl = Crawl(ledger, max_depth=10)
    crawl.dispatch()
    crawl.record("/")
    crawl.dispatch()
    crawl.record("/a1")  # depth 1, the shortcut (1) is open: settled, nothing kept
    assert ledger.client.hlen(job_key(crawl.job_id, "links")) == 0
    crawl.dispatch()
    crawl.record("/a2")  # depth 2 while the shortcut (1) is open: still settled (a shorter path would be 1 + 1)
    crawl.dispatch()
    crawl.record("/a3")  # depth 3: the shortcut could still lead to target at 2, so a3's links are kept
    assert ledger.client.hkeys(job_key(crawl.job_id, "links")) == [_id("/a3")]
    crawl.record("/shortcut")
    assert ledger.client.hlen(job_key(crawl.job_id, "links")) == 0, "settled once the shortcut is done"


@pytest.mark.usefixtures("worker")
def test_a_slow_page_on_the_shortest_path_does_not_change_the_crawl(
    producer: Producer, ledger: Ledger, tmp_path: Path
) -> None:
    names = {path: path.strip("/") + ".html" if path != "/" else "index.html" for path in [*GRAPH, "/t3"]}

    def href(path: str) -> str:
        return "/slow/1.5/shortcut.html" if path == "/shortcut" else "/" + names[path]

    for path, name in names.items():
        links = "".join(f'<a href="{href(link)}">{link}</a> ' for link in GRAPH.get(path, []))
        (tmp_path / name).write_text(f"<html><body><p>page {path}</p>{links}</body></html>")
    with StaticServer(tmp_path) as site:
        doc = wait_for_job(ledger, producer.submit(CrawlSpec(seeds=[site.url + "/index.html"], max_depth=4)))
        hits = {path: n for path, n in site.hits.items() if path != "/robots.txt"}
    depths = {r.source.removeprefix(site.url): r.meta["depth"] for r in ledger.results(doc["job_id"])}
    assert depths == {href(path): depth for path, depth in DEPTHS.items()}
    assert doc["pages"]["links_beyond_depth"] == 1
    assert set(hits) == set(depths) and all(n == 1 for n in hits.values()), hits
