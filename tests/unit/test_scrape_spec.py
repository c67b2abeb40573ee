"""A scrape spec as `schedule add NAME ... -- scrape ...` stores it: self-contained and checked by the submit parser."""

from __future__ import annotations

from pathlib import Path

from pipeline.cli.submit import spec_from_args
from pipeline.config import Settings
from pipeline.kinds import spec_from_json
from pipeline.kinds.scrape import ScrapeSpec


def test_a_scheduled_scrape_keeps_its_spec_files_text_and_an_absolute_feed(tmp_path: Path) -> None:
    spec_file = tmp_path / "shop.toml"
    spec_file.write_text('item = "css:div.product"\n[fields]\nname = "css:h2::text"\n', encoding="utf-8")
    settings = Settings.load(home=tmp_path / "home")
    argv = ["scrape", "http://shop.test/", "--spec", str(spec_file), "--field", "price=css:.price::text|float",
            "-o", "feeds/products.csv", "--max-pages", "50"]  # fmt: skip
    spec = spec_from_args(argv, settings, cwd=tmp_path)
    assert isinstance(spec, ScrapeSpec)
    spec_file.unlink()  # a schedule fires long after: it must not need the file
    again = spec_from_json(spec.model_dump(mode="json"))
    assert again == spec
    assert spec.feed == tmp_path / "feeds/products.csv"
    extraction = again.extraction()
    assert [f.name for f in extraction.fields] == ["name", "price"]
    assert extraction.item is not None and extraction.item.text() == "css:div.product"
    assert spec.describe().startswith("scrape http://shop.test/ --max-pages=50")
