"""Server-drawn charts: valid SVG, one named group per series, its points drawn, everything escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pipeline.monitor.svg import Line, Mark, line_chart, nice_ceiling, runs, ticks

NS = {"svg": "http://www.w3.org/2000/svg"}


def parse(text: str) -> ET.Element:
    return ET.fromstring(text)  # raises on anything that is not well-formed XML


def drawn_points(group: ET.Element) -> int:
    return sum(len(line.attrib["points"].split()) for line in group.findall("svg:polyline", NS))


def test_every_line_is_a_named_group_drawing_each_of_its_points() -> None:
    lines = [
        Line("core:a:0", "a #0", [(10.0, 1.0), (11.0, 2.0), (12.0, 3.0)], {"worker": "a", "core": "0"}),
        Line("core:a:1", "a #1", [(11.0, 5.0)], {"worker": "a", "core": "1"}),
    ]
    svg = parse(line_chart(lines, start=0.0, end=20.0, title="Items/s per worker core"))
    groups = {
        g.attrib["data-series"]: g for g in svg.iter("{http://www.w3.org/2000/svg}g") if "data-series" in g.attrib
    }
    assert set(groups) == {"core:a:0", "core:a:1"}
    assert groups["core:a:0"].attrib["data-worker"] == "a"
    assert groups["core:a:0"].attrib["data-points"] == "3"
    assert drawn_points(groups["core:a:0"]) == 3
    assert groups["core:a:1"].find("svg:circle", NS) is not None, "a single point still shows"


def test_points_further_apart_than_the_gap_are_not_joined() -> None:
    assert runs([(0.0, 1.0), (1.0, 1.0), (9.0, 1.0), (10.0, 1.0)]) == [
        [(0.0, 1.0), (1.0, 1.0)],
        [(9.0, 1.0), (10.0, 1.0)],
    ]


def test_names_from_workers_are_escaped_and_the_chart_stays_well_formed() -> None:
    hostile = '<script>alert("x")</script>&"'
    text = line_chart([Line("core:x", hostile, [(1.0, 1.0)], {"worker": hostile})], [Mark(1.0, hostile, "joined")],
                      start=0.0, end=2.0, title=hostile)  # fmt: skip
    svg = parse(text)
    assert "<script>" not in text
    assert svg.find("svg:title", NS) is not None and svg.find("svg:title", NS).text == hostile  # type: ignore[union-attr]


def test_markers_show_only_inside_the_window_with_their_kind() -> None:
    marks = [Mark(5.0, "a@host", "joined"), Mark(50.0, "b@host", "left"), Mark(-5.0, "c@host", "left")]
    svg = parse(line_chart([], marks, start=0.0, end=60.0, title="t"))
    shown = [(g.attrib["data-worker"], g.attrib["data-kind"]) for g in svg.iter("{http://www.w3.org/2000/svg}g")
             if g.attrib.get("class") == "marker"]  # fmt: skip
    assert shown == [("a@host", "joined"), ("b@host", "left")]


def test_an_empty_chart_says_why() -> None:
    assert "Waiting for workers" in line_chart([], start=0.0, end=60.0, title="t", empty="Waiting for workers")


def test_the_y_axis_ends_on_a_round_number_above_the_largest_value() -> None:
    assert nice_ceiling(0.0) == (1.0, 0.5)
    assert nice_ceiling(7.3) == (8.0, 2.0)
    assert nice_ceiling(181.0) == (200.0, 50.0)


def test_time_ticks_count_back_from_now_or_forward_from_a_jobs_start() -> None:
    assert [label for _, label in ticks(0.0, 900.0)][:3] == ["now", "\u22122 min", "\u22124 min"]
    assert ticks(95.0, 130.0, origin=100.0)[:3] == [(100.0, "0 s"), (105.0, "5 s"), (110.0, "10 s")]
    assert ticks(95.0, 130.0, origin=100.0)[-1] == (130.0, "30 s")
