"""The pure parts of a scrape: fields and processors, the feed formats, and the field statistics."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import lxml.etree
import pytest

from pipeline.core import fieldstats
from pipeline.core.errors import UsageError
from pipeline.core.extract import Extraction, Select, parse_field, parse_number
from pipeline.core.fieldstats import FieldStats, ItemStats
from pipeline.core.spec_file import parse_spec_file
from pipeline.kinds.scrape_feed import feed_text

PAGE = """<html><head><base href="/shop/"></head><body>
<div class="p" data-sku="A1"><h2><a href="item/1.html"> Café, "Deluxe" </a></h2><span class="price">$1,234.50</span>
<ul><li>home</li><li> eco </li></ul><img src="../img/1.jpg"></div>
<div class="p" data-sku="A2"><h2><a href="item/2.html">Mug</a></h2><ul></ul></div>
<a class="next" href="list/2.html">next</a>
</body></html>"""
URL = "http://shop.test/shop/list/1.html"


def _items(*fields: str, item: str | None = "css:div.p", follow: str | None = None) -> Any:
    root = lxml.etree.fromstring(PAGE, lxml.etree.HTMLParser())
    spec = Extraction(tuple(parse_field(f) for f in fields), Select.parse(item, "--item") if item else None,
                      Select.parse(follow, "--follow") if follow else None)  # fmt: skip
    return spec.items(root, URL)


def test_a_field_takes_the_first_match_stripped_and_a_list_field_every_match() -> None:
    found = _items("name=css:h2 a::text", "tags[]=css:li::text").items
    assert found == [
        {"url": URL, "name": 'Café, "Deluxe"', "tags": ["home", "eco"]},
        {"url": URL, "name": "Mug", "tags": []},
    ]


def test_href_and_src_values_are_made_absolute_against_the_base_href() -> None:
    found = _items("link=css:h2 a::attr(href)", "image=xpath:.//img/@src").items
    assert found[0]["link"] == "http://shop.test/shop/item/1.html"
    assert found[0]["image"] == "http://shop.test/img/1.jpg"
    assert found[1]["image"] is None


def test_processors_take_a_regex_group_then_parse_a_number_then_join() -> None:
    found = _items(r"price=css:.price::text|re:\$([\d,.]+)|float", "tags[]=css:li::text|join:; ").items
    assert found[0]["price"] == 1234.5 and found[1]["price"] is None
    assert found[0]["tags"] == "home; eco"


def test_a_default_fills_a_missing_value_and_required_leaves_the_item_out_counted_by_field() -> None:
    page = _items("name=css:h2 a::text", "price=css:.price::text|required", "stock=css:.stock::text|default:0")
    assert [item["name"] for item in page.items] == ['Café, "Deluxe"']
    assert page.items[0]["stock"] == "0"
    assert page.incomplete == {"price": 1}


def test_without_an_item_selector_the_page_is_one_item() -> None:
    assert _items("sku[]=xpath://div/@data-sku", item=None).items == [{"url": URL, "sku": ["A1", "A2"]}]


def test_follow_takes_the_href_of_matched_elements_absolute() -> None:
    assert _items("n=css:h2::text", follow="css:a.next").follow == ["http://shop.test/shop/list/2.html"]


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [("1,234", "int", 1234), ("12.50", "float", 12.5), ("12.50", "int", None), ("7", "number", 7),
     ("7.25", "number", 7.25), ("abc", "number", None), (" -3 ", "int", -3), ("1e3", "float", 1000.0)],
)  # fmt: skip
def test_numbers_parse_with_thousands_separators_and_refuse_words(text: str, kind: str, expected: Any) -> None:
    assert parse_number(text, kind) == expected


def test_a_pipe_inside_an_xpath_union_is_not_a_processor() -> None:
    spec = parse_field("t=xpath://h1/text() | //h2/text()|join")
    assert spec.select.expr == "//h1/text() | //h2/text()" and spec.join == " "


def test_a_spec_file_gives_fields_in_order_with_their_processors() -> None:
    parsed = parse_spec_file(
        'item = "css:div.p"\nunique = "sku"\n[fields]\nname = "css:h2 a::text"\n'
        '[fields.price]\nselector = "css:.price::text"\nre = \'([\\d,.]+)\'\nnumber = "float"\nrequired = true\n',
        "--spec s.toml",
    )
    assert [f.name for f in parsed["fields"]] == ["name", "price"]
    price = parsed["fields"][1]
    assert (price.pattern, price.number, price.required) == (r"([\d,.]+)", "float", True)
    assert parsed["unique"] == ["sku"]


def test_a_field_named_url_is_refused_as_every_item_has_one() -> None:
    with pytest.raises(UsageError, match="'url' is the page of every item"):
        parse_field("url=css:a::attr(href)")


ITEMS = [
    {"url": "http://a/1", "name": 'Comma, "quote"', "tags": ["x", "y"], "n": 3},
    {"url": "http://a/1", "name": "two\nlines", "tags": [], "n": None},
    {"url": "http://a/2", "name": "ünï", "tags": ["z"], "n": 1.5},
]


def _lines() -> Any:
    return ((json.dumps(item, ensure_ascii=False), item) for item in ITEMS)


def test_a_csv_feed_reads_back_with_its_header_and_awkward_values() -> None:
    text = "".join(feed_text("csv", _lines(), ["name", "tags", "n"]))
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert rows == [
        {"url": "http://a/1", "name": 'Comma, "quote"', "tags": "x,y", "n": "3"},
        {"url": "http://a/1", "name": "two\nlines", "tags": "", "n": ""},
        {"url": "http://a/2", "name": "ünï", "tags": "z", "n": "1.5"},
    ]


def test_a_json_feed_is_one_list_and_an_empty_one_is_empty() -> None:
    assert json.loads("".join(feed_text("json", _lines(), []))) == ITEMS
    assert json.loads("".join(feed_text("json", iter(()), []))) == []
    assert "".join(feed_text("csv", iter(()), ["a"])) == "url,a\r\n"


def test_a_jsonl_feed_is_a_line_per_item() -> None:
    assert [json.loads(line) for line in "".join(feed_text("jsonl", _lines(), [])).splitlines()] == ITEMS


def test_field_statistics_give_fill_rate_distinct_top_and_numbers() -> None:
    stats = ItemStats(["name", "tags", "n"])
    for item in ITEMS:
        stats.add(item)
    out = stats.to_json()
    assert out["name"]["fill_rate"] == 1.0 and out["name"]["distinct"] == 3
    assert out["tags"]["filled"] == 2 and out["tags"]["top"][0] == ["x", 1]
    assert out["n"]["numeric"] == {"min": 1.5, "max": 3, "mean": 2.25, "sum": 4.5}
    assert "numeric" not in out["name"]


def test_a_value_that_is_not_a_number_drops_the_numeric_summary() -> None:
    stats = FieldStats()
    for value in ("3", "4", "n/a"):
        stats.add(value)
    assert "numeric" not in stats.to_json()


def test_distinct_and_top_stay_bounded_and_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fieldstats, "DISTINCT_CAP", 100)
    monkeypatch.setattr(fieldstats, "TOP_CAP", 50)
    stats = FieldStats()
    for i in range(1000):
        stats.add("heavy" if i % 2 else f"v{i}")
    out = stats.to_json()
    assert (out["distinct"], out["distinct_exact"], out["top_exact"]) == (100, False, False)
    assert out["top"][0][0] == "heavy" and len(stats.top) <= 50


def test_the_printed_report_names_the_feed_incomplete_fields_and_each_fields_statistics() -> None:
    from pipeline.kinds.scrape import SCRAPE

    price = {"filled": 5, "fill_rate": 1.0, "distinct": 4, "distinct_exact": True, "top": [[2.5, 2]],
             "numeric": {"min": 1, "max": 3, "mean": 2.0, "sum": 10}}  # fmt: skip
    doc = {"pages": {"ok": 3, "failed": 0, "non_html": 0, "links_capped": 0}, "images": {"ok": 0, "failed": 0},
           "scrape": {"items": 5, "duplicates": 1, "incomplete": {"sku": 2}, "feed": "/tmp/f.csv",
                      "fields": {"price": price}}}  # fmt: skip
    rows = dict(SCRAPE.report_rows(doc))
    assert rows["scraped"] == "[green]5[/] items in /tmp/f.csv"
    assert "sku (2)" in rows["incomplete"] and rows["duplicates"].startswith("1")
    assert rows["  price"] == "100% filled; 4 distinct; min 1, max 3, mean 2, sum 10; top: 2.5 (2)"


def test_a_field_whose_values_are_all_different_says_so_instead_of_a_top_of_ones() -> None:
    from pipeline.kinds.scrape import field_line

    links = {"filled": 3, "fill_rate": 1.0, "distinct": 3, "distinct_exact": True,
             "top": [["http://shop.example/item/1.html", 1], ["http://shop.example/item/2.html", 1]]}  # fmt: skip
    assert field_line(links) == "100% filled; 3 distinct; every value once"


def test_long_top_values_are_cut_in_the_middle_so_their_ends_still_differ() -> None:
    from pipeline.kinds.scrape import field_line

    site = "http://127.0.0.1:35579/shop/item"
    urls = {"filled": 4, "fill_rate": 1.0, "distinct": 2, "distinct_exact": True,
            "top": [[f"{site}/10.html", 3], [f"{site}/11.html", 1]]}  # fmt: skip
    assert field_line(urls).endswith("top: http://127.0.0.…hop/item/10.html (3), http://127.0.0.…hop/item/11.html (1)")


def test_top_values_keep_their_type_so_a_number_is_not_its_string() -> None:
    stats = FieldStats()
    for value in (12, "12", 12, 2.5):
        stats.add(value)
    assert stats.to_json()["top"] == [[12, 2], ["12", 1], [2.5, 1]]
