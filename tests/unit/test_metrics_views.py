"""How the per-core figures are shown: Flower's navbar gains a Cores tab; `top` draws its tables."""

from __future__ import annotations

import io
import time
from typing import Any

from rich.console import Console
from tornado import template

from pipeline.monitor.cores import worker_view
from pipeline.monitor.terminal import view
from pipeline.monitor.web import FLOWER_TEMPLATES, Templates, with_cores_tab
from workers.metrics import SlotMetrics


def test_flowers_navbar_gets_one_cores_tab_after_broker() -> None:
    navbar = with_cores_tab((FLOWER_TEMPLATES / "navbar.html").read_text())
    assert navbar.count("reverse_url('cores')") == 1
    assert navbar.index("reverse_url('broker')") < navbar.index("reverse_url('cores')")
    template.Template(navbar)  # still a valid template


def test_a_navbar_without_a_broker_tab_is_left_alone() -> None:
    assert with_cores_tab("<nav><ul></ul></nav>") == "<nav><ul></ul></nav>"


def test_the_template_loader_serves_our_page_on_flowers_base() -> None:
    loader = Templates()
    page = loader.load("cores.html")
    assert "cores-table" in page.code
    assert "css/flower.css" in page.code  # extends Flower's base.html
    assert loader.load("workers.html").name == "workers.html"


def snapshot() -> dict[str, Any]:
    metrics = SlotMetrics(2)
    metrics.observe(0, "transform", 0.5, items=3)
    metrics.observe_io("fetch", 0.2, items=3)
    now = time.time()
    fields = metrics.snapshot()
    online = worker_view("alpha@host", fields["cores"], fields["io"], seen_at=now, now=now)
    gone = worker_view("beta@host", fields["cores"], fields["io"], seen_at=now - 60, now=now)
    return {
        "at": now, "workers": [online, gone],
        "totals": {"fetch": {"items": 6, "items_per_s": 0.0}, "transform": {"items": 6, "items_per_s": 0.0}},
        "queues": {"pipeline.fetch": 2, "pipeline.transform": 0, "pipeline.reduce": 0},
        "jobs": [{"job_id": "20260101-000000-abcdef", "kind": "images", "state": "running", "done": 3,
                  "failed": 1, "total": 10, "progress": 0.3, "elapsed_s": 1.5, "items_per_s": 2.0}],
    }  # fmt: skip


def render(renderable: Any) -> str:
    console = Console(file=io.StringIO(), width=200, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_top_draws_every_core_the_queues_and_the_active_jobs() -> None:
    text = render(view(snapshot()))
    assert "alpha@host" in text and "#0" in text and "#1" in text and "io" in text
    assert "beta@host (offline 60 s)" in text
    assert "fetch" in text and "transform" in text
    assert "20260101-000000-abcdef" in text and "3/10" in text


def test_top_shows_a_problem_above_the_last_figures() -> None:
    text = render(view(snapshot(), "broker unreachable: cannot connect"))
    assert text.index("broker unreachable") < text.index("alpha@host")
