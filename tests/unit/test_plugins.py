"""``pipeline.plugins``: the user's own stages found by entry point or dotted path, and why not when not.

The example package (examples/pipeline-example-plugins, installed by `make test`)
provides the entry points: op ``sepia`` and ``frame``, extractor ``products``.
"""

from __future__ import annotations

import os.path
from pathlib import Path

import pytest

from pipeline import plugins
from pipeline.plugins import PluginError


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    plugins.load.cache_clear()


def test_an_installed_entry_point_loads_by_its_name() -> None:
    from pipeline_example_plugins.ops import sepia

    assert plugins.load("op", "sepia") is sepia


def test_installed_lists_the_entry_point_names_of_a_role() -> None:
    assert {"sepia", "frame"} <= set(plugins.installed("op"))
    assert "products" in plugins.installed("extractor")


def test_a_dotted_path_with_a_colon_names_module_and_attribute() -> None:
    assert plugins.load("op", "os.path:join") is os.path.join


def test_a_dotted_path_with_dots_only_finds_the_longest_importable_module() -> None:
    from pipeline_example_plugins.ops import frame

    assert plugins.load("op", "pipeline_example_plugins.ops.frame") is frame
    assert plugins.load("op", "os.path.join") is os.path.join


def test_a_dotted_path_may_reach_an_attribute_of_an_attribute() -> None:
    assert plugins.load("extractor", "pathlib:Path.home") == Path.home
    assert plugins.load("extractor", "pathlib.Path.home") == Path.home


def test_an_unknown_entry_point_name_is_refused_listing_the_installed_ones() -> None:
    with pytest.raises(PluginError, match=r"no op named 'nope' in entry points 'pipeline.ops' \(.*sepia.*\)"):
        plugins.load("op", "nope")


def test_a_missing_module_is_refused_naming_it() -> None:
    for ref in ("no_such_package_xyz.ops:sepia", "no_such_package_xyz.ops.sepia"):
        with pytest.raises(PluginError, match=r"cannot import 'no_such_package_xyz.ops'.*'no_such_package_xyz'"):
            plugins.load("op", ref)


def test_a_missing_attribute_is_refused_naming_the_module() -> None:
    with pytest.raises(PluginError, match=r"module 'pipeline_example_plugins.ops' has no 'nothing_here'"):
        plugins.load("op", "pipeline_example_plugins.ops:nothing_here")


def test_something_that_is_not_callable_is_refused() -> None:
    with pytest.raises(PluginError, match=r"is a tuple, not a function"):
        plugins.load("op", "pipeline_example_plugins.ops:SEPIA")


def test_a_module_that_fails_on_import_is_refused_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_plugin_mod.py").write_text("raise RuntimeError('needs a GPU')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match=r"cannot import 'broken_plugin_mod': RuntimeError: needs a GPU"):
        plugins.load("op", "broken_plugin_mod.op")


def test_importable_answers_none_or_the_one_line_reason() -> None:
    assert plugins.importable("op", "sepia") is None
    reason = plugins.importable("op", "nope")
    assert reason is not None and "no op named 'nope'" in reason and "\n" not in reason


def test_importable_finds_a_module_installed_after_a_failed_attempt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    assert plugins.importable("op", "late_plugin_mod:op") is not None
    (tmp_path / "late_plugin_mod.py").write_text("def op(image):\n    return image\n")
    assert plugins.importable("op", "late_plugin_mod:op") is None


def test_an_empty_name_is_refused() -> None:
    with pytest.raises(PluginError, match="empty op name"):
        plugins.load("op", " ")


def test_a_load_is_cached_per_process() -> None:
    plugins.load("op", "sepia")
    plugins.load("op", "sepia")
    assert plugins.load.cache_info().hits == 1


def test_the_example_extractor_loads_by_entry_point_and_extracts_products() -> None:
    extract = plugins.load("extractor", "products")
    page = (
        '<h1>Shop</h1><div class="product"><h2>Red &amp; mug</h2><span class="price">EUR 12,50</span></div>'
        '<div itemscope itemtype="https://schema.org/Product"><span itemprop="name">Cup</span>'
        '<meta itemprop="price" content="3.00"></div>'
    )
    assert extract("http://shop.test/", page) == [
        {"name": "Red & mug", "price_text": "EUR 12,50", "price": 12.5},
        {"name": "Cup", "price_text": "3.00", "price": 3.0},
    ]


def test_the_example_extractor_falls_back_to_headings_on_a_page_without_products() -> None:
    extract = plugins.load("extractor", "products")
    assert extract("http://site.test/", "<h1>Hello <b>world</b></h1><p>text</p><h2>Part two</h2>") == [
        {"heading": "Hello world", "level": 1},
        {"heading": "Part two", "level": 2},
    ]
