"""`pipeline demo`: the whole system on generated images, started and stopped for you."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from pipeline.cli import render
from pipeline.cli.context import CliContext
from pipeline.cli.waiting import finish
from pipeline.cluster import LocalCluster
from pipeline.config import available_cores
from pipeline.kinds import job_document
from pipeline.outputs import write_file


def _sources(root: Path, served: Path, url_for: object, urls_file: Path) -> list[str]:
    """Local folders as directories, one folder over HTTP through a URL list."""
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    lines = ["# demo: images served over HTTP on loopback, plus two that must fail"]
    lines += [url_for(str(f.relative_to(root))) for f in sorted(served.rglob("*")) if f.is_file()]  # type: ignore[operator]
    lines += [url_for("status/404"), url_for("not-image.jpg")]  # type: ignore[operator]
    write_file(urls_file, ("\n".join(lines) + "\n").encode())
    return [str(f) for f in folders if f != served] + [str(urls_file)]


@click.command()
@click.option("--count", default=240, show_default=True, type=click.IntRange(10, 5000), help="Images to generate.")
@click.option("--pages", default=200, show_default=True, type=click.IntRange(20, 5000), help="Pages of the demo site.")
@click.option("--no-crawl", is_flag=True, help="Run only the image job (no crawl, no scrape).")
@click.option("--workers", "count_workers", default=1, show_default=True, type=click.IntRange(1, 16))
@click.option("--ops", default="thumbnail:320,sharpen", show_default=True, help="Op chain (see submit images --help).")
@click.option("--format", "fmt", default="webp", show_default=True, type=click.Choice(["jpeg", "png", "webp"]))
@click.option("--json", "as_json", is_flag=True, help='Print {"state", "jobs": {"images", "crawl", "scrape"}} as JSON.')
@click.pass_obj
def demo(
    ctx: CliContext, count: int, pages: int, no_crawl: bool, count_workers: int, ops: str, fmt: str, as_json: bool
) -> int:  # fmt: skip
    """Run everything on generated data: an image job, a crawl and a scrape of the demo site.

    Generates images (kept in $PIPELINE_HOME/demo, so a second run starts at
    once), serves some over HTTP on loopback, starts Redis (PIPELINE_REDIS_URL
    if set, else a private one) and workers, runs an image job, crawls the
    bundled demo site with --images, scrapes its shop's products into a CSV
    feed, prints the reports and stops everything.
    """
    from pipeline.demo.images import generate_demo_images
    from pipeline.demo.server import StaticServer
    from pipeline.demo.site import DemoSite
    from pipeline.kinds.crawl import CrawlSpec
    from pipeline.kinds.images import ImagesSpec
    from pipeline.kinds.scrape import ScrapeSpec
    from pipeline.producer import Producer

    settings = ctx.settings
    home = settings.state_path("demo")
    render.err.print(f"[bold]1/6[/] demo images in {home / 'images'} ...")
    demo_set = generate_demo_images(home / "images", count)
    cluster = LocalCluster(settings, log_dir=home / "logs", private_dir=home / "redis", record_state=False,
                           die_with_parent=True)  # fmt: skip
    served = sorted(p for p in demo_set.root.iterdir() if p.is_dir())[-1]
    docs: dict[str, dict[str, Any]] = {}
    with StaticServer(demo_set.root) as server:
        try:
            render.err.print("[bold]2/6[/] starting Redis and workers ...")
            url = cluster.start_redis()
            cluster.start_workers(count_workers, max(1, available_cores() // count_workers))
            producer = Producer(settings, url)
            ctx._producer, ctx._url = producer, url  # the report readers use the same Redis
            sources = _sources(demo_set.root, served, server.url_for, home / "urls.txt")
            render.err.print(f"[bold]3/6[/] image job: {len(demo_set.files) + 2} images from folders "
                             f"{', '.join(Path(s).name for s in sources[:-1])} and {server.url}/{served.name}/ "
                             f"({len(demo_set.broken)} deliberately broken files, a 404 and a non-image)")  # fmt: skip
            job_id = producer.submit(ImagesSpec.build(sources=sources, ops=ops, format=fmt))
            finish(ctx, job_id, as_json=False, timeout=None, show_failed=not as_json, quiet=as_json)
            docs["images"] = _with_failures(ctx, job_id)
            if not no_crawl:
                with DemoSite(pages=pages) as site:
                    render.err.print(
                        f"[bold]4/6[/] crawl job: {site.url}/ ({pages} pages, broken links, a redirect chain, "
                        "a slow page, robots.txt, a crawler trap) with --images --max-depth 8"
                    )
                    spec = CrawlSpec.build(seeds=[site.url + "/"], max_depth=8, images=True, ops=ops, format=fmt)
                    crawl_id = producer.submit(spec)
                    finish(ctx, crawl_id, as_json=False, timeout=None, show_failed=False, quiet=as_json)
                    docs["crawl"] = _with_failures(ctx, crawl_id)
                    render.err.print(
                        f"[bold]5/6[/] scrape job: the shop at {site.url}/shop/ (each product card's name, price, "
                        f"tags and date, following the listings' next links) into the feed {home / 'shop.csv'}"
                    )
                    scrape_id = producer.submit(_shop_scrape(ScrapeSpec, site.url, home / "shop.csv"))
                    finish(ctx, scrape_id, as_json=False, timeout=None, show_failed=False, quiet=as_json)
                    docs["scrape"] = _with_failures(ctx, scrape_id)
        finally:
            render.err.print("[bold]6/6[/] stopping workers and Redis ...")
            cluster.stop()
    states = [doc["state"] for doc in docs.values()]
    state = "succeeded" if all(s == "succeeded" for s in states) else "failed"
    if as_json:
        click.echo(json.dumps({"state": state, "jobs": docs}, indent=2, default=str))
    render.err.print(f"demo finished ({state}): Redis and workers stopped; outputs in {settings.outputs}")
    return 0 if state == "succeeded" else 1


def _shop_scrape(spec_class: Any, site_url: str, feed: Path) -> Any:
    """The shop's products as a Scrapy spider with an item and a CSV feed export would take them.

    Listings repeat the previous page's first product as "featured": the link is
    the unique key, so each product is one row and the repeats count as duplicates.
    """
    return spec_class.build(
        seeds=[site_url + "/shop/"],
        item="css:div.product",
        fields=(
            "name=css:h2.name a::text",
            "link=css:h2.name a::attr(href)",
            r"price=css:.price::text|re:[\d,]+\.\d+|number",
            "tags[]=css:ul.tags li::text",
            "date=css:time::attr(datetime)",
        ),
        follow="css:a.next",
        unique=("link",),
        feed=feed,
    )


def _with_failures(ctx: CliContext, job_id: str) -> dict[str, Any]:
    doc = job_document(ctx.ledger, job_id)
    doc["failed_items"] = [r.to_json() for r in ctx.ledger.results(job_id, failed_only=True)]
    return doc


COMMANDS = (demo,)
