"""What a crawl says when a site's robots.txt cannot be had, and what it does with a huge one.

RFC 9309: an unreachable robots.txt (no answer, 5xx) disallows the whole site; but the
pages it refuses must say what happened (``dns_error``, ``connection_error``,
``timeout``, ``http_503``), not ``robots``, which means "the rules disallow it". A
robots.txt over any cap is parsed up to at least 500 KiB, never the reason to refuse a site.
One crawl job covers every case (one seed per misbehaving host), against a real worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from pipeline.config import Settings
from pipeline.kinds.crawl import CrawlSpec
from pipeline.ledger import Ledger
from pipeline.localredis import free_port
from pipeline.producer import Producer
from tests.helpers import wait_for_job
from tests.robots_site import RobotsSite

pytestmark = pytest.mark.usefixtures("worker")


class Crawl:
    def __init__(self, doc: dict[str, Any], results: dict[str, Any], sites: dict[str, RobotsSite]) -> None:
        self.doc, self.results, self.sites = doc, results, sites

    def result(self, url: str) -> Any:
        return self.results[url]


@pytest.fixture(scope="module")
def crawl(settings: Settings, redis_url: str) -> Iterator[Crawl]:
    with ExitStack() as stack:
        sites = {mode: stack.enter_context(RobotsSite(mode)) for mode in ("503", "slow", "huge")}
        closed = f"http://127.0.0.1:{free_port()}/"
        seeds = ["http://nosuchhost.invalid/", closed] + [site.url + "/" for site in sites.values()]
        producer = Producer(settings, redis_url)
        ledger = Ledger(producer.ledger.client)
        try:
            job_id = producer.submit(CrawlSpec(seeds=seeds, max_pages=50))
            doc = wait_for_job(ledger, job_id, timeout=90)
            results = {r.source: r for r in ledger.results(job_id)}
            results["closed"] = results[closed]
            yield Crawl(doc, results, sites)
        finally:
            producer.close()


def test_a_seed_whose_host_does_not_resolve_fails_with_dns_error(crawl: Crawl) -> None:
    result = crawl.result("http://nosuchhost.invalid/")
    assert result.reason == "dns_error"
    assert "robots.txt" in result.detail and "nosuchhost.invalid" in result.detail


def test_a_seed_whose_port_refuses_connections_fails_with_connection_error(crawl: Crawl) -> None:
    result = crawl.result("closed")
    assert result.reason == "connection_error"
    assert "robots.txt" in result.detail


def test_a_seed_whose_robots_txt_answers_503_fails_with_http_503_and_is_not_fetched(crawl: Crawl) -> None:
    site = crawl.sites["503"]
    result = crawl.result(site.url + "/")
    assert result.reason == "http_503"
    assert "robots.txt" in result.detail and "RFC 9309" in result.detail
    assert site.hits["/"] == 0  # unreachable still means disallowed


def test_a_seed_whose_robots_txt_times_out_fails_with_timeout(crawl: Crawl) -> None:
    site = crawl.sites["slow"]
    result = crawl.result(site.url + "/")
    assert result.reason == "timeout"
    assert "robots.txt" in result.detail
    assert site.hits["/"] == 0


def test_a_robots_txt_over_5_mb_is_parsed_and_obeyed_not_refused(crawl: Crawl) -> None:
    site = crawl.sites["huge"]
    assert crawl.result(site.url + "/").ok
    assert crawl.result(site.url + "/public.html").ok
    assert crawl.result(site.url + "/private/1.html").reason == "robots"
    assert site.hits["/private/1.html"] == 0


def test_robots_is_only_the_reason_of_pages_the_rules_disallow(crawl: Crawl) -> None:
    assert crawl.doc["failures"] == {"dns_error": 1, "connection_error": 1, "http_503": 1, "timeout": 1, "robots": 1}
