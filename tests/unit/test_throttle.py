"""AutoThrottle's delay per host (pipeline.throttle), and the robots.txt parts of crawling manners."""

from __future__ import annotations

import pytest

from pipeline.core.robots import RobotsRules, agent_token
from pipeline.throttle import MAX_DELAY_S, START_DELAY_S, AutoThrottle


def test_a_fast_host_is_asked_more_often_as_its_answers_come_back() -> None:
    throttle = AutoThrottle(target_concurrency=2.0)
    delays = [throttle.observe("fast", 0.02, 200) for _ in range(30)]
    assert delays == sorted(delays, reverse=True)
    assert delays[-1] == pytest.approx(0.02 / 2.0), "down to its latency over the target concurrency"


def test_a_slow_host_is_never_asked_faster_than_its_latency_over_the_target() -> None:
    throttle = AutoThrottle(target_concurrency=2.0)
    for _ in range(20):
        delay = throttle.observe("slow", 3.0, 200)
    assert delay == pytest.approx(1.5)


@pytest.mark.parametrize("status", [429, 503])
def test_too_many_requests_doubles_the_delay_at_once(status: int) -> None:
    throttle = AutoThrottle()
    before = throttle.delay("busy")
    assert throttle.observe("busy", 0.01, status) == 2 * before


@pytest.mark.parametrize("status", [404, 500, None])
def test_an_error_never_makes_the_delay_shorter(status: int | None) -> None:
    throttle = AutoThrottle()
    before = throttle.delay("h")
    assert throttle.observe("h", 0.001, status) == before


def test_the_delay_stays_between_the_jobs_floor_and_the_cap() -> None:
    throttle = AutoThrottle(floor_s=2.0)
    for _ in range(10):
        throttle.observe("h", 0.001, 200)
    assert throttle.delay("h") == 2.0
    for _ in range(20):
        throttle.observe("h", 0.001, 429)
    assert throttle.delay("h") == MAX_DELAY_S


def test_hosts_are_throttled_apart() -> None:
    throttle = AutoThrottle()
    throttle.observe("a", 0.001, 429)
    assert throttle.delay("b") == START_DELAY_S


@pytest.mark.parametrize(("ua", "token"), [("mybot/1.0 (+https://x.org/bot)", "mybot"), ("pipeline", "pipeline"),
                                           ("Some Bot", "Some"), ("", "*")])  # fmt: skip
def test_the_robots_product_token_is_the_user_agents_first_word(ua: str, token: str) -> None:
    assert agent_token(ua) == token


ROBOTS = "User-agent: mybot\nDisallow: /private/\nCrawl-delay: 0.5\n\nUser-agent: *\nDisallow:\n"


def test_the_group_of_the_agents_token_applies_with_its_crawl_delay() -> None:
    rules = RobotsRules(text=ROBOTS)
    assert not rules.allows("http://h/private/1.html", "mybot")
    assert rules.allows("http://h/private/1.html", "pipeline")
    assert rules.crawl_delay("mybot") == 0.5
    assert rules.crawl_delay("pipeline") == 0.0
    assert RobotsRules(allow_all=True).crawl_delay("mybot") == 0.0
