"""The ``--ops`` chain: what parses, what it becomes, and how bad input is refused."""

from __future__ import annotations

import json

import pytest

from pipeline.core.errors import OpSpecError, UsageError
from pipeline.core.ops import OPS, Op, parse_format, parse_ops


def without_exif(chain: str) -> tuple[Op, ...]:
    ops = parse_ops(chain)
    assert ops[0] == Op("exif")
    return ops[1:]


@pytest.mark.parametrize(
    ("chain", "expected"),
    [
        ("thumbnail:256", Op("thumbnail", (256, 256))),
        ("thumbnail:320x200", Op("thumbnail", (320, 200))),
        ("resize:640x480", Op("resize", (640, 480, "fit"))),
        ("resize:640x480:fit", Op("resize", (640, 480, "fit"))),
        ("resize:640x480:fill", Op("resize", (640, 480, "fill"))),
        ("resize:640x480:force", Op("resize", (640, 480, "force"))),
        ("crop:100x50", Op("crop", (100, 50))),
        ("grayscale", Op("grayscale")),
        ("threshold:128", Op("threshold", (128,))),
        ("threshold:0", Op("threshold", (0,))),
        ("threshold:255", Op("threshold", (255,))),
        ("blur:2.5", Op("blur", (2.5,))),
        ("blur:0", Op("blur", (0.0,))),
        ("sharpen", Op("sharpen")),
        ("rotate:90", Op("rotate", (90.0,))),
        ("rotate:-45.5", Op("rotate", (-45.5,))),
        ("flip", Op("flip")),
        ("mirror", Op("mirror")),
        ("plugin:sepia", Op("plugin", ("sepia",))),
        ("plugin:frame:8:red", Op("plugin", ("frame", "8", "red"))),
    ],
)
def test_every_op_parses_with_valid_arguments(chain: str, expected: Op) -> None:
    assert without_exif(chain) == (expected,)


def test_every_registered_op_is_covered_by_the_parse_examples() -> None:
    assert set(OPS) == {
        "exif", "noexif", "thumbnail", "resize", "crop", "grayscale",
        "threshold", "blur", "sharpen", "rotate", "flip", "mirror", "plugin",
    }  # fmt: skip


def test_a_chain_keeps_the_order_it_was_given_in() -> None:
    ops = without_exif("grayscale,thumbnail:64,mirror")
    assert [op.name for op in ops] == ["grayscale", "thumbnail", "mirror"]


def test_op_names_are_case_and_space_insensitive() -> None:
    assert without_exif(" Thumbnail : 64 , GRAYSCALE ") == (Op("thumbnail", (64, 64)), Op("grayscale"))


def test_empty_parts_of_a_chain_are_ignored() -> None:
    assert without_exif("grayscale,,mirror,") == (Op("grayscale"), Op("mirror"))


def test_exif_is_prepended_by_default() -> None:
    assert parse_ops("thumbnail:64")[0] == Op("exif")


def test_an_empty_chain_still_auto_orients() -> None:
    assert parse_ops("") == (Op("exif"),)


def test_an_explicit_exif_is_kept_where_it_was_given_and_not_doubled() -> None:
    ops = parse_ops("thumbnail:64,exif")
    assert [op.name for op in ops] == ["thumbnail", "exif"]


def test_noexif_removes_the_auto_orient_step() -> None:
    assert parse_ops("noexif,thumbnail:64") == (Op("thumbnail", (64, 64)),)


def test_noexif_wins_over_an_explicit_exif() -> None:
    assert parse_ops("exif,grayscale,noexif") == (Op("grayscale"),)


def test_a_bad_op_lists_the_valid_ops() -> None:
    with pytest.raises(OpSpecError) as caught:
        parse_ops("thumbnial:64")
    message = caught.value.message
    assert "unknown op 'thumbnial'" in message
    for name in OPS:
        assert name in message


def test_op_spec_errors_are_usage_errors_with_exit_code_2() -> None:
    with pytest.raises(UsageError) as caught:
        parse_ops("nope")
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("chain", "fragment"),
    [
        ("thumbnail:abc", "size must be W or WxH"),
        ("thumbnail:64x", "size must be W or WxH"),
        ("thumbnail:-64", "size must be W or WxH"),
        ("thumbnail:123456", "size must be W or WxH"),
        ("thumbnail:0", "between 1 and 20000"),
        ("thumbnail:20001", "between 1 and 20000"),
        ("thumbnail:64x0", "between 1 and 20000"),
        ("resize:640", "needs WxH"),
        ("crop:100", "needs WxH"),
        ("resize:0x10", "between 1 and 20000"),
    ],
)
def test_a_bad_size_is_refused_with_the_rule_and_the_bad_value(chain: str, fragment: str) -> None:
    with pytest.raises(OpSpecError) as caught:
        parse_ops(chain)
    assert fragment in caught.value.message
    assert repr(chain.split(":", 1)[1]) in caught.value.message


def test_a_bad_resize_mode_lists_the_valid_modes() -> None:
    with pytest.raises(OpSpecError, match=r"fit, fill, force.*'stretch'"):
        parse_ops("resize:10x10:stretch")


@pytest.mark.parametrize(
    ("chain", "fragment"),
    [
        ("threshold:256", "between 0 and 255"),
        ("threshold:-1", "between 0 and 255"),
        ("blur:101", "between 0 and 100"),
        ("blur:-0.5", "between 0 and 100"),
        ("rotate:361", "between -360 and 360"),
        ("rotate:-400", "between -360 and 360"),
        ("rotate:nan", "between -360 and 360"),
        ("blur:inf", "between 0 and 100"),
    ],
)
def test_an_out_of_range_number_is_refused_with_the_range(chain: str, fragment: str) -> None:
    with pytest.raises(OpSpecError, match=fragment):
        parse_ops(chain)


@pytest.mark.parametrize("chain", ["threshold:high", "blur:", "rotate:ninety"])
def test_a_non_number_is_refused_as_not_a_number(chain: str) -> None:
    with pytest.raises(OpSpecError, match="expected a number"):
        parse_ops(chain)


@pytest.mark.parametrize(
    ("chain", "fragment"),
    [
        ("thumbnail", "thumbnail needs one size"),
        ("thumbnail:64:64", "thumbnail needs one size"),
        ("resize", "resize needs"),
        ("resize:10x10:fit:extra", "resize needs"),
        ("crop", "crop needs"),
        ("crop:10x10:10", "crop needs"),
        ("threshold", "threshold needs one value"),
        ("blur:1:2", "blur needs one value"),
        ("rotate", "rotate needs one value"),
        ("grayscale:1", "grayscale takes no arguments"),
        ("flip:x", "flip takes no arguments"),
        ("exif:on", "exif takes no arguments"),
    ],
)
def test_a_wrong_number_of_arguments_is_refused(chain: str, fragment: str) -> None:
    with pytest.raises(OpSpecError, match=fragment):
        parse_ops(chain)


@pytest.mark.parametrize(
    ("given", "expected"),
    [("jpg", "jpeg"), ("JPG", "jpeg"), ("jpeg", "jpeg"), ("JPEG", "jpeg"), ("png", "png"),
     (" PNG ", "png"), ("webp", "webp"), ("WebP", "webp")],
)  # fmt: skip
def test_parse_format_accepts_jpeg_png_and_webp_in_any_spelling(given: str, expected: str) -> None:
    assert parse_format(given) == expected


@pytest.mark.parametrize("given", ["gif", "bmp", "tiff", "", "jpe g"])
def test_parse_format_refuses_other_formats_and_names_the_choices(given: str) -> None:
    with pytest.raises(OpSpecError) as caught:
        parse_format(given)
    assert "jpeg, png, webp" in caught.value.message
    assert repr(given) in caught.value.message


def test_a_parsed_chain_survives_a_json_round_trip() -> None:
    ops = parse_ops("thumbnail:64x32,resize:10x10:fill,blur:1.5,rotate:90,threshold:7,mirror")
    wire = json.loads(json.dumps([op.to_json() for op in ops]))
    assert tuple(Op.from_json(raw) for raw in wire) == ops


def test_op_json_is_the_name_followed_by_its_arguments() -> None:
    assert Op("resize", (640, 480, "fill")).to_json() == ["resize", 640, 480, "fill"]


def test_op_str_is_the_chain_syntax() -> None:
    assert str(Op("resize", (640, 480, "fill"))) == "resize:640x480:fill"
    assert str(Op("thumbnail", (64, 32))) == "thumbnail:64x32"
    assert str(Op("grayscale")) == "grayscale"


def test_the_chain_shown_in_reports_parses_back_to_the_same_ops() -> None:
    ops = parse_ops("thumbnail:64,resize:10x20:force,crop:5x6,blur:1.5,rotate:-90,threshold:9,flip")
    shown = ",".join(str(op) for op in ops)  # what the producer stores as spec["ops"]
    assert parse_ops(shown) == ops


def test_a_fractional_threshold_is_refused_rather_than_truncated() -> None:
    with pytest.raises(OpSpecError, match="whole number"):
        parse_ops("threshold:12.7")
