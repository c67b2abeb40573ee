"""Scrape jobs: a crawl that extracts the user's own fields from every page into a feed, and aggregates them.

A scrape *is* a crawl (the same spec options, scope, frontier, politeness and
page stage, ``workers.crawl_stages``): its pages are fetched and parsed as a
crawl's, and on the same parsed tree the pool child evaluates the fields
(``pipeline.core.extract``; ``workers.scrape_parse``) and, with
``--extractor``, the user's function. The items travel with the page's result,
so they are exactly once by construction (identity: page URL and index); once
the job ended the reduce merges them into the feed and the field statistics
(``pipeline.kinds.scrape_feed``), which ``result``/``report.json`` show.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from pipeline.config import Settings
from pipeline.core.aggregate import Totals
from pipeline.core.document import JobMeta
from pipeline.core.errors import StoreError, UsageError
from pipeline.core.extract import Extraction, FieldSpec, Select, parse_field
from pipeline.core.spec_file import parse_spec_file
from pipeline.kinds.base import FETCH, JobKind, JobSpec, NewItem, Stage
from pipeline.kinds.crawl import CRAWL, CrawlJob, CrawlSpec
from pipeline.kinds.images import FETCH_STAGE
from pipeline.kinds.scrape_feed import FORMATS, Merge, feed_text, item_lines, page_order
from pipeline.ledger import Ledger
from pipeline.output_dirs import check_output_dir, refusal
from pipeline.outputs import OutputDir

log = logging.getLogger(__name__)
SCRAPE_PAGES_STAGE = Stage("pipeline.scrape.pages", FETCH)
SUMMARY_FIELD = "scrape"  # the job record's field holding the merge's summary (expires with the job)


class ScrapeSpec(CrawlSpec):
    """`pipeline submit scrape SEEDS...`: a crawl's options, and what to extract."""

    kind: Literal["scrape"] = "scrape"  # type: ignore[assignment]
    fields: tuple[str, ...] = Field((), description="NAME=SELECTOR (NAME[]= for every match), with |processors")
    item: str | None = Field(None, description="Each match is one item, its fields evaluated inside it")
    follow: str | None = Field(None, description="Which links to follow [default: every in-scope link]")
    unique: tuple[str, ...] = Field((), description="Fields whose values identify an item across pages")
    spec_toml: str | None = Field(None, description="The --spec file's text (fields with processors...)")
    spec_name: str | None = Field(None, description="The --spec file's name, for errors")
    feed: Path | None = Field(None, description="The feed file: .jsonl, .json or .csv [default: OUTPUT/items.jsonl]")
    extractor: str | None = Field(None, description="package.module:function (url, html) -> list[dict], per page")

    def plugins(self) -> list[tuple[str, str]]:
        """The crawl's (``--images`` with ``plugin:`` ops) and the extractor, given here or in the spec file."""
        extractor = self.extractor
        if extractor is None and self.spec_toml is not None:
            extractor = parse_spec_file(self.spec_toml, f"--spec {self.spec_name or 'FILE'}").get("extractor")
        return [*super().plugins(), *([("extractor", extractor)] if extractor else [])]

    def describe(self) -> str:
        """As the crawl's, with the spec file by name (its text is kept in the spec, for schedules)."""
        shown = self.model_copy(update={"spec_toml": None, "spec_name": None})
        words = JobSpec.describe(shown)
        words = words.replace("--fields=", "--field=")
        return words + (f" --spec {self.spec_name}" if self.spec_name else "")

    def with_paths_from(self, cwd: Path) -> ScrapeSpec:
        spec = super().with_paths_from(cwd)
        if spec.feed is None or spec.feed.is_absolute():
            return spec
        return spec.model_copy(update={"feed": cwd / spec.feed})

    def extraction(self) -> Extraction:
        """The fields, item, follow, unique key and extractor, every part checked (``UsageError`` names it)."""
        base: dict[str, Any] = {"fields": [], "unique": []}
        if self.spec_toml is not None:
            base = parse_spec_file(self.spec_toml, f"--spec {self.spec_name or 'FILE'}")
        fields: dict[str, FieldSpec] = {f.name: f for f in base["fields"]}
        for text in self.fields:
            spec = parse_field(text)
            fields[spec.name] = spec  # the command line wins over the file
        item: Select | None = Select.parse(self.item, "--item") if self.item else base.get("item")
        follow: Select | None = Select.parse(self.follow, "--follow") if self.follow else base.get("follow")
        extractor = self.extractor or base.get("extractor")
        if not fields and not extractor:
            raise UsageError("nothing to extract: give --field NAME=SELECTOR, --spec FILE.toml or --extractor")
        unique = tuple(self.unique or base.get("unique") or ())
        return Extraction(tuple(fields.values()), item, follow, unique, extractor)


@dataclass(frozen=True)
class ScrapeJob(CrawlJob):
    """A scrape as its workers read it: the crawl, its extraction (JSON text: pool children get it as is), its feed."""

    extraction: str = "{}"
    feed: str = ""
    feed_format: str = "jsonl"


def feed_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(f"--feed {str(path)!r}: the extension chooses the format: .jsonl, .json or .csv")
    return fmt


class ScrapeKind(JobKind[ScrapeSpec, ScrapeJob]):
    name = "scrape"
    spec_type = ScrapeSpec
    stages: ClassVar[Mapping[str, Stage]] = {"p": SCRAPE_PAGES_STAGE, "i": FETCH_STAGE}
    task_module = "tasks.scrape"
    streams_items = True

    def resolve(self, spec: ScrapeSpec, settings: Settings, output_dir: Path) -> ScrapeJob:
        crawl = CRAWL.resolve(spec, settings, output_dir)
        extraction = spec.extraction()
        feed = (spec.feed or output_dir / "items.jsonl").expanduser()
        fmt = feed_format(feed)
        feed = feed.resolve()
        check_output_dir(feed.parent, settings.output_root)
        fields = {f.name: getattr(crawl, f.name) for f in dataclasses.fields(crawl)}
        return ScrapeJob(**fields, extraction=json.dumps(extraction.to_json()), feed=str(feed), feed_format=fmt)

    def job_json(self, job: ScrapeJob) -> dict[str, Any]:
        return {**CRAWL.job_json(job), "extraction": json.loads(job.extraction), "feed": job.feed,
                "feed_format": job.feed_format}  # fmt: skip

    def load(self, raw: Mapping[str, Any]) -> ScrapeJob:
        crawl = CRAWL.load(raw)
        fields = {f.name: getattr(crawl, f.name) for f in dataclasses.fields(crawl)}
        return ScrapeJob(**fields, extraction=json.dumps(raw["extraction"]), feed=str(raw["feed"]),
                         feed_format=str(raw.get("feed_format", "jsonl")))  # fmt: skip

    def ledger_fields(self, spec: ScrapeSpec, settings: Settings) -> dict[str, str | int]:
        return CRAWL.ledger_fields(spec, settings)

    def chunks(self, spec: ScrapeSpec) -> Iterator[Sequence[NewItem]]:
        return CRAWL.chunks(spec)

    def admit(self, ledger: Ledger, job_id: str, chunk: Sequence[NewItem]) -> int:
        return CRAWL.admit(ledger, job_id, chunk)

    # -- the reduce: the feed and the statistics ------------------------------------------------
    def finish(self, ledger: Ledger, job_id: str, output_root: Path | None) -> None:
        """Merge the pages' items into the feed (atomically) and keep the summary in the job's record."""
        spec = ledger.meta(job_id).spec
        extraction = spec.get("extraction") or {}
        merge = Merge([f["name"] for f in extraction.get("fields", [])], tuple(extraction.get("unique", [])))
        pages = page_order(ledger, job_id, merge)
        feed = Path(spec["feed"])
        text = feed_text(str(spec.get("feed_format", "jsonl")), item_lines(ledger, job_id, pages, merge), merge.names)
        written: str | None = None
        refused = refusal(feed.parent, output_root)
        if refused is not None:
            log.warning("not writing the feed of job %s: %s", job_id, refused)
        else:
            try:
                with OutputDir(feed.parent).open() as folder:
                    folder.write(feed.name, text)
                written = str(feed)
            except StoreError as exc:
                log.warning("cannot write the feed %s: %s", feed, exc.detail)
        for _ in text:  # not written: the statistics still need every item
            pass
        summary = {**merge.summary(), "feed": written, "format": spec.get("feed_format", "jsonl")}
        ledger.set_job_field(job_id, SUMMARY_FIELD, json.dumps(summary))

    # -- report -------------------------------------------------------------------------------------
    def document(self, doc: dict[str, Any], meta: JobMeta, totals: Totals, ledger: Ledger) -> None:
        CRAWL.document(doc, meta, totals, ledger)
        stored = ledger.job_field(meta.job_id, SUMMARY_FIELD)
        scrape: dict[str, Any] = json.loads(stored) if stored else {"items": None, "feed": None}
        scrape.setdefault("fields", {})
        scrape["feed_path"] = meta.spec.get("feed")
        doc["scrape"] = scrape

    def report_rows(self, doc: Mapping[str, Any]) -> list[tuple[str, str]]:
        rows = CRAWL.report_rows(doc)
        scrape = doc.get("scrape") or {}
        if scrape.get("items") is None:
            rows.append(("scraped", f"items merged into {scrape.get('feed_path')} when the job ends"))
            return rows
        where = scrape.get("feed") or f"[red]not written[/] ({scrape.get('feed_path')}: see the worker's log)"
        rows.append(
            ("scraped", f"[green]{scrape['items']}[/] {'item' if scrape['items'] == 1 else 'items'} in {where}")
        )
        if scrape.get("duplicates"):
            rows.append(("duplicates", f"{scrape['duplicates']} (same unique key as an earlier item)"))
        if scrape.get("incomplete"):
            listed = ", ".join(f"{name} ({n})" for name, n in scrape["incomplete"].items())
            rows.append(("incomplete", f"[yellow]{listed}[/] - required field missing, item left out"))
        for name, stats in scrape.get("fields", {}).items():
            rows.append((f"  {name}", field_line(stats)))
        return rows

    def exports(self, ledger: Ledger, job_id: str) -> dict[str, Iterable[str]]:
        return {"pages.jsonl": _pages(ledger, job_id)}


def field_line(stats: Mapping[str, Any]) -> str:
    """One field's statistics as the printed report shows them."""
    distinct = f"{'' if stats.get('distinct_exact', True) else '≥'}{stats['distinct']} distinct"
    parts = [f"{100 * stats['fill_rate']:.0f}% filled", distinct]
    if numeric := stats.get("numeric"):
        parts.append(f"min {numeric['min']}, max {numeric['max']}, mean {numeric['mean']:g}, sum {numeric['sum']}")
    top = stats.get("top") or []
    if top and top[0][1] > 1:  # a top of values seen once each says nothing
        parts.append("top: " + ", ".join(f"{_short(str(v))} ({n})" for v, n in top[:5]))
    elif top and stats.get("distinct_exact", True) and stats["distinct"] == stats.get("filled"):
        parts.append("every value once")
    return "; ".join(parts)


def _short(value: str, width: int = 32) -> str:
    """A value cut in the middle: URLs and names differ at their ends more often than at their starts."""
    value = " ".join(value.split())
    if len(value) <= width:
        return value
    half = (width - 1) // 2
    return value[:half] + "…" + value[-(width - 1 - half) :]


def _pages(ledger: Ledger, job_id: str) -> Iterator[str]:
    """``pages.jsonl`` as a crawl writes it, each page with its item count instead of its items."""
    for raw in ledger.raw_results(job_id):
        result = json.loads(raw)
        if result.get("kind") not in ("page", "other"):
            continue
        meta = dict(result.get("meta") or {})
        meta.pop("keys", None)
        line = {"url": result.get("source"), "ok": result.get("ok"), "kind": result.get("kind"), **meta}
        if not result.get("ok"):
            line["reason"] = result.get("reason")
            line["detail"] = result.get("detail")
        yield json.dumps(line, ensure_ascii=False) + "\n"


SCRAPE = ScrapeKind()
