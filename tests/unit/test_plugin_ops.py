"""``plugin:NAME[:ARG...]`` in an op chain: parsed at submit, run by ``transform_image`` through a resolver.

The core imports no plugin: the caller hands ``transform_image`` a resolver (on a
worker, ``pipeline.plugins.load``); here the tests hand in their own functions.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from pipeline.core.errors import ImageError, OpSpecError
from pipeline.core.imaging import TransformPlan, transform_image
from pipeline.core.ops import Op, parse_ops, plugin_refs
from pipeline.kinds.crawl import CrawlSpec
from pipeline.kinds.images import ImagesSpec
from pipeline.plugins import PluginError, load


def png(size: tuple[int, int] = (40, 30), color: tuple[int, int, int] = (128, 128, 128)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def run(chain: str, resolver: Callable[[str], Callable[..., Any]] | None, data: bytes | None = None) -> Image.Image:
    plan = TransformPlan(parse_ops(chain), "png").to_json()
    made = transform_image(data or png(), plan, resolver)
    return Image.open(io.BytesIO(made.data))


def only(name: str, function: Callable[..., Any]) -> Callable[[str], Callable[..., Any]]:
    def resolve(ref: str) -> Callable[..., Any]:
        if ref != name:
            raise PluginError(f"no op named {ref!r}")
        return function

    return resolve


def test_a_plugin_op_parses_to_its_name_and_string_arguments() -> None:
    assert parse_ops("plugin:frame:12:black,grayscale") == (
        Op("exif"), Op("plugin", ("frame", "12", "black")), Op("grayscale")
    )  # fmt: skip
    assert str(Op("plugin", ("frame", "12", "black"))) == "plugin:frame:12:black"


def test_a_plugin_op_without_a_name_is_a_usage_error() -> None:
    with pytest.raises(OpSpecError, match=r"plugin needs a name"):
        parse_ops("plugin")


def test_plugin_refs_lists_each_plugin_of_a_chain_once() -> None:
    assert plugin_refs(parse_ops("plugin:sepia,thumbnail:64,plugin:frame:3,plugin:sepia")) == ["sepia", "frame"]


def test_an_image_spec_lists_its_plugin_ops_for_the_submit_check() -> None:
    assert ImagesSpec(sources=("x",), ops="plugin:sepia,plugin:a.b.c:1").plugins() == [("op", "sepia"), ("op", "a.b.c")]
    assert ImagesSpec(sources=("x",), ops="thumbnail:64").plugins() == []


def test_a_crawl_lists_plugin_ops_only_when_it_processes_images() -> None:
    assert CrawlSpec(seeds=("http://a.test/",), ops="plugin:sepia", images=True).plugins() == [("op", "sepia")]
    assert CrawlSpec(seeds=("http://a.test/",), ops="plugin:sepia").plugins() == []


def test_the_op_gets_the_image_so_far_and_its_arguments_as_strings() -> None:
    seen: list[tuple[tuple[int, int], tuple[str, ...]]] = []

    def record(image: Image.Image, *args: str) -> Image.Image:
        seen.append((image.size, args))
        return image.rotate(90, expand=True)

    out = run("thumbnail:20,plugin:turn:a:7", only("turn", record))
    assert seen == [((20, 15), ("a", "7"))]
    assert out.size == (15, 20)


def test_the_example_sepia_op_tones_every_pixel() -> None:
    out = run("plugin:sepia", lambda ref: load("op", ref), png(color=(128, 128, 128)))
    red, green, blue = out.getpixel((5, 5))  # type: ignore[misc]
    # 128 * (0.393 + 0.769 + 0.189), ... clipped to 255 and rounded by Pillow's matrix convert
    assert (red, green, blue) == pytest.approx((173, 154, 120), abs=1)


def test_an_op_that_raises_fails_the_item_as_op_error_with_its_message() -> None:
    def broken(image: Image.Image) -> Image.Image:
        raise ValueError("no faces found")

    with pytest.raises(ImageError) as caught:
        run("plugin:faces", only("faces", broken))
    assert caught.value.reason == "op_error"
    assert caught.value.detail == "plugin op 'faces' raised ValueError: no faces found"


def test_an_op_that_returns_no_image_fails_the_item() -> None:
    with pytest.raises(ImageError, match=r"op_error: plugin op 'none' returned a NoneType, not a PIL image"):
        run("plugin:none", only("none", lambda image: None))


def test_an_op_this_process_cannot_import_fails_the_item_as_plugin_unavailable() -> None:
    with pytest.raises(ImageError) as caught:
        run("plugin:missing", only("other", lambda image: image))
    assert caught.value.reason == "plugin_unavailable"
    assert "no op named 'missing'" in caught.value.detail


def test_without_a_resolver_a_plugin_op_fails_the_item() -> None:
    with pytest.raises(ImageError, match=r"plugin_unavailable"):
        run("plugin:sepia", None)
