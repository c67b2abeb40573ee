"""How results look to a person: the report, job and worker tables, progress bars.

Human output goes to stderr through ``err``; stdout carries only what scripts
read (a job id, or one JSON document with ``--json``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.core.document import JobMeta

out = Console(highlight=False, soft_wrap=True)
# Not a terminal (a pipe, CI, a log file): don't squeeze tables into 80 columns.
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)
STATE_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "cancelled": "yellow",
    "running": "cyan",
    "queued": "dim",
}


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 output``, ``2 outputs``: a count with its noun in the right number."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


def state_text(state: str) -> str:
    return f"[{STATE_STYLE.get(state, 'white')}]{state}[/]"


def report(doc: Mapping[str, Any]) -> None:
    """The end-of-job report a person reads."""
    images = doc.get("items", doc["images"])
    table = Table(title=f"job {doc['job_id']} ({doc['kind']})", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("state", state_text(doc["state"]) + (f"  ({doc['reason']})" if doc.get("reason") else ""))
    if doc["kind"] == "crawl":
        pages = doc["pages"]
        table.add_row(
            "pages",
            f"[green]{pages['ok']} ok[/], [red]{pages['failed']} failed[/], {pages['non_html']} other documents, "
            f"{counted(pages['links_capped'], 'link')} over --max-pages",
        )
        table.add_row("images", f"[green]{doc['images']['ok']} ok[/], [red]{doc['images']['failed']} failed[/]")
        if hint := off_site_images_hint(doc):
            table.add_row("", f"[yellow]{hint}[/]")
    table.add_row("items" if doc["kind"] == "crawl" else "images",
                  f"[green]{images['ok']} ok[/], [red]{images['failed']} failed[/]"
                  + (f", {images['pending']} pending" if images.get("pending") else ""))  # fmt: skip
    for reason, count in doc["failures"].items():
        table.add_row("", f"  {reason}: {count}")
    if doc.get("cache_hits"):
        table.add_row(
            "cache", f"{counted(doc['cache_hits'], 'output')} reused from the result cache (not transformed again)"
        )
    table.add_row("bytes", f"{human_bytes(doc['bytes_in'])} in, {human_bytes(doc['bytes_out'])} out")
    table.add_row("elapsed", f"{doc['elapsed_s']:.2f} s ({doc['items_per_s']:.1f} items/s)")
    timings = doc["timings"]
    stages = ("queue", "fetch", "parse", "transform", "store")
    table.add_row("mean per item", "  ".join(f"{s} {timings.get(f'{s}_mean_ms', 0):.1f} ms" for s in stages))
    if doc.get("ops"):
        table.add_row("ops", f"{doc['ops']} -> {doc.get('format')}")
    if doc.get("top_words"):
        table.add_row("top words", ", ".join(f"{w} ({n})" for w, n in doc["top_words"][:10]))
    if line := off_site_images_line(doc):
        table.add_row("off-site images", line)
    table.add_row("outputs", str(doc["output_dir"]))
    err.print(table)


def off_site_images_hint(doc: Mapping[str, Any]) -> str | None:
    """Why a crawl with ``--images`` found none, in the one case users hit most.

    Images are scoped like pages, and many sites serve theirs from a CDN host
    (``cdn.example.com``, another domain): the crawl then fetches pages but no
    image, which looks like a bug unless it says so, and which host to allow.
    """
    images = doc.get("images", {})
    if doc.get("kind") != "crawl" or not doc.get("ops") or doc.get("state") not in ("succeeded", "failed"):
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


def status_line(doc: Mapping[str, Any]) -> str:
    """`pipeline status`: one line on where a job stands."""
    images = doc.get("items", doc["images"])
    done = images["ok"] + images["failed"]
    cached = f", {doc['cache_hits']} cached" if doc.get("cache_hits") else ""
    return (f"{doc['job_id']}  {doc['kind']}  {state_text(doc['state'])}  {done}/{images['total']} done"
            f"  ({images['failed']} failed{cached})  {doc['elapsed_s']:.1f} s")  # fmt: skip


def failures(results: Iterable[Mapping[str, Any]]) -> None:
    table = Table("reason", "source", "detail", title="failed items", title_justify="left")
    for result in results:
        table.add_row(str(result.get("reason")), str(result.get("source")), str(result.get("detail", ""))[:120])
    err.print(table)


def jobs_table(metas: Iterable[JobMeta], counts: Callable[[str], tuple[int, int]]) -> None:
    table = Table("job", "kind", "state", "ok", "failed", "total", "created", "elapsed", "schedule")
    now = time.time()
    for meta in metas:
        ok, failed = counts(meta.job_id)
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(meta.created_at))
        total = meta.total if meta.total is not None else meta.submitted
        table.add_row(meta.job_id, meta.kind, state_text(meta.state), str(ok), str(failed), str(total),
                      created, f"{meta.elapsed(now):.1f} s", meta.schedule or "")  # fmt: skip
    err.print(table)


def workers_table(workers: Iterable[Mapping[str, Any]]) -> None:
    # `concurrency` is Celery's task threads; `threads` (as in `workers --json`) the blocking-I/O pool.
    table = Table("worker", "host", "pid", "procs", "task threads", "io threads", "queues", "items per slot")
    for worker in workers:
        per_slot = "  ".join(f"#{s['slot']}:{s['items']}" for s in worker.get("slots", []))
        table.add_row(str(worker["name"]), str(worker.get("host")), str(worker.get("pid")),
                      str(worker.get("processes")), str(worker.get("concurrency")), str(worker.get("threads")),
                      ",".join(q.removeprefix("pipeline.") for q in worker.get("queues", [])), per_slot)  # fmt: skip
    err.print(table)


class JobProgress:
    """Live bars per stage while ``--wait`` polls the ledger."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"), TimeElapsedColumn(), console=err, transient=False,
        )  # fmt: skip
        self.bars: dict[str, Any] = {}

    def __enter__(self) -> JobProgress:
        if self.enabled:
            self.progress.start()
            for stage in ("fetch", "transform", "done"):
                self.bars[stage] = self.progress.add_task(stage, total=None, note="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.stop()

    def update(self, doc: Mapping[str, Any], progress: Mapping[str, int]) -> None:
        if not self.enabled:
            return
        counts = doc.get("items", doc["images"])
        total = counts["total"] or None
        done = counts["ok"] + counts["failed"]
        fetched, transformed = progress.get("fetched", 0), progress.get("transformed", 0)
        final = doc["state"] in ("succeeded", "failed")
        for stage, value in (("fetch", fetched), ("transform", transformed), ("done", done)):
            shown = min(value, total) if total else value
            note = f"{counts['failed']} failed" if stage == "done" and counts["failed"] else ""
            if final and stage != "done" and total:
                shown = total  # stage counters are display-only; settle them at the end
            self.progress.update(self.bars[stage], completed=shown, total=total, note=note)
