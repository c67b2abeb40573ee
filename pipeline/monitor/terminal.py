"""How `pipeline top` draws a snapshot: workers x cores, queues, active jobs.

Pure rendering (a snapshot in, a rich renderable out), so `top` can redraw it
in place with ``rich.live.Live`` or print it once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from pipeline.ledger.memory import memory_line

STATE_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "cancelled": "yellow",
    "running": "cyan",
    "queued": "dim",
}


def state_text(state: str) -> str:
    """A job state in its colour (rich markup), as every table of the CLI shows it."""
    return f"[{STATE_STYLE.get(state, 'white')}]{state}[/]"


def _rate(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def headline_text(snap: Mapping[str, Any]) -> Text:
    """Items/s and items done, each item once (what the jobs report); the table below counts stage passes."""
    head = snap["headline"]
    text = Text()
    text.append(f"{_rate(head['items_per_s'])} items/s", style="bold green")
    text.append(f"  ·  {head['items']:,} items done  ·  {head['workers_online']} workers, {head['cores']} cores")
    text.append("   (each item once; stage columns count passes)", style="dim")
    return text


def redis_text(snap: Mapping[str, Any]) -> Text | None:
    """Redis's memory against its limit; red when nearly full (a full Redis refuses writes)."""
    report = snap.get("redis")
    if not report:
        return None
    return Text(memory_line(report), style="bold red" if report["near_full"] else "")


def cores_table(snap: Mapping[str, Any]) -> Table:
    stages = list(snap["totals"])
    table = Table(title="workers x cores", title_justify="left", expand=False)
    for name, justify in (("worker", "left"), ("core", "left"), ("pid", "right"), ("items/s", "right"),
                          ("busy", "right")):  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for stage in stages:
        table.add_column(f"{stage}/s", justify="right")
        table.add_column(f"{stage} items", justify="right")
    for worker in snap["workers"]:
        name = worker["name"] if worker["online"] else f"{worker['name']} (offline {worker['age_s']:.0f} s)"
        style = "" if worker["online"] else "dim"
        rows = [*worker["cores"], *([worker["io"]] if worker["io"]["stages"] else [])]
        for index, core in enumerate(rows):
            io = core["core"] == "io"
            cells = [
                name if index == 0 else "", "io" if io else f"#{core['core']}",
                "" if core["pid"] is None else str(core["pid"]), "" if io else _rate(core["items_per_s"]),
                "" if io else f"{100 * core['busy_ratio']:.0f} %",
            ]  # fmt: skip
            for stage in stages:
                figures = core["stages"].get(stage)
                cells += [_rate(figures["items_per_s"]), str(figures["items"])] if figures else ["", ""]
            table.add_row(*cells, style=style)
        table.add_section()
    if not snap["workers"]:
        table.add_row("no live workers (start some with `pipeline up` or `pipeline worker`)")
    totals = ["total", "", "", _rate(sum(c["items_per_s"] for w in snap["workers"] for c in w["cores"])), ""]
    for stage in stages:
        totals += [_rate(snap["totals"][stage]["items_per_s"]), str(int(snap["totals"][stage]["items"]))]
    table.add_row(*totals, style="bold")
    return table


def queues_table(snap: Mapping[str, Any]) -> Table:
    table = Table(title="queues", title_justify="left")
    table.add_column("queue")
    table.add_column("waiting", justify="right")
    for queue, depth in snap["queues"].items():
        table.add_row(queue.removeprefix("pipeline."), str(depth))
    return table


def jobs_table(snap: Mapping[str, Any]) -> Table:
    table = Table("job", "kind", "state", "progress", title="active jobs", title_justify="left")
    for name in ("done", "failed", "items/s", "elapsed"):
        table.add_column(name, justify="right")
    for job in snap["jobs"]:
        bar = ProgressBar(total=float(job["total"] or 1), completed=float(job["done"]), width=24)
        table.add_row(job["job_id"], job["kind"], state_text(job["state"]), bar, f"{job['done']}/{job['total']}",
                      str(job["failed"]), _rate(job["items_per_s"]), f"{job['elapsed_s']:.1f} s")  # fmt: skip
    if not snap["jobs"]:
        table.add_row("none", "", "", "", "", "", "", "")
    return table


def view(snap: Mapping[str, Any], problem: str | None = None) -> RenderableType:
    """The whole screen; ``problem`` (e.g. Redis unreachable) is shown above the last good snapshot."""
    clock = time.strftime("%H:%M:%S", time.localtime(snap["at"]))
    parts: list[RenderableType] = [Text(f"pipeline top  {clock}  (Ctrl-C quits)", style="bold")]
    if problem:
        parts.append(Text(problem, style="bold red"))
    parts.append(headline_text(snap))
    if (memory := redis_text(snap)) is not None:
        parts.append(memory)
    parts += [cores_table(snap), queues_table(snap), jobs_table(snap)]
    return Group(*parts)
