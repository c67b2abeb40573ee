"""The crawl job's page stage inside a worker.

    fetch (event loop: robots, politeness slot, SSRF guard, manual redirects)
      -> parse HTML (process pool) -> one ledger call that records the pages
         and admits what they link to

Each page's result carries its discoveries to the ledger, which admits them
atomically with the result (``lua/record.lua``): a re-delivered batch changes
nothing, and the job can never look finished while a page is still to come.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from pipeline.core.aggregate import ItemResult
from pipeline.core.errors import FetchError
from pipeline.core.fetch import Fetched, fetch_url
from pipeline.core.html import PageInfo, parse_pages
from pipeline.core.ssrf import AddressPolicy, current_policy
from pipeline.core.urls import Scope, url_id
from pipeline.politeness import Gate
from workers.image_stages import live_spec
from workers.job_context import request_context
from workers.runtime import Runtime

log = logging.getLogger(__name__)
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


@dataclass(frozen=True)
class PageEntry:
    id: str
    url: str
    depth: int
    queue_s: float


async def _fetch_one(
    rt: Runtime, entry: PageEntry, spec: dict[str, Any], policy: AddressPolicy, gate: Gate | None
) -> tuple[PageEntry, Fetched | FetchError, float]:
    scope = Scope.from_json(spec["scope"])
    robots = rt.robots if spec.get("robots", True) else None

    async def hop_gate(url: str, hop: int) -> AbstractAsyncContextManager[None] | None:
        if hop > 0 and not scope.allows(url):
            raise FetchError("out_of_scope", f"{entry.url} redirects out of scope to {url}")
        if robots is not None and not await robots.allows(url):
            raise FetchError("robots", f"{url} is disallowed by robots.txt")
        return gate.slot(url) if gate is not None else None

    token = current_policy.set(policy)
    started = time.perf_counter()
    try:
        return entry, await fetch_url(rt.session, entry.url, rt.limits, gate=hop_gate), time.perf_counter() - started
    except FetchError as exc:
        return entry, exc, time.perf_counter() - started
    finally:
        current_policy.reset(token)


def _page_payload(entry: PageEntry, fetched: Fetched, info: PageInfo, timings: dict[str, float],
                  spec: dict[str, Any]) -> str:  # fmt: skip
    scope = Scope.from_json(spec["scope"])
    meta = {"depth": entry.depth, "title": info.title, "words": info.word_count, "links": len(info.links)}
    if fetched.final_url != entry.url:
        meta["final_url"] = fetched.final_url
    result = ItemResult(id=entry.id, ok=True, source=entry.url, bytes_in=len(fetched.data), kind="page",
                        timings=timings, meta=meta).to_json()  # fmt: skip
    result["_links"] = [[url_id(link, "p"), link] for link in info.links if scope.allows(link)]
    if spec.get("images"):
        result["_images"] = [[url_id(img, "i"), img] for img in info.images if scope.allows(img)]
    result["_words"] = [[word, count] for word, count in info.top_words]
    return json.dumps(result, separators=(",", ":"))


def _parse_all(rt: Runtime, pages: dict[str, Fetched]) -> dict[str, PageInfo | Exception]:
    """Parse a batch's HTML pages, spread over the pool in chunks (one round trip per chunk)."""
    ids = list(pages)
    workers = rt.processes.size
    chunks = [ids[i::workers] for i in range(workers) if ids[i::workers]]
    submit = rt.threads.submit if rt.settings.parse_pool == "threads" else (lambda *a: rt.processes.submit(*a)[1])
    futures: list[tuple[list[str], Future[list[PageInfo]]]] = [
        (chunk, submit(parse_pages, [(pages[i].data, pages[i].final_url, pages[i].charset) for i in chunk]))
        for chunk in chunks
    ]
    parsed: dict[str, PageInfo | Exception] = {}
    for chunk, future in futures:
        try:
            parsed.update(zip(chunk, future.result(timeout=rt.settings.task_deadline_s), strict=True))
        except Exception as exc:
            parsed.update(dict.fromkeys(chunk, exc))
    return parsed


def crawl_batch(rt: Runtime, job_id: str, entries: Sequence[PageEntry]) -> tuple[int, bool]:
    """Fetch, parse and record a batch of pages; returns (items counted, job ended)."""
    spec = live_spec(rt, job_id)
    if spec is None:
        return 0, False
    policy, gate = request_context(rt, job_id, spec)

    async def fetch_all() -> list[tuple[PageEntry, Fetched | FetchError, float]]:
        return await asyncio.gather(*(_fetch_one(rt, e, spec, policy, gate) for e in entries))

    outcomes = rt.loop.run(fetch_all(), timeout=rt.settings.task_deadline_s)
    rt.metrics.observe_io("fetch", sum(seconds for _, _, seconds in outcomes), len(outcomes))
    html = {e.id: f for e, f, _ in outcomes if isinstance(f, Fetched) and f.content_type in HTML_TYPES}
    parsed = _parse_all(rt, html) if html else {}
    payload: list[str] = []
    for entry, outcome, seconds in outcomes:
        timings = {"queue": entry.queue_s, "fetch": seconds}
        if isinstance(outcome, FetchError):
            if outcome.reason == "cancelled":
                continue  # the job ended under us: nothing to record
            failure = ItemResult.failure(entry.id, entry.url, outcome.reason, outcome.detail, kind="page",
                                         timings=timings, meta={"depth": entry.depth})  # fmt: skip
            payload.append(json.dumps(failure.to_json()))
        elif entry.id in parsed:
            info = parsed[entry.id]
            if isinstance(info, Exception):
                log.warning("parse failed", extra={"url": entry.url, "error": repr(info)})
                failure = ItemResult.failure(entry.id, entry.url, "parse_error", repr(info), kind="page",
                                             timings=timings, meta={"depth": entry.depth})  # fmt: skip
                payload.append(json.dumps(failure.to_json()))
                continue
            timings["parse"] = info.seconds
            if rt.settings.parse_pool == "processes":
                rt.metrics.observe(rt.processes.slot_of(info.pid), "parse", info.seconds)
            else:
                rt.metrics.observe_io("parse", info.seconds)
            payload.append(_page_payload(entry, outcome, info, timings, spec))
        else:
            meta = {"depth": entry.depth, "content_type": outcome.content_type}
            other = ItemResult(id=entry.id, ok=True, source=entry.url, bytes_in=len(outcome.data), kind="other",
                               timings=timings, meta=meta)  # fmt: skip
            payload.append(json.dumps(other.to_json()))
    counted, finished = rt.ledger.record_raw(job_id, payload)
    rt.ledger.advance(job_id, "fetched", len(entries))
    return counted, finished
