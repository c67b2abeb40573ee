"""robots.txt for every host a worker crawls: fetched once, shared through Redis.

Rules are kept per origin (``scheme://host[:port]``) in this process and in
Redis for ten minutes, so N workers crawling one site fetch its robots.txt
about once, not once each. An asyncio lock per origin stops a batch of pages
on a new host from fetching it twenty times at once.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from pipeline.core.errors import FetchError
from pipeline.core.fetch import fetch_url
from pipeline.core.limits import FetchLimits
from pipeline.core.robots import PARSE_LIMIT, RobotsRules

AGENT = "pipeline"
TTL_S = 600
ROBOTS_LIMITS = FetchLimits(
    timeout_s=10.0, connect_timeout_s=5.0, retries=1, max_body_bytes=4 * PARSE_LIMIT, max_redirects=5
)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class RobotsCache:
    def __init__(self, session: aiohttp.ClientSession, client: Any) -> None:
        self.session, self.client = session, client  # client: the worker's asyncio Redis client
        self._rules: dict[str, tuple[float, RobotsRules]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def allows(self, url: str) -> bool:
        return (await self.rules_for(origin_of(url))).allows(url, AGENT)

    async def rules_for(self, origin: str) -> RobotsRules:
        cached = self._rules.get(origin)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        async with self._locks.setdefault(origin, asyncio.Lock()):
            cached = self._rules.get(origin)
            if cached and cached[0] > time.monotonic():
                return cached[1]
            key = f"pl:robots:{origin}"
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
            fetched = await fetch_url(self.session, origin + "/robots.txt", ROBOTS_LIMITS)
        except FetchError as exc:
            if exc.reason in ("ssrf_blocked", "invalid_url", "unsupported_scheme"):
                raise  # the page itself is refused for that reason, not for its robots.txt
            status = int(exc.reason[5:]) if exc.reason.startswith("http_") else None
            return RobotsRules.from_response(status)
        return RobotsRules.from_response(200, fetched.data)
