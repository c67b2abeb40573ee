"""Crawl jobs: every reachable page in scope fetched once, parsed and summarised.

Items: ``p`` a page (fetched and parsed by the crawl stage, which admits what
it links to) and, with ``--images``, ``i`` an image found on a page (through
the image stages). The crawl's total grows as pages are discovered.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field

from pipeline.config import Settings
from pipeline.core.aggregate import Totals
from pipeline.core.document import JobMeta
from pipeline.core.errors import UsageError
from pipeline.core.hosts import valid_host, web_url_problem
from pipeline.core.imaging import TransformPlan
from pipeline.core.urls import Scope, normalize, url_id
from pipeline.kinds.base import FETCH, JobKind, NewItem, Stage
from pipeline.kinds.images import FETCH_STAGE, FetchGuard, ImageOptions, ImageWork, plan_json
from pipeline.ledger import Ledger
from pipeline.politeness import Limits

PAGES_STAGE = Stage("pipeline.crawl.pages", FETCH)


class CrawlSpec(ImageOptions):
    """`pipeline submit crawl SEEDS...`."""

    kind: Literal["crawl"] = "crawl"
    seeds: tuple[str, ...] = Field(..., min_length=1, description="Where the crawl starts")
    max_pages: int = Field(10_000, ge=1, description="Cap on page URLs admitted")
    max_depth: int | None = Field(None, ge=0, description="Link depth from the seeds (0 = seeds only)")
    allow_domains: tuple[str, ...] = Field((), description="Also follow links to these domains and their subdomains")
    images: bool = Field(False, description="Process every image on the crawled pages with the op chain")
    concurrency: int = Field(64, ge=1, le=1024, description="Requests in flight for the whole job")
    per_host: int = Field(8, ge=1, le=256, description="Requests in flight per host")
    delay_s: float = Field(0.0, ge=0, le=3600, description="Seconds between request starts on one host")
    robots: bool = Field(True, description="Fetch and obey robots.txt")
    allow_private: bool = Field(False, description="Let links and redirects reach private addresses")
    user_agent: str | None = Field(None, min_length=1, description="User-Agent of the job's requests")
    autothrottle: bool = Field(False, description="Delay between requests to a host follows its latency")

    def plugins(self) -> list[tuple[str, str]]:
        """Plugin ops run only on the images of an ``--images`` crawl."""
        return super().plugins() if self.images else []


@dataclass(frozen=True)
class CrawlJob:
    """A crawl as its workers read it."""

    seeds: tuple[str, ...]
    scope: Scope
    guard: FetchGuard
    robots: bool
    output_dir: str
    max_pages: int
    max_depth: int | None
    plan: TransformPlan | None  # with --images

    @property
    def images(self) -> ImageWork | None:
        """What the image stages need, when the crawl makes images."""
        if self.plan is None:
            return None
        return ImageWork(self.plan, self.output_dir, "image", self.guard)


def page_export(raw: Mapping[str, Any]) -> str:
    """One line of ``pages.jsonl``: what a user wants to know about a crawled URL (``raw``: its stored result)."""
    meta = raw.get("meta", {})
    line = {"url": raw.get("source"), "ok": raw.get("ok"), "kind": raw.get("kind"), **meta}
    if not raw.get("ok"):
        line["reason"] = raw.get("reason")
    return json.dumps(line)


def _counts(totals: Totals, kind: str) -> dict[str, int]:
    return dict(totals.by_kind.get(kind, {"ok": 0, "failed": 0}))


def off_site_images_hint(doc: Mapping[str, Any]) -> str | None:
    """Why a crawl with ``--images`` found none, in the one case users hit most.

    Images are scoped like pages, and many sites serve theirs from a CDN host
    (``cdn.example.com``, another domain): the crawl then fetches pages but no
    image, which looks like a bug unless it says so, and which host to allow.
    """
    images = doc.get("images", {})
    if not doc.get("ops") or doc.get("state") not in ("succeeded", "failed"):
        return None
    if images.get("ok", 0) + images.get("failed", 0) or not doc.get("pages", {}).get("ok"):
        return None
    hosts = [host for host, _ in doc.get("off_site_images", [])]
    if hosts:
        return (f"no image in scope: the pages' images are on other hosts ({', '.join(hosts[:3])}), which are "
                f"not fetched; add --allow-domain {hosts[0]} to include them")  # fmt: skip
    return ("no image in scope: images on other hosts (a CDN) are not fetched; "
            "add --allow-domain HOST (e.g. the CDN's domain) to include them")  # fmt: skip


def off_site_images_line(doc: Mapping[str, Any]) -> str | None:
    """The report's line on images left out by the scope: host (references), most first."""
    hosts = doc.get("off_site_images") or []
    if not hosts or not doc.get("ops"):
        return None
    listed = ", ".join(f"{host} ({count})" for host, count in hosts[:5])
    more = ", ..." if len(hosts) > 5 else ""
    return f"{listed}{more} - not fetched (--allow-domain HOST includes a host)"


class CrawlKind(JobKind[CrawlSpec, CrawlJob]):
    name = "crawl"
    spec_type = CrawlSpec
    stages: ClassVar[Mapping[str, Stage]] = {"p": PAGES_STAGE, "i": FETCH_STAGE}
    task_module = "tasks.crawl"
    streams_items = True

    def resolve(self, spec: CrawlSpec, settings: Settings, output_dir: Path) -> CrawlJob:
        seeds = []
        for seed in spec.seeds:
            if problem := web_url_problem(seed):
                raise UsageError(f"seed {seed!r}: {problem}")
            normal = normalize(seed)
            if normal is None:
                raise UsageError(f"not an http(s) URL: {seed!r} (seeds look like https://example.org/)")
            seeds.append(normal)
        for domain in spec.allow_domains:
            if not valid_host(domain):
                raise UsageError(f"--allow-domain {domain!r} is not a domain: give a host name such as "
                                 "cdn.example.org, or an address (no scheme, no path)")  # fmt: skip
        if spec.per_host > spec.concurrency:
            raise UsageError(f"--per-host ({spec.per_host}) cannot exceed --concurrency ({spec.concurrency})")
        unique = tuple(dict.fromkeys(seeds))
        limits = Limits(spec.concurrency, spec.per_host, spec.delay_s, autothrottle=spec.autothrottle)
        guard = FetchGuard(frozenset(urlsplit(seed).hostname or "" for seed in unique), spec.allow_private, limits,
                           spec.user_agent)  # fmt: skip
        plan = spec.plan(settings.max_pixels) if spec.images else None
        return CrawlJob(unique, Scope.of(unique, spec.allow_domains), guard, spec.robots, str(output_dir),
                        spec.max_pages, spec.max_depth, plan)  # fmt: skip

    def job_json(self, job: CrawlJob) -> dict[str, Any]:
        limits = job.guard.limits
        raw: dict[str, Any] = {
            "seeds": list(job.seeds), "scope": job.scope.to_json(), "images": job.plan is not None,
            "trusted_hosts": sorted(job.guard.trusted_hosts), "allow_private": job.guard.allow_private,
            "robots": job.robots, "concurrency": limits.concurrency, "per_host": limits.per_host,
            "delay_s": limits.delay_s, "autothrottle": limits.autothrottle, "user_agent": job.guard.user_agent,
            "max_pages": job.max_pages, "max_depth": job.max_depth, "output_dir": job.output_dir,
        }  # fmt: skip
        if job.plan is not None:
            raw.update(plan_json(job.plan))
        return raw

    def load(self, raw: Mapping[str, Any]) -> CrawlJob:
        limits = Limits(int(raw["concurrency"]), int(raw["per_host"]), float(raw["delay_s"]),
                        autothrottle=bool(raw.get("autothrottle")))  # fmt: skip
        guard = FetchGuard(frozenset(raw.get("trusted_hosts", [])), bool(raw.get("allow_private")), limits,
                           raw.get("user_agent"))  # fmt: skip
        plan = TransformPlan.from_json(raw["plan"]) if raw.get("plan") else None
        max_depth = raw.get("max_depth")
        return CrawlJob(tuple(raw["seeds"]), Scope.from_json(raw["scope"]), guard, bool(raw.get("robots", True)),
                        str(raw["output_dir"]), int(raw["max_pages"]), None if max_depth is None else int(max_depth),
                        plan)  # fmt: skip

    def ledger_fields(self, spec: CrawlSpec, settings: Settings) -> dict[str, str | int]:
        batch = spec.batch_size or settings.batch_size
        return {
            "max_pages": spec.max_pages, "max_depth": -1 if spec.max_depth is None else spec.max_depth,
            "window": max(2 * spec.concurrency, 2 * batch), **({"batch": batch} if spec.batch_size else {}),
        }  # fmt: skip

    def chunks(self, spec: CrawlSpec) -> Iterator[Sequence[NewItem]]:
        seeds = [normalize(seed) or seed for seed in spec.seeds]
        yield [NewItem(url_id(seed, "p"), seed, "p") for seed in dict.fromkeys(seeds)]

    def admit(self, ledger: Ledger, job_id: str, chunk: Sequence[NewItem]) -> int:
        return ledger.seed(job_id, [(item.id, item.source) for item in chunk])

    def document(self, doc: dict[str, Any], meta: JobMeta, totals: Totals, ledger: Ledger) -> None:
        other = _counts(totals, "other")
        doc["pages"] = {**_counts(totals, "page"), "non_html": other["ok"], "links_capped": totals.capped,
                        "links_beyond_depth": totals.beyond_depth}  # fmt: skip
        doc["images"] = _counts(totals, "image")
        doc["top_words"] = [[word, count] for word, count in ledger.top_words(meta.job_id)]
        doc["off_site_images"] = [[host, count] for host, count in ledger.off_site_images(meta.job_id)]
        doc["seeds"] = meta.spec.get("seeds", [])

    def report_rows(self, doc: Mapping[str, Any]) -> list[tuple[str, str]]:
        pages = doc["pages"]
        rows = [
            (
                "pages",
                f"[green]{pages['ok']} ok[/], [red]{pages['failed']} failed[/], "
                f"{pages['non_html']} other documents, {pages['links_capped']} links over --max-pages",
            )
        ]
        if doc.get("ops"):
            rows.append(("images", f"[green]{doc['images']['ok']} ok[/], [red]{doc['images']['failed']} failed[/]"))
        if hint := off_site_images_hint(doc):
            rows.append(("", f"[yellow]{hint}[/]"))
        if doc.get("top_words"):
            rows.append(("top words", ", ".join(f"{w} ({n})" for w, n in doc["top_words"][:10])))
        if line := off_site_images_line(doc):
            rows.append(("off-site images", line))
        return rows

    def exports(self, ledger: Ledger, job_id: str) -> dict[str, Iterable[str]]:
        return {"pages.jsonl": _pages(ledger, job_id)}


def _pages(ledger: Ledger, job_id: str) -> Iterator[str]:
    """``pages.jsonl``: one line per crawled URL (pages and other documents), streamed.

    Each stored result is decoded once (it used to be decoded, rebuilt, encoded and decoded
    again: ~9 % of the worker's CPU for a crawl of 1,140 small pages went to writing this file).
    """
    for text in ledger.raw_results(job_id):
        raw = json.loads(text)
        if raw.get("kind") in ("page", "other"):
            yield page_export(raw) + "\n"


CRAWL = CrawlKind()
