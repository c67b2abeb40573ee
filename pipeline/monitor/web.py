"""Our pages inside Flower: the Cores page, its JSON endpoint, and an authenticated /metrics.

Flower is a Tornado ``Application`` whose routes are fixed in ``flower/urls.py``
(ending in a catch-all 404). Tornado's ``add_handlers`` inserts a host rule
*before* the constructor's routes, so ours take precedence — including over
Flower's ``/metrics`` — and every Flower route keeps working.

Auth is Flower's own: the page derives from Flower's ``BaseHandler`` and the
endpoint from its ``BaseApiHandler``, both with ``@web.authenticated``, whose
``get_current_user`` checks ``--basic-auth`` (401 with ``WWW-Authenticate``
when credentials are missing or wrong) and ``--auth`` (OAuth). Stock Flower
leaves ``/metrics`` open (mher/flower#1129; #1342 asks to close it); it carries
our per-worker series, so here it needs the basic-auth credentials whenever
those are configured (Prometheus: ``basic_auth`` in the scrape config).

Templates: our ``cores.html`` extends Flower's ``base.html``, and Flower's
navbar gains a Cores tab, through a template loader over Flower's directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flower
from flower.api import BaseApiHandler
from flower.app import rewrite_handler
from flower.views import BaseHandler
from flower.views.monitor import Metrics as FlowerMetrics
from tornado import template, web

from pipeline.monitor.board import CoreBoard
from tasks.monitoring import EVENT_GROUP, INTERVAL_S

OUR_TEMPLATES = Path(__file__).with_name("templates")
FLOWER_TEMPLATES = Path(flower.__file__).with_name("templates")
CORES_TAB = """
        <li class="nav-item">
          <a class="nav-link{% if active_tab == 'cores' %} active{% end %}" href="{{ reverse_url('cores') }}"
            {% if active_tab == 'cores' %}aria-current="page"{% end %}>Cores</a>
        </li>"""


class CoresPage(BaseHandler):  # type: ignore[misc]
    """The Cores page; its script polls ``/api/cores`` once a second."""

    @web.authenticated
    async def get(self) -> None:
        self.render("cores.html", api_url=self.reverse_url("cores-api"), refresh_ms=int(INTERVAL_S * 1000))


class CoresApi(BaseApiHandler):  # type: ignore[misc]
    """Every worker's per-core figures as JSON (see ``CoreBoard.as_json``)."""

    def initialize(self, board: CoreBoard) -> None:
        self.board = board

    @web.authenticated
    async def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.write(self.board.as_json())

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # Flower's API answers 401 without a challenge; say which scheme to use, as its pages do.
        if status_code == 401 and self.application.options.basic_auth:
            self.set_header("WWW-Authenticate", 'Basic realm="flower"')
        super().write_error(status_code, **kwargs)


class Metrics(FlowerMetrics):  # type: ignore[misc]
    """Flower's ``/metrics`` (its series and ours), behind basic auth when that is configured."""

    def prepare(self) -> None:
        if self.application.options.basic_auth and not self.current_user:
            raise web.HTTPError(401)


def with_cores_tab(navbar: str) -> str:
    """Flower's navbar with a Cores tab after Broker; unchanged if a newer Flower moved its markup."""
    anchor = navbar.find("reverse_url('broker')")
    end = navbar.find("</li>", anchor)
    if anchor < 0 or end < 0:
        return navbar
    end += len("</li>")
    return navbar[:end] + CORES_TAB + navbar[end:]


class Templates(template.Loader):
    """Flower's templates, plus ours (``cores.html``), with the Cores tab in Flower's navbar."""

    def __init__(self) -> None:
        super().__init__(str(FLOWER_TEMPLATES))

    def _create_template(self, name: str) -> template.Template:
        ours = OUR_TEMPLATES / name
        if ours.is_file():
            return template.Template(ours.read_bytes(), name=name, loader=self)
        if name == "navbar.html":
            text = with_cores_tab((FLOWER_TEMPLATES / name).read_text())
            return template.Template(text, name=name, loader=self)
        return super()._create_template(name)


def install(app: Any, board: CoreBoard) -> None:
    """Route our handlers (under ``--url-prefix`` too) and feed the board from Flower's event state."""
    handlers = [
        web.url(r"/cores", CoresPage, name="cores"),
        web.url(r"/api/cores", CoresApi, {"board": board}, name="cores-api"),
        web.url(r"/metrics", Metrics),
    ]
    if app.options.url_prefix:
        handlers = [rewrite_handler(h, app.options.url_prefix) for h in handlers]
    app.add_handlers(r".*", handlers)
    app.events.state.handlers[EVENT_GROUP] = board.on_event
