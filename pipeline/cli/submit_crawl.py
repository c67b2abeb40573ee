"""`pipeline submit crawl SEEDS...`, and the crawl options other crawling kinds share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from pipeline.cli.context import CliContext
from pipeline.cli.submit_images import image_options
from pipeline.cli.submitting import follow_options, output_options, run, spec_option
from pipeline.kinds.crawl import CrawlSpec


def crawl_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Scope, limits, politeness, images and output: every crawling kind takes these."""
    for option in reversed((
        spec_option(CrawlSpec, "max_pages", type=click.IntRange(1)),
        spec_option(CrawlSpec, "max_depth", type=click.IntRange(0),
                    help="Link depth from the seeds (0 = seeds only)  [default: no limit]"),
        spec_option(CrawlSpec, "allow_domains", "--allow-domain", multiple=True,
                    help="Also follow links to this domain and its subdomains."),
        spec_option(CrawlSpec, "images", "--images", is_flag=True,
                    help="Process every image on the crawled pages with --ops."),
        image_options(prefix="With --images: "),
        spec_option(CrawlSpec, "concurrency", type=click.IntRange(1, 1024),
                    help="Requests in flight for the whole job, across all workers."),
        spec_option(CrawlSpec, "per_host", type=click.IntRange(1, 256),
                    help="Requests in flight per host, across all workers."),
        spec_option(CrawlSpec, "delay_s", "--delay", type=click.FloatRange(0, 3600),
                    help="Seconds between request starts on one host."),
        click.option("--ignore-robots", is_flag=True, help="Do not fetch or obey robots.txt (nor its Crawl-delay)."),
        spec_option(CrawlSpec, "user_agent", "--user-agent", metavar="UA",
                    help="User-Agent of the job's requests; its product token (before '/') picks the robots.txt "
                         "group  [default: $PIPELINE_USER_AGENT]"),
        spec_option(CrawlSpec, "autothrottle", "--autothrottle", is_flag=True,
                    help="Space requests to a host by its latency, backing off on 429/503 (Scrapy's AutoThrottle); "
                         "--delay and robots.txt Crawl-delay stay floors."),
        spec_option(CrawlSpec, "allow_private", "--allow-private", is_flag=True,
                    help="Let links and redirects reach loopback/private addresses (off: SSRF guard)."),
        output_options("Folder for pages.jsonl, images and the report [default: $PIPELINE_OUTPUT_ROOT or "
                       "$PIPELINE_HOME/outputs, then JOB].", "Pages per task [default: $PIPELINE_BATCH_SIZE]."),
    )):  # fmt: skip
        command = option(command)
    return command


def crawl_fields(ignore_robots: bool, **options: Any) -> dict[str, Any]:
    """The spec's fields from the options ``crawl_options`` adds."""
    return {**options, "robots": not ignore_robots}


@click.command("crawl")
@click.argument("seeds", nargs=-1, required=True)
@crawl_options
@follow_options
@click.pass_obj
def command(
    ctx: CliContext, /, seeds: tuple[str, ...], wait: bool, as_json: bool, timeout: float | None, **options: Any
) -> Any:
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
    spec = CrawlSpec.build(seeds=seeds, **crawl_fields(**options))
    return run(ctx, spec, wait=wait, as_json=as_json, timeout=timeout)
