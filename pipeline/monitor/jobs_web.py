"""The Jobs pages in Flower: the list, one job, their JSON, its chart, its files, cancel and retry.

    /jobs                     recent jobs (the page polls /api/jobs once a second)
    /jobs/JOB                 one job (polls /api/jobs/JOB and redraws /jobs/JOB/chart.svg)
    /jobs/JOB/cancel|retry    POST only: the same Producer.cancel / Producer.retry as the CLI
    /jobs/JOB/files/NAME      report.json, failures.jsonl or pages.jsonl from the job's output folder

Everything is read from ``JobWatch`` (memory) for the watched jobs; an older
job is read from the ledger on request (a handful of keys). Blocking work —
Redis, the producer, files — runs on Flower's executor, never on the IO loop.

Cancel and retry change things, so besides Flower's auth they need a POST
from our own page: Flower refuses cross-site requests (Fetch Metadata and
Origin headers), and we also require Tornado's XSRF token, which only a page
served by this Flower carries (a form field matching the ``_xsrf`` cookie).
The outcome is shown on the job's page after a 303 redirect, so a reload
never repeats it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from flower.views import BaseHandler
from tornado import web
from tornado.ioloop import IOLoop
from tornado.routing import URLSpec

from pipeline.core.document import FINAL_STATES
from pipeline.core.errors import JobNotFound, PipelineError
from pipeline.kinds import KINDS, job_document
from pipeline.ledger.connection import REDIS_TROUBLE
from pipeline.monitor import charts
from pipeline.monitor.jobs import JobWatch, rates, summary
from pipeline.monitor.web_base import REFRESH_MS, ApiHandler, SvgHandler
from pipeline.producer import Producer

JOB_ID = r"(?P<job_id>[A-Za-z0-9][A-Za-z0-9._:-]{0,127})"
FILES = ("report.json", "failures.jsonl", "pages.jsonl")
NOTICE_COOKIE = "pipeline_notice"
CHUNK = 64 * 1024


class Actions:
    """Cancel and retry through one lazily built ``Producer``, one action at a time."""

    def __init__(self, make_producer: Callable[[], Producer]) -> None:
        self._make = make_producer
        self._producer: Producer | None = None
        self._lock = threading.Lock()

    def _run(self, action: Callable[[Producer], str]) -> str:
        with self._lock:
            if self._producer is None:
                self._producer = self._make()
            return action(self._producer)

    def cancel(self, job_id: str) -> str:
        def run(producer: Producer) -> str:
            if producer.cancel(job_id):
                return "Job cancelled: no new work starts, and the results so far are kept."
            return f"The job had already ended ({producer.ledger.meta(job_id).state}); nothing to cancel."

        return self._run(run)

    def retry(self, job_id: str) -> str:
        def run(producer: Producer) -> str:
            count = producer.retry(job_id)
            return f"Retrying {count} failed item(s)." if count else "The job has no failed items; nothing to retry."

        return self._run(run)

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close()
                self._producer = None


def can_retry(doc: dict[str, Any]) -> tuple[bool, str]:
    """Whether the Retry button applies, and why not (what ``retry.lua`` would refuse)."""
    kind = KINDS.get(doc["kind"])
    if kind is None or not kind.retryable:
        return False, f"A {doc['kind']} job cannot be retried item by item; submit it again."
    if doc["state"] not in ("succeeded", "failed"):
        return False, "Only a finished job can be retried."
    if not doc["items"]["failed"]:
        return False, "No failed items to retry."
    return True, "Re-run only the failed items."


def detail(watch: JobWatch, job_id: str, now: float) -> dict[str, Any]:
    """Everything the job page shows (blocking: Redis, files)."""
    doc = watch.document(job_id)
    watched = doc is not None
    if doc is None:
        doc = job_document(watch.ledger, job_id)  # raises JobNotFound
    points = watch.points(job_id)
    retry, retry_why = can_retry(doc)
    out = summary(doc, points, now)
    out |= {
        "watched": watched,
        "timings": doc["timings"], "ops": doc.get("ops"), "format": doc.get("format"),
        "bytes_in": doc["bytes_in"], "bytes_out": doc["bytes_out"], "cache_hits": doc["cache_hits"],
        "outputs": doc["outputs"], "pages": doc.get("pages"), "images": doc.get("images"),
        "history": [[round(at, 3), v, f] for at, v, f in rates(points)],
        "top_failures": watch.failures(job_id, doc),
        "files": {name: (Path(doc["output_dir"]) / name).is_file() for name in FILES} if doc["output_dir"] else {},
        "actions": {"cancel": doc["state"] not in FINAL_STATES, "retry": retry, "retry_why": retry_why},
    }  # fmt: skip
    return out


T = TypeVar("T")


async def blocking(func: Callable[..., T], *args: Any) -> T:
    """Run ``func`` on Flower's executor; an unknown job is a 404, an unreachable Redis a 503."""
    try:
        return await IOLoop.current().run_in_executor(None, func, *args)
    except JobNotFound as exc:
        raise web.HTTPError(404, exc.message) from None
    except REDIS_TROUBLE as exc:
        raise web.HTTPError(503, f"Redis unreachable: {exc}") from None


class WatchMixin:
    def initialize(self, watch: JobWatch, actions: Actions | None = None) -> None:
        self.watch = watch
        self.actions = actions

    async def job_document(self, job_id: str) -> dict[str, Any]:
        """The watched job's document, or an older job's from the ledger."""
        doc = self.watch.document(job_id)
        if doc is None:
            doc = await blocking(job_document, self.watch.ledger, job_id)
        return doc


class JobsPage(WatchMixin, BaseHandler):  # type: ignore[misc]
    @web.authenticated
    async def get(self) -> None:
        self.render("jobs.html", api_url=self.reverse_url("jobs-api"), job_url=self.reverse_url("job", "__JOB__"),
                    refresh_ms=REFRESH_MS)  # fmt: skip


class JobPage(WatchMixin, BaseHandler):  # type: ignore[misc]
    @web.authenticated
    async def get(self, job_id: str) -> None:
        if self.watch.document(job_id) is None:
            await blocking(self.watch.ledger.meta, job_id)
        notice = self.get_signed_cookie(NOTICE_COOKIE, max_age_days=1)
        if notice:
            self.clear_cookie(NOTICE_COOKIE)
        self.render(
            "job.html", job_id=job_id, notice=notice.decode() if notice else "", refresh_ms=REFRESH_MS,
            api_url=self.reverse_url("job-api", job_id), chart_url=self.reverse_url("job-chart", job_id),
            cancel_url=self.reverse_url("job-action", job_id, "cancel"),
            retry_url=self.reverse_url("job-action", job_id, "retry"),
            file_url=self.reverse_url("job-file", job_id, "__NAME__"), jobs_url=self.reverse_url("jobs"),
        )  # fmt: skip


class JobsApi(WatchMixin, ApiHandler):
    """The watched jobs, newest first, as the Jobs page shows them."""

    @web.authenticated
    async def get(self) -> None:
        self.write_json({"generated_at": round(time.time(), 3), "refreshed_at": self.watch.refreshed_at,
                         "error": self.watch.error, "jobs": self.watch.jobs()})  # fmt: skip


class JobApi(WatchMixin, ApiHandler):
    @web.authenticated
    async def get(self, job_id: str) -> None:
        self.write_json(await blocking(detail, self.watch, job_id, time.time()))


class JobChart(WatchMixin, SvgHandler):
    @web.authenticated
    async def get(self, job_id: str) -> None:
        doc = await self.job_document(job_id)
        self.write_svg(charts.job_chart(self.watch.points(job_id), time.time(), created_at=doc["created_at"],
                                        finished_at=doc.get("finished_at")))  # fmt: skip


class JobAction(WatchMixin, BaseHandler):  # type: ignore[misc]
    """POST /jobs/JOB/cancel or /retry, from the job's page."""

    def check_xsrf_cookie(self) -> None:
        super().check_xsrf_cookie()  # Flower's: refuses cross-site requests
        web.RequestHandler.check_xsrf_cookie(self)  # ours: the page's token, even under basic auth

    @web.authenticated
    async def post(self, job_id: str, action: str) -> None:
        assert self.actions is not None
        run = self.actions.cancel if action == "cancel" else self.actions.retry
        try:
            message = await blocking(run, job_id)
        except PipelineError as exc:  # refused (e.g. retry of a running job) or the broker unreachable
            message = exc.message
        self.set_signed_cookie(NOTICE_COOKIE, message, expires_days=None, httponly=True, samesite="Strict")
        self.redirect(self.reverse_url("job", job_id), status=303)


class JobFile(WatchMixin, BaseHandler):  # type: ignore[misc]
    """One of the job's own files, read from its output folder on this machine (where Flower runs)."""

    @web.authenticated
    async def get(self, job_id: str, name: str) -> None:
        doc = await self.job_document(job_id)
        loop = IOLoop.current()
        path = Path(doc["output_dir"]) / name
        try:
            handle = await loop.run_in_executor(None, path.open, "rb")
        except OSError:
            raise web.HTTPError(404, f"{name} is not readable where Flower runs ({path})") from None
        self.set_header("Content-Type", "application/json" if name.endswith(".json") else "application/x-ndjson")
        self.set_header("Content-Disposition", f'inline; filename="{job_id}-{name}"')
        try:
            while chunk := await loop.run_in_executor(None, handle.read, CHUNK):
                self.write(chunk)
                await self.flush()
        finally:
            handle.close()


def handlers(watch: JobWatch, actions: Actions) -> list[URLSpec]:
    both = {"watch": watch, "actions": actions}
    files = "|".join(name.replace(".", r"\.") for name in FILES)
    return [
        web.url(r"/jobs", JobsPage, {"watch": watch}, name="jobs"),
        web.url(r"/api/jobs", JobsApi, {"watch": watch}, name="jobs-api"),
        web.url(rf"/api/jobs/{JOB_ID}", JobApi, {"watch": watch}, name="job-api"),
        web.url(rf"/jobs/{JOB_ID}/chart\.svg", JobChart, {"watch": watch}, name="job-chart"),
        web.url(rf"/jobs/{JOB_ID}/(?P<action>cancel|retry)", JobAction, both, name="job-action"),
        web.url(rf"/jobs/{JOB_ID}/files/(?P<name>{files})", JobFile, {"watch": watch}, name="job-file"),
        web.url(rf"/jobs/{JOB_ID}", JobPage, {"watch": watch}, name="job"),
    ]
