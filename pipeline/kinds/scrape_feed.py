"""A scrape's feed: every page's items merged in a fixed order, written atomically, with field statistics.

The reduce step runs this once the job has ended (``ScrapeKind.finish``). Each
page's items were recorded with the page (first write wins, so a re-delivered
page added nothing); here they are read back in two streamed passes over the
ledger:

1. the page order: (depth, URL) of every page that has items, plus the
   ``incomplete`` counts (a few numbers per page, never the items);
2. the items, pages fetched a chunk at a time in that order, each page's items
   in their index order: an exact unique key drops later duplicates (counted),
   statistics are folded in (``pipeline.core.fieldstats``), and each item is
   written as one line of the feed as it comes.

So the feed is the same whatever the number of workers or the order pages
finished in, and memory holds the page order and one chunk of pages, not the
items (with ``unique``: 8 bytes per distinct key too). The file is written
under a temporary name and renamed (``pipeline.outputs``): a crash never
leaves a half feed under the feed's name.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.core.extract import unique_key
from pipeline.core.fieldstats import ItemStats
from pipeline.ledger import Ledger

FORMATS = {".jsonl": "jsonl", ".jl": "jsonl", ".json": "json", ".csv": "csv"}
PAGES_PER_READ = 20  # pages' items per round trip: a page may hold thousands


@dataclass(frozen=True)
class PageRef:
    depth: int
    url: str
    id: str


@dataclass
class Merge:
    """What a merge found: counts filled in as its lines are consumed."""

    names: list[str]
    unique: Sequence[str]
    items: int = 0
    duplicates: int = 0
    incomplete: dict[str, int] = field(default_factory=dict)
    pages_with_items: int = 0
    stats: ItemStats = field(default_factory=ItemStats)

    def summary(self) -> dict[str, Any]:
        return {"items": self.items, "duplicates": self.duplicates, "incomplete": dict(sorted(self.incomplete.items())),
                "pages_with_items": self.pages_with_items, "fields": self.stats.to_json()}  # fmt: skip


def page_order(ledger: Ledger, job_id: str, merge: Merge) -> list[PageRef]:
    """Pass 1: the pages with items, in feed order; the columns (declared fields, then any seen) and incomplete."""
    pages: list[tuple[PageRef, list[str]]] = []
    for raw in ledger.raw_results(job_id):
        result = json.loads(raw)
        meta = result.get("meta") or {}
        if result.get("kind") != "page" or not result.get("ok"):
            continue
        for name, count in (meta.get("incomplete") or {}).items():
            merge.incomplete[name] = merge.incomplete.get(name, 0) + int(count)
        if meta.get("n_items"):
            pages.append((PageRef(int(meta.get("depth", 0)), str(result.get("source", "")), str(result["id"])),
                          list(meta.get("keys") or [])))  # fmt: skip
    pages.sort(key=lambda page: (page[0].depth, page[0].url))
    seen = dict.fromkeys(merge.names)
    for _, keys in pages:
        seen.update(dict.fromkeys(key for key in keys if key != "url"))
    merge.names = list(seen)
    merge.stats = ItemStats(merge.names)
    merge.pages_with_items = len(pages)
    return [page for page, _ in pages]


def item_lines(
    ledger: Ledger, job_id: str, pages: Sequence[PageRef], merge: Merge
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Pass 2: (stored JSON line, item) in feed order, duplicates under the unique key dropped and counted."""
    keys_seen: set[bytes] = set()
    for start in range(0, len(pages), PAGES_PER_READ):
        chunk = pages[start : start + PAGES_PER_READ]
        for text in ledger.feed_items(job_id, [page.id for page in chunk]):
            for line in text.split("\n") if text else ():
                item = json.loads(line)
                if merge.unique:
                    digest = hashlib.blake2b(unique_key(item, merge.unique).encode(), digest_size=8).digest()
                    if digest in keys_seen:
                        merge.duplicates += 1
                        continue
                    keys_seen.add(digest)
                merge.items += 1
                merge.stats.add(item)
                yield line, item


def _csv_value(value: Any) -> str:
    """A cell: lists joined with "," (Scrapy's CsvItemExporter), other non-strings as JSON, None empty."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in value)
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def feed_text(fmt: str, lines: Iterator[tuple[str, dict[str, Any]]], columns: Sequence[str]) -> Iterator[str]:
    """The feed in ``fmt`` (jsonl, json or csv), a chunk of text per item."""
    if fmt == "jsonl":
        for line, _ in lines:
            yield line + "\n"
    elif fmt == "json":
        first = True
        for line, _ in lines:
            yield ("[\n" if first else ",\n") + line
            first = False
        yield "[]\n" if first else "\n]\n"
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        header = ["url", *columns]
        writer.writerow(header)
        for _, item in lines:
            writer.writerow([_csv_value(item.get(name)) for name in header])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()
