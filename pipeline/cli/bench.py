"""`pipeline bench`: the benchmarks, from a source checkout (they are not part of the installed package)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

CHECKOUT = Path(__file__).resolve().parents[2]


@click.command("bench", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("what", default="all", metavar="[WHAT]")
@click.argument("options", nargs=-1, type=click.UNPROCESSED)
def bench(what: str, options: tuple[str, ...]) -> int:
    """Measure pipeline against raw baselines in the same run (not part of `make test`).

    \b
    WHAT is one of:
      images    image stage through the pipeline vs a raw multiprocessing.Pool
      batching  batch size 1 vs the default
      latency   one image, submit -> result, on a warm worker
      crawl     the demo site vs a raw aiohttp crawler and Scrapy
      tiny      20,000 tiny images vs Celery with one task per item
      docs      crawl --images of a docs site (700 pages, 2,000 screenshots) vs raw and Scrapy
      scaling   1 vs 2 pool processes on the CPU stage
      memory    peak RSS of producer, worker and pool for 10x the items
      cache     the same job cold and warm (result cache)
      pools     each stage's own work sequential / threads / processes / asyncio,
                with an Amdahl fit and PNG plots (make bench installs matplotlib)
      all       everything but pools (default)

    WHAT is checked by the runner (`python -m benchmarks --help` lists every one).
    OPTIONS go to the runner: --repeat N (runs per variant, medians), --quick.
    Results: a table, benchmarks/results/*.json and, for pools, pools-<stage>.png.

    \b
      pipeline bench pools --repeat 5
      pipeline bench images --quick
    """
    if not (CHECKOUT / "benchmarks" / "__main__.py").is_file():
        raise click.UsageError(
            f"the benchmarks live in the source checkout, not in the installed package (looked in {CHECKOUT}); "
            "clone the repository and run `make bench` there"
        )
    return subprocess.call([sys.executable, "-m", "benchmarks", what, *options], cwd=CHECKOUT)


COMMANDS = (bench,)
