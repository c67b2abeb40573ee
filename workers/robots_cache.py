"""robots.txt for every host a worker crawls: fetched once, shared through Redis.

Rules are kept per origin (``scheme://host[:port]``) in this process and in
Redis for ten minutes, so N workers crawling one site fetch its robots.txt
about once, not once each. An asyncio lock per origin stops a batch of pages
on a new host from fetching it twenty times at once.

A robots.txt that cannot be had (no DNS answer, refused connection, timeout,
5xx) disallows the whole site, as RFC 9309 says; the pages it refuses fail with
what happened to it (``dns_error``, ``connection_error``, ``timeout``,
``http_503``...), not with ``robots``, which is kept for pages the rules disallow.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from pipeline.core.errors import FetchError
from pipeline.core.fetch import fetch_url
from pipeline.core.limits import FetchLimits
from pipeline.core.robots import PARSE_LIMIT, RobotsRules
from pipeline.ledger.keys import robots_key

AGENT = "pipeline"
TTL_S = 600
# At most these; the worker's own limits when tighter. The body is cut at the parse limit
# (plus one byte, so the parser knows it was cut), never refused: RFC 9309 section 2.5.
ROBOTS_LIMITS = FetchLimits(
    timeout_s=10.0, connect_timeout_s=5.0, retries=1, max_body_bytes=PARSE_LIMIT + 1, max_redirects=5,
    truncate_body=True,
)  # fmt: skip


def robots_limits(worker: FetchLimits) -> FetchLimits:
    """ROBOTS_LIMITS, each no looser than the worker's fetch limits; through the worker's proxies."""
    return dataclasses.replace(
        ROBOTS_LIMITS,
        proxies=worker.proxies,
        timeout_s=min(ROBOTS_LIMITS.timeout_s, worker.timeout_s),
        connect_timeout_s=min(ROBOTS_LIMITS.connect_timeout_s, worker.connect_timeout_s),
        retries=min(ROBOTS_LIMITS.retries, worker.retries),
    )


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class RobotsCache:
    def __init__(self, session: aiohttp.ClientSession, client: Any, limits: FetchLimits = ROBOTS_LIMITS) -> None:
        self.session, self.client = session, client  # client: the worker's asyncio Redis client
        self.limits = limits
        self._rules: dict[str, tuple[float, RobotsRules]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def allows(self, url: str, agent: str = AGENT) -> bool:
        return await self.refusal(url, agent) is None

    async def crawl_delay(self, url: str, agent: str = AGENT) -> float:
        """The Crawl-delay the host's robots.txt asks of ``agent`` (0 if none)."""
        return (await self.rules_for(origin_of(url))).crawl_delay(agent)

    async def refusal(self, url: str, agent: str = AGENT) -> FetchError | None:
        """None if ``url`` may be fetched by ``agent`` (a product token); else why not: ``robots`` (the
        rules say no), or what happened to an unreachable robots.txt (``dns_error``, ``timeout``...)."""
        origin = origin_of(url)
        rules = await self.rules_for(origin)
        if rules.allows(url, agent):
            return None
        if rules.disallow_all and rules.reason:
            return FetchError(
                rules.reason,
                f"{origin}/robots.txt is unreachable ({rules.detail}); RFC 9309: an unreachable robots.txt "
                f"disallows the whole site, so {url} was not fetched",
            )
        return FetchError("robots", f"{url} is disallowed by robots.txt")

    async def rules_for(self, origin: str) -> RobotsRules:
        cached = self._rules.get(origin)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        async with self._locks.setdefault(origin, asyncio.Lock()):
            cached = self._rules.get(origin)
            if cached and cached[0] > time.monotonic():
                return cached[1]
            key = robots_key(origin)
            stored = await self.client.get(key)
            if stored:
                rules = RobotsRules.from_json(json.loads(stored))
            else:
                rules = await self._fetch(origin)
                await self.client.set(key, json.dumps(rules.to_json()), ex=TTL_S)
            self._rules[origin] = (time.monotonic() + TTL_S, rules)
            return rules

    async def _fetch(self, origin: str) -> RobotsRules:
        try:
            fetched = await fetch_url(self.session, origin + "/robots.txt", self.limits)
        except FetchError as exc:
            if exc.reason in ("ssrf_blocked", "invalid_url", "unsupported_scheme"):
                raise  # the page itself is refused for that reason, not for its robots.txt
            if exc.reason in ("too_many_redirects", "redirect_loop"):
                return RobotsRules(allow_all=True)  # RFC 9309 2.3.1.2: past 5 redirects it is "unavailable"
            if exc.reason.startswith("http_") and exc.reason[5:].isdigit():
                return RobotsRules.from_response(int(exc.reason[5:]), detail=exc.detail)
            return RobotsRules.unreachable(exc.reason, exc.detail)
        return RobotsRules.from_response(200, fetched.data)
