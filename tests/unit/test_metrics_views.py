"""How the figures are shown: Flower's navbar gains Cores and Jobs tabs; `top` draws its headline and tables."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest
from rich.console import Console
from tornado import template

from pipeline.monitor.cores import headline, worker_view
from pipeline.monitor.terminal import view
from pipeline.monitor.web import FLOWER_TEMPLATES, Templates, with_tabs
from workers.metrics import SlotMetrics


def test_flowers_navbar_gets_one_cores_and_one_jobs_tab_after_broker() -> None:
    navbar = with_tabs((FLOWER_TEMPLATES / "navbar.html").read_text())
    assert navbar.count("reverse_url('cores')") == 1
    assert navbar.count("reverse_url('jobs')") == 1
    assert (
        navbar.index("reverse_url('broker')")
        < navbar.index("reverse_url('cores')")
        < navbar.index("reverse_url('jobs')")
    )
    template.Template(navbar)  # still a valid template


def test_a_navbar_without_a_broker_tab_is_left_alone() -> None:
    assert with_tabs("<nav><ul></ul></nav>") == "<nav><ul></ul></nav>"


@pytest.mark.parametrize(("name", "marker"), [("cores.html", "cores-table"), ("jobs.html", "jobs-table"),
                                              ("job.html", "job-cancel-form")])  # fmt: skip
def test_the_template_loader_serves_our_pages_on_flowers_base(name: str, marker: str) -> None:
    loader = Templates()
    page = loader.load(name)
    assert marker in page.code
    assert "css/flower.css" in page.code  # extends Flower's base.html
    assert "PipelineMonitor" in page.code  # the shared script is included
    assert loader.load("workers.html").name == "workers.html"


def test_the_job_page_posts_its_actions_with_an_xsrf_token() -> None:
    code = Templates().load("job.html").code
    assert code.count('method="post"') == 2
    assert code.count("xsrf_form_html()") == 2


def snapshot() -> dict[str, Any]:
    metrics = SlotMetrics(2)
    metrics.observe(0, "transform", 0.5, items=3)
    metrics.observe_io("fetch", 0.2, items=3)
    now = time.time()
    fields = metrics.snapshot()
    online = worker_view("alpha@host", fields["cores"], fields["io"], seen_at=now, now=now)
    gone = worker_view("beta@host", fields["cores"], fields["io"], seen_at=now - 60, now=now)
    return {
        "at": now, "headline": headline([online, gone]), "workers": [online, gone],
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


def test_top_heads_the_screen_with_items_counted_once_not_stage_passes() -> None:
    metrics = SlotMetrics(1)
    for stage in ("fetch", "transform", "store"):  # one local image: three passes on one core
        metrics.observe(0, stage, 0.1, items=5, counted=stage == "transform")
    metrics.observe_recorded(5)
    fields = metrics.snapshot()
    now = time.time()
    worker = worker_view("alpha@host", fields["cores"], fields["io"], seen_at=now, now=now,
                         recorded=fields["recorded"])  # fmt: skip
    snap = {**snapshot(), "workers": [worker], "headline": headline([worker])}
    text = render(view(snap))
    assert "5 items done" in text
    assert snap["headline"]["items"] == 5
    assert text.index("items done") < text.index("workers x cores")


def test_top_shows_a_problem_above_the_last_figures() -> None:
    text = render(view(snapshot(), "broker unreachable: cannot connect"))
    assert text.index("broker unreachable") < text.index("alpha@host")
