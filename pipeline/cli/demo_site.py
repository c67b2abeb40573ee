"""`pipeline demo-site`: serve the generated demo website on loopback, to try crawls against by hand."""

from __future__ import annotations

import os
import signal
import time
from types import FrameType

import click

from pipeline.cli import render


class _Stop(Exception):
    """Raised from the SIGTERM/SIGINT handler (an explicit one: see ``pipeline.cli.cluster._Stop``)."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


@click.command("demo-site")
@click.option(
    "--port", default=0, type=click.IntRange(0, 65535), show_default=True, help="Port on 127.0.0.1; 0 picks a free one."
)
@click.option("--pages", default=300, show_default=True, type=click.IntRange(20, 1_000_000), help="Pages to generate.")
@click.option("--seed", default=11, show_default=True, type=int, help="Another seed, another (fixed) site.")
@click.option(
    "--shape",
    type=click.Choice(["demo", "docs"]),
    default="demo",
    show_default=True,
    help="demo: the crawler's obstacle course; docs: a documentation site of ~20 KB pages and "
    "~2,000 screenshots (use --pages 700; images are drawn on first request).",
)
def demo_site(port: int, pages: int, seed: int, shape: str) -> int:
    """Serve a deterministic generated website on 127.0.0.1 until Ctrl-C.

    Pages, shared images in four formats, broken links, redirects (a chain
    and a loop), a slow page, a robots.txt-disallowed section and an
    infinite calendar trap: the site the crawl demo, tests and benchmarks
    use. The URL is printed alone on stdout, for scripts; --port 0 picks a
    free port.

    \b
      pipeline demo-site --port 8080 &
      pipeline submit crawl http://127.0.0.1:8080/ --max-depth 6 --wait
    """
    from pipeline.demo.site import DemoSite

    site = DemoSite(pages=pages, seed=seed, port=port, shape=shape)
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            site.start()
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise click.BadParameter(f"cannot listen on 127.0.0.1:{port}: {reason}", param_hint="--port") from exc
        url = f"{site.url}/"
        shown = f"{pages} pages" + (", docs shape" if shape != "demo" else "")
        render.err.print(f"serving {url} ({shown}) - Ctrl-C to stop")
        click.echo(url)
        while True:
            time.sleep(1.0)
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        site.stop()
    return 0


COMMANDS = (demo_site,)
