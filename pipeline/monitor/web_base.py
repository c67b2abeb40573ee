"""The handler bases our pages and endpoints share (apart, so ``web`` and ``jobs_web`` both import them)."""

from __future__ import annotations

from typing import Any

from flower.api import BaseApiHandler
from flower.views import BaseHandler
from tornado import escape

from tasks.monitoring import INTERVAL_S

REFRESH_MS = int(INTERVAL_S * 1000)  # pages poll as often as workers report


class ApiHandler(BaseApiHandler):  # type: ignore[misc]
    """Flower's API base, answering 401 with the challenge its pages send (its API sends none)."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 401 and self.application.options.basic_auth:
            self.set_header("WWW-Authenticate", 'Basic realm="flower"')
        super().write_error(status_code, **kwargs)

    def write_json(self, doc: Any) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.write(escape.json_encode(doc))


class SvgHandler(BaseHandler):  # type: ignore[misc]
    """A chart, drawn by the server (see ``svg``)."""

    def write_svg(self, text: str) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Type", "image/svg+xml; charset=UTF-8")
        self.write(text)
