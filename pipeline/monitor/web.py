"""Our pages inside Flower: Cores and Jobs, their JSON endpoints and charts, and an authenticated /metrics.

Flower is a Tornado ``Application`` whose routes are fixed in ``flower/urls.py``
(ending in a catch-all 404). Tornado's ``add_handlers`` inserts a host rule
*before* the constructor's routes, so ours take precedence — including over
Flower's ``/metrics`` — and every Flower route keeps working.

Auth is Flower's own: pages derive from Flower's ``BaseHandler`` and endpoints
from its ``BaseApiHandler``, all with ``@web.authenticated``, whose
``get_current_user`` checks ``--basic-auth`` (401 with ``WWW-Authenticate``
when credentials are missing or wrong) and ``--auth`` (OAuth). Stock Flower
leaves ``/metrics`` open (mher/flower#1129; #1342 asks to close it); it carries
our per-worker and per-job series, so here it needs the basic-auth credentials
whenever those are configured (Prometheus: ``basic_auth`` in the scrape config).

Templates: ours extend Flower's ``base.html``, and Flower's navbar gains Cores
and Jobs tabs, through a template loader over Flower's directory. The jobs'
handlers are in ``jobs_web``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import flower
from flower.app import rewrite_handler
from flower.views import BaseHandler
from flower.views.monitor import Metrics as FlowerMetrics
from tornado import template, web
from tornado.ioloop import PeriodicCallback

from pipeline.monitor import charts, jobs_web
from pipeline.monitor.board import CoreBoard
from pipeline.monitor.jobs import JobWatch
from pipeline.monitor.web_base import REFRESH_MS, ApiHandler, SvgHandler
from tasks.monitoring import EVENT_GROUP

OUR_TEMPLATES = Path(__file__).with_name("templates")
FLOWER_TEMPLATES = Path(flower.__file__).with_name("templates")
TABS = """
        <li class="nav-item">
          <a class="nav-link{% if active_tab == 'cores' %} active{% end %}" href="{{ reverse_url('cores') }}"
            {% if active_tab == 'cores' %}aria-current="page"{% end %}>Cores</a>
        </li>
        <li class="nav-item">
          <a class="nav-link{% if active_tab == 'jobs' %} active{% end %}" href="{{ reverse_url('jobs') }}"
            {% if active_tab == 'jobs' %}aria-current="page"{% end %}>Jobs</a>
        </li>"""


class CoresPage(BaseHandler):  # type: ignore[misc]
    """The Cores page; its script polls ``/api/cores`` and the two charts once a second."""

    @web.authenticated
    async def get(self) -> None:
        self.render("cores.html", api_url=self.reverse_url("cores-api"), chart_url=self.reverse_url("cores-chart"),
                    refresh_ms=REFRESH_MS)  # fmt: skip


class CoresApi(ApiHandler):
    """Every worker's per-core figures and the headline as JSON (see ``CoreBoard.as_json``)."""

    def initialize(self, board: CoreBoard) -> None:
        self.board = board

    @web.authenticated
    async def get(self) -> None:
        self.write_json(self.board.as_json())


class CoresHistoryApi(ApiHandler):
    """The charts' data: ``?minutes=1|5|15`` of per-core, per-stage and headline items/s, and join/leave marks."""

    def initialize(self, board: CoreBoard) -> None:
        self.board = board

    @web.authenticated
    async def get(self) -> None:
        span = charts.span_of(self.get_query_argument("minutes", None))
        self.write_json(charts.history_json(self.board.timeline, time.time(), span))


class CoresChart(SvgHandler):
    """``?by=core`` (default) or ``?by=stage``, over ``?minutes=`` (15 by default)."""

    def initialize(self, board: CoreBoard) -> None:
        self.board = board

    @web.authenticated
    async def get(self) -> None:
        by = self.get_query_argument("by", "core")
        if by not in charts.BY:
            raise web.HTTPError(400, f"by must be one of {', '.join(charts.BY)}")
        span = charts.span_of(self.get_query_argument("minutes", None))
        self.write_svg(charts.cores_chart(self.board.timeline, by, time.time(), span))


class Metrics(FlowerMetrics):  # type: ignore[misc]
    """Flower's ``/metrics`` (its series and ours), behind basic auth when that is configured."""

    def prepare(self) -> None:
        if self.application.options.basic_auth and not self.current_user:
            raise web.HTTPError(401)


def with_tabs(navbar: str) -> str:
    """Flower's navbar with Cores and Jobs tabs after Broker; unchanged if a newer Flower moved its markup."""
    anchor = navbar.find("reverse_url('broker')")
    end = navbar.find("</li>", anchor)
    if anchor < 0 or end < 0:
        return navbar
    end += len("</li>")
    return navbar[:end] + TABS + navbar[end:]


class Templates(template.Loader):
    """Flower's templates, plus ours (``cores.html``, ``jobs.html``...), with our tabs in Flower's navbar."""

    def __init__(self) -> None:
        super().__init__(str(FLOWER_TEMPLATES))

    def _create_template(self, name: str) -> template.Template:
        ours = OUR_TEMPLATES / name
        if ours.is_file():
            return template.Template(ours.read_bytes(), name=name, loader=self)
        if name == "navbar.html":
            text = with_tabs((FLOWER_TEMPLATES / name).read_text())
            return template.Template(text, name=name, loader=self)
        return super()._create_template(name)


def install(app: Any, board: CoreBoard, watch: JobWatch, actions: jobs_web.Actions) -> PeriodicCallback:
    """Route our handlers (under ``--url-prefix`` too), feed the board from Flower's event state.

    Returns the started once-a-second callback that samples the board's history.
    """
    handlers = [
        web.url(r"/cores", CoresPage, name="cores"),
        web.url(r"/api/cores", CoresApi, {"board": board}, name="cores-api"),
        web.url(r"/api/cores/history", CoresHistoryApi, {"board": board}, name="cores-history"),
        web.url(r"/cores/chart\.svg", CoresChart, {"board": board}, name="cores-chart"),
        *jobs_web.handlers(watch, actions),
        web.url(r"/metrics", Metrics),
    ]
    if app.options.url_prefix:
        handlers = [rewrite_handler(h, app.options.url_prefix) for h in handlers]
    app.add_handlers(r".*", handlers)
    app.events.state.handlers[EVENT_GROUP] = board.on_event
    sampler = PeriodicCallback(board.tick, REFRESH_MS)
    sampler.start()
    return sampler
