"""Job commands: submit, status, result, jobs, cancel, workers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from pipeline.cli import render
from pipeline.cli.context import CliContext
from pipeline.config import Settings
from pipeline.core.errors import UsageError
from pipeline.core.ops import valid_ops_help
from pipeline.redisconn import reachable

EXIT_TIMEOUT = 5
OPS_HELP = (
    "Comma-separated chain NAME[:ARGS], applied in order; `exif` (auto-orient) is implied. Ops: " + valid_ops_help()
)


class BuildOnly(CliContext):
    """A context under which `submit KIND ...` validates and returns its request instead of submitting."""


def request_from_args(argv: list[str], settings: Settings) -> Any:
    """Parse the words of `pipeline submit KIND ...` into a validated request (nothing is sent).

    Used by `schedule add NAME ... -- KIND ARGS...` so a schedule is checked by the
    very parser `submit` uses; raises ``UsageError`` with click's message otherwise.
    """
    if not argv:
        raise UsageError("job spec: expected KIND and its arguments, e.g. `images ./photos --ops thumbnail:256`")
    try:
        built = submit.main(args=list(argv), prog_name="pipeline submit", standalone_mode=False,
                            obj=BuildOnly(settings))  # fmt: skip
    except click.UsageError as exc:
        raise UsageError(f"job spec: {exc.format_message()}") from None
    if isinstance(built, int) or built is None:
        raise UsageError("job spec: expected KIND and its arguments, e.g. `images ./photos --ops thumbnail:256`")
    return built


def _emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
    sys.stdout.flush()


def exit_code_for(doc: dict[str, Any]) -> int:
    if doc["state"] == "succeeded":
        return 0
    if doc["state"] in ("failed", "cancelled"):
        return 1
    return EXIT_TIMEOUT  # still running: only reachable through --timeout


def finish(
    ctx: CliContext, job_id: str, *, as_json: bool, timeout: float | None, show_failed: bool, quiet: bool = False
) -> int:
    """Wait with live bars (on a terminal), then print the report or the JSON document (unless quiet)."""
    bars = render.JobProgress(enabled=render.err.is_terminal)
    with bars:
        doc = ctx.wait(job_id, on_update=bars.update, timeout=timeout)
    if quiet:
        return exit_code_for(doc)
    return show(ctx, doc, as_json=as_json, show_failed=show_failed)


def show(ctx: CliContext, doc: dict[str, Any], *, as_json: bool, show_failed: bool) -> int:
    failed_items = [r.to_json() for r in ctx.ledger.results(doc["job_id"], failed_only=True)] if show_failed else []
    if as_json:
        if show_failed:
            doc = {**doc, "failed_items": failed_items}
        _emit_json(doc)
    else:
        render.report(doc)
        if failed_items:
            render.failures(failed_items)
        elif doc["images"]["failed"] and not show_failed:
            render.err.print(f"[dim]list failed items: pipeline result {doc['job_id']} --failed[/]")
    return exit_code_for(doc)


@click.group()
def submit() -> None:
    """Submit a job (prints its id at once; --wait to follow it)."""


@submit.command("images")
@click.argument("sources", nargs=-1, required=True)
@click.option("--ops", default="thumbnail:256", show_default=True, help=OPS_HELP)
@click.option(
    "--format", "fmt", default="jpeg", show_default=True, help="Output format.",
    type=click.Choice(["jpeg", "jpg", "png", "webp"], case_sensitive=False),
)  # fmt: skip
@click.option("--quality", default=85, show_default=True, type=click.IntRange(1, 100), help="Encoder quality.")
@click.option("--output", "output_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the outputs [default: $PIPELINE_HOME/outputs/JOB].")  # fmt: skip
@click.option(
    "--batch-size", type=click.IntRange(1, 1000), help="Items per task [default: $PIPELINE_BATCH_SIZE or 20]."
)
@click.option("--wait", is_flag=True, help="Follow the job with progress bars and print the report.")
@click.option("--json", "as_json", is_flag=True, help="Print the result document as JSON on stdout.")
@click.option("--timeout", type=click.FloatRange(min=0), help="With --wait: give up after this many seconds (exit 5).")
@click.pass_obj
def submit_images(
    ctx: CliContext, sources: tuple[str, ...], ops: str, fmt: str, quality: int, output_dir: Path | None,
    batch_size: int | None, wait: bool, as_json: bool, timeout: float | None,
) -> int:  # fmt: skip
    """Process images from SOURCES: URLs, files, directories (recursive), globs, or .txt files of URLs.

    \b
    Examples:
      pipeline submit images ./photos --ops thumbnail:256,grayscale --format webp --wait
      pipeline submit images https://host/a.jpg urls.txt 'shots/**/*.png' --ops resize:640x480:fill
    """
    from pipeline.producer import ImageJobRequest

    request = ImageJobRequest(sources, ops, fmt, quality, output_dir, batch_size)
    request.validate(ctx.settings.max_pixels)  # usage errors before looking for Redis
    if isinstance(ctx, BuildOnly):
        return request  # type: ignore[return-value]
    job_id = ctx.producer.submit_images(request)
    return _after_submit(ctx, job_id, wait=wait, as_json=as_json, timeout=timeout)


@submit.command("crawl")
@click.argument("seeds", nargs=-1, required=True)
@click.option(
    "--max-pages", default=10_000, show_default=True, type=click.IntRange(1), help="Cap on page URLs admitted."
)
@click.option(
    "--max-depth", type=click.IntRange(0), help="Link depth from the seeds (0 = seeds only)  [default: no limit]"
)
@click.option(
    "--allow-domain", "allow_domains", multiple=True, help="Also follow links to this domain and its subdomains."
)
@click.option("--images", is_flag=True, help="Process every image on the crawled pages with --ops.")
@click.option(
    "--ops", default="thumbnail:256", show_default=True, help="With --images: the op chain (see submit images)."
)
@click.option(
    "--format", "fmt", default="jpeg", show_default=True, help="With --images: output format.",
    type=click.Choice(["jpeg", "jpg", "png", "webp"], case_sensitive=False),
)  # fmt: skip
@click.option("--quality", default=85, show_default=True, type=click.IntRange(1, 100))
@click.option("--concurrency", default=64, show_default=True, type=click.IntRange(1, 1024),
              help="Requests in flight for the whole job, across all workers.")  # fmt: skip
@click.option("--per-host", default=8, show_default=True, type=click.IntRange(1, 256),
              help="Requests in flight per host, across all workers.")  # fmt: skip
@click.option("--delay", default=0.0, show_default=True, type=click.FloatRange(0, 3600),
              help="Seconds between request starts on one host.")  # fmt: skip
@click.option("--ignore-robots", is_flag=True, help="Do not fetch or obey robots.txt.")
@click.option("--allow-private", is_flag=True,
              help="Let links and redirects reach loopback/private addresses (off: SSRF guard).")  # fmt: skip
@click.option("--output", "output_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for pages.jsonl, images and the report [default: $PIPELINE_HOME/outputs/JOB].")  # fmt: skip
@click.option("--batch-size", type=click.IntRange(1, 1000), help="Pages per task [default: $PIPELINE_BATCH_SIZE].")
@click.option("--wait", is_flag=True, help="Follow the job with progress bars and print the report.")
@click.option("--json", "as_json", is_flag=True, help="Print the result document as JSON on stdout.")
@click.option("--timeout", type=click.FloatRange(min=0), help="With --wait: give up after this many seconds (exit 5).")
@click.pass_obj
def submit_crawl(
    ctx: CliContext, seeds: tuple[str, ...], max_pages: int, max_depth: int | None, allow_domains: tuple[str, ...],
    images: bool, ops: str, fmt: str, quality: int, concurrency: int, per_host: int, delay: float,
    ignore_robots: bool, allow_private: bool, output_dir: Path | None, batch_size: int | None, wait: bool,
    as_json: bool, timeout: float | None,
) -> int:  # fmt: skip
    """Crawl from SEEDS: every reachable page in scope fetched once, parsed and summarised.

    Scope is the hosts of the seeds (plus --allow-domain). Links and redirects
    to other hosts are not followed; any host other than the seeds' that
    resolves to a loopback, private or link-local address is refused unless
    --allow-private. robots.txt is obeyed unless --ignore-robots.

    \b
    Examples:
      pipeline submit crawl https://example.org/ --max-pages 5000 --max-depth 10 --wait
      pipeline submit crawl https://docs.example.org/ --images --ops thumbnail:128 --json
    """
    from pipeline.producer import CrawlJobRequest

    request = CrawlJobRequest(
        seeds, max_pages, max_depth, allow_domains, images, ops, fmt, quality, concurrency, per_host, delay,
        not ignore_robots, allow_private, output_dir, batch_size,
    )  # fmt: skip
    request.validate(ctx.settings.max_pixels)
    if isinstance(ctx, BuildOnly):
        return request  # type: ignore[return-value]
    job_id = ctx.producer.submit_crawl(request)
    return _after_submit(ctx, job_id, wait=wait, as_json=as_json, timeout=timeout)


def _after_submit(ctx: CliContext, job_id: str, *, wait: bool, as_json: bool, timeout: float | None) -> int:
    if not wait:
        if as_json:
            with reachable(ctx.redis_url):
                _emit_json(ctx.ledger.document(job_id))
        else:
            click.echo(job_id)
        return 0
    if as_json:
        render.err.print(f"job {job_id} submitted")
    else:
        click.echo(job_id)
    return finish(ctx, job_id, as_json=as_json, timeout=timeout, show_failed=False)


@click.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the result document as JSON.")
@click.pass_obj
def status(ctx: CliContext, job_id: str, as_json: bool) -> int:
    """One line on where JOB_ID stands (exit 0 while queued/running or succeeded)."""
    with reachable(ctx.redis_url):
        doc = ctx.ledger.document(job_id)
    if as_json:
        _emit_json(doc)
    else:
        render.out.print(render.status_line(doc))
    return 1 if doc["state"] in ("failed", "cancelled") else 0


@click.command()
@click.argument("job_id")
@click.option("--wait", is_flag=True, help="Wait for the job to finish first.")
@click.option("--json", "as_json", is_flag=True, help="Print the result document as JSON.")
@click.option("--failed", "show_failed", is_flag=True, help="Also list every failed item with its reason.")
@click.option("--timeout", type=click.FloatRange(min=0), help="With --wait: give up after this many seconds (exit 5).")
@click.pass_obj
def result(ctx: CliContext, job_id: str, wait: bool, as_json: bool, show_failed: bool, timeout: float | None) -> int:
    """The report of JOB_ID (exit 0 succeeded, 1 failed/cancelled, 5 not finished)."""
    with reachable(ctx.redis_url):
        if wait:
            return finish(ctx, job_id, as_json=as_json, timeout=timeout, show_failed=show_failed)
        return show(ctx, ctx.ledger.document(job_id), as_json=as_json, show_failed=show_failed)


@click.command()
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of job documents.")
@click.pass_obj
def jobs(ctx: CliContext, limit: int, as_json: bool) -> int:
    """Recent jobs, newest first."""
    with reachable(ctx.redis_url):
        metas = ctx.ledger.recent_jobs(limit)
        if as_json:
            _emit_json([ctx.ledger.document(meta.job_id) for meta in metas])
            return 0

        def counts(job_id: str) -> tuple[int, int]:
            totals = ctx.ledger.totals(job_id)
            return totals.ok, totals.failed

        render.jobs_table(metas, counts)
    return 0


@click.command()
@click.argument("job_id")
@click.pass_obj
def cancel(ctx: CliContext, job_id: str) -> int:
    """Stop JOB_ID: queued batches are skipped, results so far are kept (state `cancelled`)."""
    if ctx.producer.cancel(job_id):
        render.err.print(f"job {job_id} cancelled")
        return 0
    with reachable(ctx.redis_url):
        state = ctx.ledger.meta(job_id).state
    render.err.print(f"job {job_id} had already ended ({state}); nothing to cancel")
    return 1


@click.command()
@click.argument("job_id")
@click.option("--wait", is_flag=True, help="Follow the re-run and print the report.")
@click.option("--json", "as_json", is_flag=True, help="With --wait: print the result document as JSON.")
@click.option("--timeout", type=click.FloatRange(min=0), help="With --wait: give up after this many seconds (exit 5).")
@click.pass_obj
def retry(ctx: CliContext, job_id: str, wait: bool, as_json: bool, timeout: float | None) -> int:
    """Re-run only the failed items of a finished image job (e.g. after fixing the other side).

    The aggregate stays exact: each retried item counts once, as ok if it now
    works, as failed again if not. Exit 1 if the job has no failed items.
    """
    count = ctx.producer.retry(job_id)
    if not count:
        render.err.print(f"job {job_id} has no failed items; nothing to retry")
        return 1
    render.err.print(f"job {job_id}: retrying {count} failed item(s)")
    if not wait:
        click.echo(job_id)
        return 0
    return finish(ctx, job_id, as_json=as_json, timeout=timeout, show_failed=False)


@click.command()
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON list of workers, with items, busy time and items/s per slot and stage.")  # fmt: skip
@click.option("--local", is_flag=True, help="Only workers on this host; exit 1 if there are none (a health check).")
@click.pass_obj
def workers(ctx: CliContext, as_json: bool, local: bool) -> int:
    """Live workers: name, host, pid, pool sizes, queues, items done per process slot."""
    import socket

    from workers.heartbeat import read_workers

    with reachable(ctx.redis_url):
        found = read_workers(ctx.ledger.client)
    if local:
        found = [w for w in found if w.get("host") == socket.gethostname()]
        if not found:
            render.err.print(f"no live worker on {socket.gethostname()}")
            return 1
    if as_json:
        _emit_json(found)
    elif not found:
        render.err.print("no live workers (start some with `pipeline up` or `pipeline worker`)")
    else:
        render.workers_table(found)
    return 0


COMMANDS = (submit, status, result, jobs, cancel, retry, workers)
