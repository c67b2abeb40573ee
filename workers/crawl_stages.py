"""The crawl job's page stage inside a worker.

    fetch (event loop: robots, politeness slot, SSRF guard, manual redirects)
      -> parse HTML (process pool) -> one ledger call that records the pages
         and admits what they link to

A batch is a session (``workers.crawl_session``: when pages are claimed,
fetched and recorded); this module is what a fetch and a recording are. Each
page's result carries its discoveries to the ledger, which admits them
atomically with the result (``lua/record.lua``): a re-delivered batch changes
nothing, and the job can never look finished while a page is still to come.

The session runs as a coroutine on the worker's event loop, so a page's
fetch starts and finishes with no thread hand-off; the claims and the
recording, which block on Redis and the pool, go to threads a group at a time.
Measured against the same session run from the task's thread (each fetch
handed to the loop and its end handed back): worker main CPU per page 561-682
vs 706-914 us, alternating runs, slow page 0 s.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import AbstractAsyncContextManager

from pipeline.core.aggregate import ItemResult
from pipeline.core.bodies import Hold, current_hold
from pipeline.core.errors import FetchError
from pipeline.core.fetch import Fetched, current_user_agent, fetch_url
from pipeline.core.robots import agent_token
from pipeline.core.ssrf import AddressPolicy, current_policy
from pipeline.kinds.crawl import CrawlJob
from pipeline.politeness import Gate
from workers.crawl_session import FetchOutcome, PageEntry, Refill, Session
from workers.job_context import live_job, request_context
from workers.page_parse import ParsedPage, parse_for_crawl
from workers.runtime import Runtime

log = logging.getLogger(__name__)
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


async def _fetch_one(
    rt: Runtime,
    job: CrawlJob,
    policy: AddressPolicy,
    gate: Gate | None,
    entry: PageEntry,
    hold: Hold | None = None,
) -> FetchOutcome:
    robots = rt.robots if job.robots else None
    scope = job.scope
    agent = agent_token(job.guard.user_agent or rt.settings.user_agent)

    async def hop_gate(url: str, hop: int) -> AbstractAsyncContextManager[None] | None:
        if hop > 0 and not scope.allows(url):
            raise FetchError("out_of_scope", f"{entry.url} redirects out of scope to {url}")
        floor = 0.0
        if robots is not None:
            if (refused := await robots.refusal(url, agent)) is not None:
                raise refused
            floor = await robots.crawl_delay(url, agent)  # Crawl-delay: a floor under --delay
        return gate.slot(url, floor) if gate is not None else None

    token = current_policy.set(policy)
    hold_token = current_hold.set(hold)  # a large body waits for the worker's body budget
    agent_token_ = current_user_agent.set(job.guard.user_agent)
    started = time.perf_counter()
    try:
        return entry, await fetch_url(rt.session, entry.url, rt.limits, gate=hop_gate), time.perf_counter() - started
    except FetchError as exc:
        return entry, exc, time.perf_counter() - started
    finally:
        current_user_agent.reset(agent_token_)
        current_hold.reset(hold_token)
        current_policy.reset(token)


def _page_payload(
    entry: PageEntry, fetched: Fetched, info: ParsedPage, timings: dict[str, float], parse_limit: int
) -> str:
    meta = {"depth": entry.depth, "title": info.title, "words": info.word_count, "links": info.links}
    if fetched.final_url != entry.url:
        meta["final_url"] = fetched.final_url
    if len(fetched.data) > parse_limit:
        meta["parsed_bytes"] = parse_limit  # a longer page is parsed up to here (PIPELINE_MAX_PARSE_BYTES)
    if info.failure is not None:  # the page failed (a scrape's extractor raised); its links still count
        reason, detail = info.failure
        failed = ItemResult.failure(entry.id, entry.url, reason, detail, kind="page", timings=timings,
                                    bytes_in=len(fetched.data), meta=meta).to_json_text()  # fmt: skip
        return failed[:-1] + info.discoveries + "}"
    result = ItemResult(id=entry.id, ok=True, source=entry.url, bytes_in=len(fetched.data), kind="page",
                        timings=timings, meta=meta | (info.meta or {})).to_json_text()  # fmt: skip
    return result[:-1] + info.discoveries + "}"


# What parses a job's pages in the pool: ``parser(job)`` is called as ``(bodies, scope, images)``
# (a crawl's ``parse_for_crawl``; a scrape's binds its extraction first). Picklable: a module
# function or a partial of one.
PageParser = Callable[[CrawlJob], Callable[..., list[ParsedPage]]]


def crawl_parser(job: CrawlJob) -> Callable[..., list[ParsedPage]]:
    return parse_for_crawl


def _parse_all(
    rt: Runtime, pages: dict[str, Fetched], job: CrawlJob, parser: PageParser = crawl_parser
) -> dict[str, ParsedPage | Exception]:
    """Parse HTML pages, spread over the pool in chunks (one round trip per chunk)."""
    ids = list(pages)
    workers = rt.processes.size
    chunks = [ids[i::workers] for i in range(workers) if ids[i::workers]]
    in_threads = rt.settings.parse_pool == "threads"
    images, scope, parse = job.plan is not None, job.scope.to_json(), parser(job)
    futures: list[tuple[list[str], int | None, Future[list[ParsedPage]]]] = []
    for chunk in chunks:
        # Past max_parse_bytes a page is cut (the slice is the body itself when shorter: no copy).
        limit = rt.settings.max_parse_bytes
        bodies = [(pages[i].data[:limit], pages[i].final_url, pages[i].charset) for i in chunk]
        if in_threads:
            futures.append((chunk, None, rt.threads.submit(parse, bodies, scope, images)))
        else:
            futures.append((chunk, *rt.processes.submit(parse, bodies, scope, images)))
    parsed: dict[str, ParsedPage | Exception] = {}
    deadline = time.monotonic() + rt.settings.task_deadline_s
    for chunk, generation, future in futures:
        try:
            parsed.update(zip(chunk, future.result(timeout=max(0.0, deadline - time.monotonic())), strict=True))
        except TimeoutError as exc:
            parsed.update(dict.fromkeys(chunk, exc))
            if not in_threads:  # a stuck parse must not hold a pool slot for ever
                rt.processes.abandon({future: generation})
        except Exception as exc:
            parsed.update(dict.fromkeys(chunk, exc))
    return parsed


def crawl_batch(
    rt: Runtime,
    job_id: str,
    entries: Sequence[PageEntry],
    refill: Refill | None = None,
    parser: PageParser = crawl_parser,
) -> tuple[int, bool]:
    """Fetch, parse and record pages as they finish; returns (items counted, job ended).

    ``refill(n)`` claims up to ``n`` more pages of the job; it is called as
    pages finish while the session is young, to keep the job's concurrency in
    flight. ``parser`` picks the pool function that parses the pages (a scrape's
    extracts its items too).
    """
    job: CrawlJob | None = live_job(rt, job_id)
    if job is None:
        return 0, False
    policy, gate = request_context(rt, job_id, job.guard)
    return rt.loop.run(_session(rt, job_id, job, policy, gate, entries, refill, parser))


async def _session(
    rt: Runtime,
    job_id: str,
    job: CrawlJob,
    policy: AddressPolicy,
    gate: Gate | None,
    entries: Sequence[PageEntry],
    refill: Refill | None,
    parser: PageParser = crawl_parser,
) -> tuple[int, bool]:
    """The session (``workers.crawl_session``) on the event loop, with this job's fetch and recording."""
    fetch = functools.partial(_fetch_one, rt, job, policy, gate)
    record = functools.partial(_record, rt, job_id, job, parser)
    session = Session(fetch, record, rt.bodies.hold, refill, job.guard.limits.concurrency, rt.settings.task_deadline_s)
    return await session.run(entries)


def _record(
    rt: Runtime, job_id: str, job: CrawlJob, parser: PageParser, outcomes: list[FetchOutcome]
) -> tuple[int, bool]:
    """Parse the HTML among ``outcomes`` and record them all in one ledger call."""
    rt.metrics.observe_io("fetch", sum(seconds for _, _, seconds in outcomes), len(outcomes))
    html = {e.id: f for e, f, _ in outcomes if isinstance(f, Fetched) and f.content_type in HTML_TYPES}
    parsed = _parse_all(rt, html, job, parser) if html else {}
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
                rt.metrics.observe_io("parse", info.seconds, counted=False)  # its fetch counted the page
            payload.append(_page_payload(entry, outcome, info, timings, rt.settings.max_parse_bytes))
        else:
            meta = {"depth": entry.depth, "content_type": outcome.content_type}
            other = ItemResult(id=entry.id, ok=True, source=entry.url, bytes_in=len(outcome.data), kind="other",
                               timings=timings, meta=meta)  # fmt: skip
            payload.append(json.dumps(other.to_json()))
    return rt.ledger.record_raw(job_id, payload, progress={"fetched": len(outcomes)})
