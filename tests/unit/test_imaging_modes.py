"""Every pixel mode real files arrive in survives every op and every output format.

Regression: palette images (GIFs, many PNGs) failed `sharpen`/`blur` with
"cannot filter palette images" until modes were normalised after decoding.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from pipeline.core.imaging import TransformPlan, transform_image
from pipeline.core.ops import parse_ops

MODES = {
    "P": ("GIF", {}),
    "P+transparency": ("PNG", {"transparency": 0}),
    "1": ("PNG", {}),
    "I;16": ("PNG", {}),
    "L": ("JPEG", {}),
    "LA": ("PNG", {}),
    "RGBA": ("WEBP", {}),
    "CMYK": ("TIFF", {}),
}


def _encoded(mode_name: str) -> bytes:
    fmt, info = MODES[mode_name]
    image = Image.new(mode_name.split("+")[0], (300, 200))
    out = io.BytesIO()
    image.save(out, fmt, **info)
    return out.getvalue()


@pytest.mark.parametrize("output", ["jpeg", "png", "webp"])
@pytest.mark.parametrize("mode_name", sorted(MODES))
def test_filters_and_encoders_accept_every_input_mode(mode_name: str, output: str) -> None:
    plan = TransformPlan(parse_ops("thumbnail:64,sharpen,blur:1,threshold:128,rotate:90"), output)
    result = transform_image(_encoded(mode_name), plan.to_json())
    with Image.open(io.BytesIO(result.data)) as produced:
        assert produced.format == {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}[output]
        assert produced.size == (43, 64)


def test_a_pixel_bomb_names_the_configured_cap_in_its_detail() -> None:
    from pipeline.core.errors import ImageError

    with pytest.raises(ImageError) as caught:
        transform_image(_encoded("L"), TransformPlan(parse_ops("grayscale"), max_pixels=1000).to_json())
    assert caught.value.reason == "decompression_bomb"
    assert "PIPELINE_MAX_PIXELS" in caught.value.detail


def test_a_transform_leaves_pillows_process_wide_pixel_cap_as_it_was() -> None:
    before = Image.MAX_IMAGE_PIXELS
    transform_image(_encoded("L"), TransformPlan(parse_ops("grayscale"), max_pixels=10**9).to_json())
    assert before == Image.MAX_IMAGE_PIXELS
