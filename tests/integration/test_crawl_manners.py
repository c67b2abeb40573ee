"""Crawling manners against a real worker: the job's User-Agent, its robots.txt group, Crawl-delay, AutoThrottle."""

from __future__ import annotations

import itertools

import pytest

from pipeline.kinds.crawl import CrawlSpec
from pipeline.ledger import Ledger
from pipeline.producer import Producer
from tests.helpers import wait_for_job
from tests.manners_site import MannersSite

pytestmark = pytest.mark.usefixtures("worker")


def gaps(starts: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(sorted(starts))]


def test_every_request_carries_the_jobs_user_agent_and_its_robots_group_applies(
    producer: Producer, ledger: Ledger
) -> None:
    with MannersSite(pages=3, crawl_delay_s=0.1) as site:
        doc = wait_for_job(ledger, producer.submit(CrawlSpec(seeds=[site.url + "/"], user_agent="mybot/2.0 (+x)")))
        assert site.agents() == {"mybot/2.0 (+x)"}
        assert "/private/secret.html" not in site.paths(), "mybot's group disallows /private/"
    assert doc["failures"] == {"robots": 1} and doc["pages"]["ok"] == 4


def test_the_default_user_agent_falls_in_the_star_group(producer: Producer, ledger: Ledger) -> None:
    with MannersSite(pages=2, crawl_delay_s=0.1) as site:
        doc = wait_for_job(ledger, producer.submit(CrawlSpec(seeds=[site.url + "/"])))
        assert all(agent.startswith("pipeline/") for agent in site.agents())
        assert "/private/secret.html" in site.paths()
    assert doc["failures"] == {} and doc["pages"]["ok"] == 4


def test_a_crawl_delay_in_robots_txt_spaces_request_starts_even_without_delay(
    producer: Producer, ledger: Ledger
) -> None:
    with MannersSite(pages=4, crawl_delay_s=0.4) as site:
        wait_for_job(ledger, producer.submit(CrawlSpec(seeds=[site.url + "/"], user_agent="mybot")))
        spaced = gaps(site.starts())
    assert min(spaced) >= 0.3, f"request starts {spaced} s apart; robots.txt asked 0.4 s"


def test_autothrottle_backs_off_after_too_many_requests_and_the_job_still_completes(
    producer: Producer, ledger: Ledger
) -> None:
    with MannersSite(pages=4, busy=2) as site:
        spec = CrawlSpec(seeds=[site.url + "/"], autothrottle=True)
        doc = wait_for_job(ledger, producer.submit(spec), timeout=90)
        spaced = gaps(site.starts("/p/"))
    assert doc["state"] == "succeeded" and doc["pages"]["ok"] == 6, doc
    # Starting at 1 s, doubled by each 429: after them, requests are at least a second apart.
    assert spaced and max(spaced) >= 1.0, spaced
