"""How results look to a person: the report, job and worker tables, progress bars.

Data goes to stdout through ``out``: reports, tables, a job id, or one JSON
document with ``--json``, so ``pipeline result J > report.txt`` and ``| grep``
work. Progress bars, hints and errors go to stderr through ``err``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.core.aggregate import STAGES
from pipeline.core.document import JobMeta
from pipeline.kinds import KINDS
from pipeline.monitor.terminal import state_text

# Not a terminal (a pipe, CI, a log file): don't squeeze tables into 80 columns.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 output``, ``2 outputs``: a count with its noun in the right number."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


def report(doc: Mapping[str, Any]) -> None:
    """The end-of-job report a person reads: generic rows, with the job kind's own after the state."""
    kind = KINDS.get(doc["kind"])
    items = doc["items"]
    table = Table(title=f"job {doc['job_id']} ({doc['kind']})", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("state", state_text(doc["state"]) + (f"  ({doc['reason']})" if doc.get("reason") else ""))
    for label, text in kind.report_rows(doc) if kind else []:
        table.add_row(label, text)
    table.add_row(kind.noun if kind else "items",
                  f"[green]{items['ok']} ok[/], [red]{items['failed']} failed[/]"
                  + (f", {items['pending']} pending" if items.get("pending") else ""))  # fmt: skip
    for reason, count in doc["failures"].items():
        table.add_row("", f"  {reason}: {count}")
    if doc.get("cache_hits"):
        table.add_row(
            "cache", f"{counted(doc['cache_hits'], 'output')} reused from the result cache (not transformed again)"
        )
    table.add_row("bytes", f"{human_bytes(doc['bytes_in'])} in, {human_bytes(doc['bytes_out'])} out")
    table.add_row("elapsed", f"{doc['elapsed_s']:.2f} s ({doc['items_per_s']:.1f} items/s)")
    timings = doc["timings"]
    spent = [s for s in STAGES if timings.get(f"{s}_s")]  # only the stages the job went through
    if spent:
        table.add_row("mean per item", "  ".join(f"{s} {timings.get(f'{s}_mean_ms', 0):.1f} ms" for s in spent))
    if doc.get("ops"):
        table.add_row("ops", f"{doc['ops']} -> {doc.get('format')}")
    table.add_row("outputs", str(doc["output_dir"]))
    out.print(table)


def status_line(doc: Mapping[str, Any]) -> str:
    """`pipeline status`: one line on where a job stands."""
    items = doc["items"]
    done = items["ok"] + items["failed"]
    cached = f", {doc['cache_hits']} cached" if doc.get("cache_hits") else ""
    return (f"{doc['job_id']}  {doc['kind']}  {state_text(doc['state'])}  {done}/{items['total']} done"
            f"  ({items['failed']} failed{cached})  {doc['elapsed_s']:.1f} s")  # fmt: skip


def failures(results: Iterable[Mapping[str, Any]]) -> None:
    table = Table("reason", "source", "detail", title="failed items", title_justify="left")
    for result in results:
        table.add_row(str(result.get("reason")), str(result.get("source")), str(result.get("detail", ""))[:120])
    out.print(table)


def jobs_table(metas: Iterable[JobMeta], counts: Callable[[str], tuple[int, int]]) -> None:
    table = Table("job", "kind", "state", "ok", "failed", "total", "created", "elapsed", "schedule")
    now = time.time()
    for meta in metas:
        ok, failed = counts(meta.job_id)
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(meta.created_at))
        total = meta.total if meta.total is not None else meta.submitted
        table.add_row(meta.job_id, meta.kind, state_text(meta.state), str(ok), str(failed), str(total),
                      created, f"{meta.elapsed(now):.1f} s", meta.schedule or "")  # fmt: skip
    out.print(table)


def workers_table(workers: Iterable[Mapping[str, Any]]) -> None:
    # `concurrency` is Celery's task threads; `threads` (as in `workers --json`) the blocking-I/O pool.
    table = Table("worker", "host", "pid", "procs", "task threads", "io threads", "queues", "items per slot")
    for worker in workers:
        per_slot = "  ".join(f"#{s['slot']}:{s['items']}" for s in worker.get("slots", []))
        table.add_row(str(worker["name"]), str(worker.get("host")), str(worker.get("pid")),
                      str(worker.get("processes")), str(worker.get("concurrency")), str(worker.get("threads")),
                      ",".join(q.removeprefix("pipeline.") for q in worker.get("queues", [])), per_slot)  # fmt: skip
    out.print(table)


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

    def update(self, doc: Mapping[str, Any], progress: Mapping[str, int], workers_live: bool = True) -> None:
        if not self.enabled:
            return
        counts = doc["items"]
        total = counts["total"] or None
        done = counts["ok"] + counts["failed"]
        fetched, transformed = progress.get("fetched", 0), progress.get("transformed", 0)
        final = doc["state"] in ("succeeded", "failed")
        for stage, value in (("fetch", fetched), ("transform", transformed), ("done", done)):
            shown = min(value, total) if total else value
            note = f"{counts['failed']} failed" if stage == "done" and counts["failed"] else ""
            if stage == "done" and not workers_live and not final:
                note = "[yellow]no live workers[/]: waiting for one to start"
            if final and stage != "done" and total:
                shown = total  # stage counters are display-only; settle them at the end
            self.progress.update(self.bars[stage], completed=shown, total=total, note=note)
