"""`pipeline submit scrape SEEDS...`: a crawl's options, plus the fields to extract and the feed to write."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pipeline.cli.context import CliContext
from pipeline.cli.submit_crawl import crawl_fields, crawl_options
from pipeline.cli.submitting import follow_options, run, spec_option
from pipeline.core.errors import UsageError
from pipeline.core.spec_file import parse_spec_file
from pipeline.kinds.scrape import ScrapeSpec, feed_format


def _spec_file(path: Path | None) -> tuple[str | None, str | None]:
    """The --spec file's text and name, checked here so an error names the file the user typed."""
    if path is None:
        return None, None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--spec {str(path)!r}: cannot read it: {exc}") from None
    parse_spec_file(text, f"--spec {path}")
    return text, str(path)


@click.command("scrape")
@click.argument("seeds", nargs=-1, required=True)
@click.option("--field", "fields", multiple=True, metavar="NAME=SELECTOR",
              help="A field of every item: NAME=css:EXPR or NAME=xpath:EXPR, the first match; NAME[]=... for every "
                   "match (a list). Processors follow: |re:PATTERN |join[:SEP] |int |float |number |default:V "
                   "|required.")  # fmt: skip
@click.option("--item", metavar="SELECTOR", help="Each match is one item, fields evaluated inside it "
              "[default: one item per page].")  # fmt: skip
@click.option("--follow", metavar="SELECTOR", help="Links to follow: elements (their href) or URLs "
              "[default: every in-scope link, as a crawl].")  # fmt: skip
@click.option("--unique", multiple=True, metavar="FIELD", help="Fields whose values identify an item: later items "
              "with the same values are counted as duplicates, not written.")  # fmt: skip
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.toml",
              help="Fields (with processors), item, follow, unique and extractor in a TOML file; "
                   "--field/--item/--follow override it.")  # fmt: skip
@click.option(
    "-o",
    "--feed",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="The feed: .jsonl, .json or .csv, by extension [default: OUTPUT/items.jsonl].",
)
@spec_option(ScrapeSpec, "extractor", "--extractor", metavar="MODULE:FUNCTION",
             help="Your function (url, html_text) -> list[dict], run on every page after the fields; an entry "
                  "point name (pipeline.extractors) or a dotted path the workers can import.")  # fmt: skip
@crawl_options
@follow_options
@click.pass_obj
def command(
    ctx: CliContext,
    /,
    seeds: tuple[str, ...],
    spec_path: Path | None,
    feed: Path | None,
    wait: bool,
    as_json: bool,
    timeout: float | None,
    **options: Any,
) -> Any:
    """Scrape from SEEDS: crawl as `submit crawl` does and extract your fields from every page into a feed.

    Items are ordered by page depth, then page URL, then position on the page,
    whatever the number of workers; each carries `url` (its page). The report
    gives, per field, the fill rate, distinct and top values, and
    min/max/mean/sum when the values are numbers.

    \b
    Examples:
      pipeline submit scrape https://shop.example/ --item css:div.product \\
          --field name=css:h2::text --field 'price=css:.price::text|re:[\\d.]+|float' \\
          --field 'tags[]=css:.tags li::text' --follow css:a.next -o products.csv --wait
      pipeline submit scrape https://blog.example/ --spec articles.toml -o articles.jsonl
    """
    spec_toml, spec_name = _spec_file(spec_path)
    if feed is not None:
        feed_format(feed)  # the extension, before anything else
    spec = ScrapeSpec.build(seeds=seeds, spec_toml=spec_toml, spec_name=spec_name, feed=feed, **crawl_fields(**options))
    return run(ctx, spec, wait=wait, as_json=as_json, timeout=timeout)
