"""What a person reads at the end of a job (pipeline.cli.render)."""

from __future__ import annotations

from typing import Any

from pipeline.cli import render
from pipeline.kinds.crawl import off_site_images_hint, off_site_images_line


def crawl_doc(images_ok: int, *, ops: str | None = "thumbnail:128", pages_ok: int = 12) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "job_id": "20261123-000000-abcdef", "kind": "crawl", "state": "succeeded",
        "pages": {"ok": pages_ok, "failed": 0, "non_html": 0, "links_capped": 0, "links_beyond_depth": 0},
        "images": {"ok": images_ok, "failed": 0},
        "items": {"ok": pages_ok + images_ok, "failed": 0, "total": pages_ok + images_ok, "pending": 0},
        "failures": {}, "bytes_in": 0, "bytes_out": 0, "elapsed_s": 1.0, "items_per_s": 12.0,
        "timings": {}, "output_dir": "/tmp/out", "top_words": [], "cache_hits": 0,
    }  # fmt: skip
    if ops:
        doc["ops"], doc["format"] = ops, "webp"
    return doc


def test_a_crawl_with_images_that_found_none_says_why_and_what_to_do() -> None:
    hint = off_site_images_hint(crawl_doc(images_ok=0))
    assert hint is not None and "--allow-domain" in hint


def test_no_hint_when_images_were_found_or_not_asked_for_or_no_page_was_fetched() -> None:
    assert off_site_images_hint(crawl_doc(images_ok=3)) is None
    assert off_site_images_hint(crawl_doc(images_ok=0, ops=None)) is None
    assert off_site_images_hint(crawl_doc(images_ok=0, pages_ok=0)) is None


def test_the_report_prints_the_hint() -> None:
    with render.out.capture() as captured:
        render.report(crawl_doc(images_ok=0))
    assert "--allow-domain" in captured.get()


def test_the_hint_names_the_hosts_the_images_are_on() -> None:
    doc = crawl_doc(images_ok=0)
    doc["off_site_images"] = [["cdn.example.net", 40], ["img.example.org", 3]]
    hint = off_site_images_hint(doc)
    assert hint is not None
    assert "cdn.example.net, img.example.org" in hint and "--allow-domain cdn.example.net" in hint


def test_the_report_lists_off_site_image_hosts_with_their_counts() -> None:
    doc = crawl_doc(images_ok=5)
    doc["off_site_images"] = [[f"h{i}.test", 10 - i] for i in range(7)]
    with render.out.capture() as captured:
        render.report(doc)
    text = captured.get()
    assert "off-site images" in text and "h0.test (10)" in text and "h4.test (6)" in text
    assert "h5.test" not in text, "five hosts at most, then an ellipsis"


def test_no_off_site_line_for_a_crawl_without_images() -> None:
    doc = crawl_doc(images_ok=0, ops=None)
    doc["off_site_images"] = [["cdn.example.net", 4]]
    assert off_site_images_line(doc) is None


def test_counts_take_the_singular_for_one_and_the_plural_otherwise() -> None:
    assert render.counted(1, "output") == "1 output"
    assert render.counted(2, "output") == "2 outputs"
    assert render.counted(0, "process", "processes") == "0 processes"
    assert render.counted(1, "process", "processes") == "1 process"


def test_the_report_of_one_cache_hit_says_one_output(capsys: Any) -> None:
    doc = crawl_doc(images_ok=1)
    doc["cache_hits"] = 1
    render.report(doc)
    text = " ".join(capsys.readouterr().out.split())
    assert "1 output reused" in text
    assert "1 outputs" not in text


def test_the_workers_table_shows_task_threads_and_io_threads_as_workers_json_names_them(capsys: Any) -> None:
    worker = {"name": "w1", "host": "h", "pid": 1, "processes": 2, "concurrency": 4, "threads": 8, "queues": []}
    render.workers_table([worker])
    out = capsys.readouterr().out
    header = " ".join(out.split())
    assert "task threads" in header and "io threads" in header
    cells = [cell.strip() for cell in next(line for line in out.splitlines() if "w1" in line).split("│")]
    assert cells[4:7] == ["2", "4", "8"]  # procs, task threads (concurrency), io threads (threads)
