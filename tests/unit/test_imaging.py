"""``transform_image``: what each op does to real (tiny) images, and how bad bytes fail."""

from __future__ import annotations

import io
import pickle
import random
import struct
from typing import Any

import pytest
from PIL import Image, PngImagePlugin
from PIL.JpegImagePlugin import JpegImageFile

import pipeline.core.imaging as imaging
from pipeline.core.errors import ImageError
from pipeline.core.imaging import TransformOutput, TransformPlan, transform_image
from pipeline.core.ops import parse_ops

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


@pytest.fixture(autouse=True)
def _restore_pillow_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a transform does to Pillow's global bomb limit is undone after each test."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def noise(size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> Image.Image:
    """A deterministic noisy image: compresses badly, so a cut lands in real data."""
    rng = random.Random(seed)
    bands = len(mode)
    return Image.frombytes(mode, size, bytes(rng.randrange(256) for _ in range(size[0] * size[1] * bands)))


def solid(size: tuple[int, int], colour: tuple[int, ...] = (120, 130, 140), mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, colour)


def plan(chain: str, fmt: str = "png", **extra: Any) -> dict[str, Any]:
    return TransformPlan(parse_ops(chain), format=fmt, **extra).to_json()


def run(data: bytes, chain: str = "", fmt: str = "png", **extra: Any) -> TransformOutput:
    return transform_image(data, plan(chain, fmt, **extra))


def decoded(output: TransformOutput) -> Image.Image:
    image = Image.open(io.BytesIO(output.data))
    image.load()
    return image


def failure(data: bytes, chain: str = "thumbnail:32", **extra: Any) -> ImageError:
    with pytest.raises(ImageError) as caught:
        run(data, chain, **extra)
    return caught.value


def pixels_2x1(left: tuple[int, int, int], right: tuple[int, int, int]) -> bytes:
    image = Image.new("RGB", (2, 1))
    image.putpixel((0, 0), left)
    image.putpixel((1, 0), right)
    return encode(image, "PNG")


# --- inputs -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jpeg_400x200() -> bytes:
    return encode(solid((400, 200)), "JPEG")


@pytest.fixture(scope="module")
def png_400x200() -> bytes:
    return encode(solid((400, 200)), "PNG")


INPUTS = {
    "jpeg": lambda: encode(solid((60, 40)), "JPEG"),
    "png-rgba": lambda: encode(solid((60, 40), (10, 20, 30, 128), "RGBA"), "PNG"),
    "gif": lambda: encode(solid((60, 40)).convert("P"), "GIF"),
    "webp": lambda: encode(solid((60, 40)), "WEBP"),
    "bmp": lambda: encode(solid((60, 40)), "BMP"),
    "tiff": lambda: encode(solid((60, 40)), "TIFF"),
    "grayscale-png": lambda: encode(solid((60, 40), (90,), "L"), "PNG"),
    "palette-png-with-transparency": lambda: encode(
        solid((60, 40), (0, 0, 0, 0), "RGBA").convert("P"), "PNG", transparency=0
    ),
}


@pytest.mark.parametrize("out_fmt", ["jpeg", "png", "webp"])
@pytest.mark.parametrize("source", sorted(INPUTS))
def test_every_accepted_input_converts_to_every_output_format(source: str, out_fmt: str) -> None:
    output = run(INPUTS[source](), "thumbnail:30", out_fmt)
    image = decoded(output)
    assert image.format == {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}[out_fmt]
    assert image.size == (30, 20) == (output.width, output.height)


def test_the_output_reports_what_was_learned_about_the_input(jpeg_400x200: bytes) -> None:
    output = run(jpeg_400x200, "thumbnail:100")
    assert (output.input_format, output.input_width, output.input_height) == ("jpeg", 400, 200)
    assert output.seconds >= 0


def test_the_plan_survives_its_json_round_trip() -> None:
    original = TransformPlan(parse_ops("resize:10x20:fill,blur:1.5"), format="webp", quality=70, max_pixels=9)
    assert TransformPlan.from_json(original.to_json()) == original


@pytest.mark.parametrize(("fmt", "extension"), [("jpeg", ".jpg"), ("png", ".png"), ("webp", ".webp")])
def test_the_plan_extension_matches_the_format(fmt: str, extension: str) -> None:
    assert TransformPlan((), format=fmt).extension == extension


# --- one op at a time --------------------------------------------------------------


def test_thumbnail_fits_inside_the_box_keeping_the_aspect_ratio(png_400x200: bytes) -> None:
    assert decoded(run(png_400x200, "thumbnail:100")).size == (100, 50)
    assert decoded(run(png_400x200, "thumbnail:300x50")).size == (100, 50)


def test_thumbnail_never_enlarges(png_400x200: bytes) -> None:
    assert decoded(run(png_400x200, "thumbnail:1000")).size == (400, 200)


def test_resize_fit_keeps_the_aspect_inside_the_box(png_400x200: bytes) -> None:
    assert decoded(run(png_400x200, "resize:100x100:fit")).size == (100, 50)


def test_resize_fit_may_enlarge(png_400x200: bytes) -> None:
    assert decoded(run(png_400x200, "resize:800x800")).size == (800, 400)


def test_resize_fill_gives_exactly_the_box(png_400x200: bytes) -> None:
    assert decoded(run(png_400x200, "resize:100x100:fill")).size == (100, 100)


def test_resize_force_stretches_to_exactly_the_box(png_400x200: bytes) -> None:
    assert decoded(run(png_400x200, "resize:30x90:force")).size == (30, 90)


def test_crop_takes_the_requested_size(png_400x200: bytes) -> None:
    assert decoded(run(png_400x200, "crop:100x50")).size == (100, 50)


def test_crop_is_centred() -> None:
    image = Image.new("RGB", (3, 1))
    for x, colour in enumerate((RED, GREEN, BLUE)):
        image.putpixel((x, 0), colour)
    assert decoded(run(encode(image, "PNG"), "crop:1x1")).getpixel((0, 0)) == GREEN


def test_crop_larger_than_the_image_keeps_the_whole_image(png_400x200: bytes) -> None:
    assert decoded(run(png_400x200, "crop:1000x1000")).size == (400, 200)


def test_grayscale_gives_a_single_band_image(png_400x200: bytes) -> None:
    assert decoded(run(png_400x200, "grayscale")).mode == "L"


def test_threshold_leaves_only_black_and_white() -> None:
    image = decoded(run(encode(noise((16, 16)), "PNG"), "threshold:128"))
    assert image.mode == "L"
    assert set(image.tobytes()) == {0, 255}


@pytest.mark.parametrize("chain", ["blur:2", "sharpen"])
def test_filters_keep_the_size(png_400x200: bytes, chain: str) -> None:
    assert decoded(run(png_400x200, chain)).size == (400, 200)


def test_rotate_90_swaps_the_sides(png_400x200: bytes) -> None:
    assert decoded(run(png_400x200, "rotate:90")).size == (200, 400)


def test_rotate_by_an_odd_angle_expands_the_canvas() -> None:
    image = decoded(run(encode(solid((100, 100)), "PNG"), "rotate:45"))
    assert image.width > 100
    assert image.height > 100


def test_rotate_90_is_counter_clockwise() -> None:
    rotated = decoded(run(pixels_2x1(RED, BLUE), "rotate:90"))
    assert rotated.size == (1, 2)
    assert [rotated.getpixel((0, 0)), rotated.getpixel((0, 1))] == [BLUE, RED]


def test_mirror_swaps_left_and_right() -> None:
    mirrored = decoded(run(pixels_2x1(RED, BLUE), "mirror"))
    assert [mirrored.getpixel((0, 0)), mirrored.getpixel((1, 0))] == [BLUE, RED]


def test_flip_swaps_top_and_bottom() -> None:
    flipped = decoded(run(pixels_2x1(RED, BLUE), "rotate:90,flip"))
    assert [flipped.getpixel((0, 0)), flipped.getpixel((0, 1))] == [RED, BLUE]


def test_flip_leaves_a_single_row_as_it_was() -> None:
    flipped = decoded(run(pixels_2x1(RED, BLUE), "flip"))
    assert [flipped.getpixel((0, 0)), flipped.getpixel((1, 0))] == [RED, BLUE]


def test_ops_apply_in_the_order_given(png_400x200: bytes) -> None:
    assert decoded(run(png_400x200, "crop:100x50,rotate:90")).size == (50, 100)
    assert decoded(run(png_400x200, "rotate:90,crop:100x50")).size == (100, 50)


# --- EXIF orientation ---------------------------------------------------------------


@pytest.fixture(scope="module")
def jpeg_rotated_by_exif() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    return encode(solid((40, 20)), "JPEG", exif=exif)


def test_exif_orientation_is_applied_by_default(jpeg_rotated_by_exif: bytes) -> None:
    assert decoded(run(jpeg_rotated_by_exif, "")).size == (20, 40)


def test_noexif_keeps_the_stored_orientation(jpeg_rotated_by_exif: bytes) -> None:
    assert decoded(run(jpeg_rotated_by_exif, "noexif")).size == (40, 20)


def test_exif_rotation_happens_before_the_thumbnail(jpeg_rotated_by_exif: bytes) -> None:
    assert decoded(run(jpeg_rotated_by_exif, "thumbnail:10")).size == (5, 10)


def rotated_by_xmp(fmt: str) -> bytes:
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description tiff:Orientation="6"/></x:xmpmeta>'
    if fmt != "PNG":
        return encode(solid((40, 20)), fmt, xmp=xmp)
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp.decode())
    return encode(solid((40, 20)), "PNG", pnginfo=info)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF", "MPO"])
def test_exif_orientation_is_applied_whatever_the_format_keeps_it(fmt: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    assert decoded(run(encode(solid((40, 20)), fmt, exif=exif), "")).size == (20, 40)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_an_xmp_orientation_is_applied_too(fmt: str) -> None:
    assert decoded(run(rotated_by_xmp(fmt), "")).size == (20, 40)


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "BMP", "JPEG"])
def test_an_image_without_orientation_metadata_keeps_its_orientation(fmt: str) -> None:
    image = solid((40, 20)) if fmt != "GIF" else solid((40, 20)).convert("P")
    assert decoded(run(encode(image, fmt), "")).size == (40, 20)


# --- output encoding ----------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "pil_format"), [("jpeg", "JPEG"), ("png", "PNG"), ("webp", "WEBP")])
def test_the_output_is_encoded_in_the_requested_format(png_400x200: bytes, fmt: str, pil_format: str) -> None:
    assert decoded(run(png_400x200, "thumbnail:50", fmt)).format == pil_format


def test_jpeg_output_from_a_transparent_image_has_a_white_background() -> None:
    transparent = encode(Image.new("RGBA", (8, 8), (255, 0, 0, 0)), "PNG")
    image = decoded(run(transparent, "", "jpeg"))
    assert image.mode == "RGB"
    assert min(image.tobytes()) > 245  # every band of every pixel is (near) white


def test_png_output_keeps_the_alpha_channel() -> None:
    half = encode(Image.new("RGBA", (8, 8), (255, 0, 0, 128)), "PNG")
    image = decoded(run(half, "", "png"))
    assert image.mode == "RGBA"
    assert set(image.getchannel("A").tobytes()) == {128}


def test_quality_changes_the_jpeg_size() -> None:
    data = encode(noise((64, 64)), "PNG")
    assert len(run(data, "", "jpeg", quality=20).data) < len(run(data, "", "jpeg", quality=95).data)


# --- the JPEG draft shortcut --------------------------------------------------------


def without_draft(monkeypatch: pytest.MonkeyPatch, data: bytes, chain: str) -> TransformOutput:
    with monkeypatch.context() as patch:
        patch.setattr(imaging, "_draft", lambda image, ops: None)
        return run(data, chain, "jpeg")


def test_the_draft_shortcut_decodes_a_large_jpeg_at_reduced_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    drafted: list[tuple[int, int]] = []
    original = JpegImageFile.draft

    def spy(self: JpegImageFile, mode: str | None, size: tuple[int, int] | None) -> Any:
        result = original(self, mode, size)
        drafted.append(self.size)
        return result

    monkeypatch.setattr(JpegImageFile, "draft", spy)
    output = run(encode(solid((2048, 1536)), "JPEG"), "thumbnail:64", "jpeg")
    assert (output.width, output.height) == (64, 48)
    assert drafted
    assert drafted[0] == (256, 192)


@pytest.mark.parametrize(
    ("size", "chain"),
    [
        ((2048, 1536), "thumbnail:64"),
        ((1600, 1200), "resize:64x64:fill"),
        # Sizes that are not a multiple of the DCT scale: the draft must not change the result.
        ((2673, 2141), "thumbnail:168"),
        ((1870, 1394), "thumbnail:164x75"),
        ((1433, 1991), "resize:74x141"),
        ((1281, 1430), "thumbnail:104"),
    ],
)
def test_the_draft_shortcut_gives_the_same_size_as_a_full_decode(
    monkeypatch: pytest.MonkeyPatch, size: tuple[int, int], chain: str
) -> None:
    data = encode(solid(size), "JPEG")
    with_draft = run(data, chain, "jpeg")
    full = without_draft(monkeypatch, data, chain)
    assert (with_draft.width, with_draft.height) == (full.width, full.height)
    assert decoded(with_draft).size == decoded(full).size


def test_the_draft_shortcut_respects_an_exif_rotation(monkeypatch: pytest.MonkeyPatch) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(solid((1600, 800)), "JPEG", exif=exif)
    assert decoded(run(data, "thumbnail:64", "jpeg")).size == (32, 64)
    assert without_draft(monkeypatch, data, "thumbnail:64").height == 64


# --- failures -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def noisy_jpeg() -> bytes:
    return encode(noise((64, 48)), "JPEG")


def test_random_bytes_are_not_an_image() -> None:
    error = failure(bytes(random.Random(7).randrange(256) for _ in range(2048)))
    assert error.reason == "not_an_image"


def test_an_empty_body_is_not_an_image() -> None:
    assert failure(b"").reason == "not_an_image"


def test_html_served_as_an_image_is_not_an_image() -> None:
    assert failure(b"<!doctype html><html><body>404</body></html>").reason == "not_an_image"


def test_a_jpeg_cut_in_half_is_truncated(noisy_jpeg: bytes) -> None:
    error = failure(noisy_jpeg[: len(noisy_jpeg) // 2])
    assert error.reason == "truncated"
    assert error.detail


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(lambda data: data[:20], id="inside-the-header"),
        pytest.param(lambda data: data[: data.index(b"\xff\xda")], id="just-before-the-scan"),
        pytest.param(lambda data: data[: data.index(b"\xff\xda") + 4], id="inside-the-scan-header"),
        pytest.param(lambda data: data[: len(data) // 2], id="in-the-middle"),
        pytest.param(lambda data: data[:-2], id="only-the-end-marker-missing"),
    ],
)
def test_a_jpeg_cut_anywhere_is_reported_as_truncated(noisy_jpeg: bytes, cut: Any) -> None:
    assert failure(cut(noisy_jpeg)).reason == "truncated"


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "WEBP", "BMP", "TIFF"])
def test_other_formats_cut_in_half_are_truncated(fmt: str) -> None:
    image = noise((48, 32)) if fmt != "GIF" else noise((48, 32)).convert("P")
    data = encode(image, fmt)
    assert failure(data[: len(data) // 2]).reason == "truncated"


def test_a_complete_file_with_an_unreadable_frame_is_corrupt_and_raises_only_image_error() -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "blue")]
    data = bytearray(encode(frames[0], "TIFF", save_all=True, append_images=frames[1:]))
    # Rename the second frame's ImageWidth tag (256) so that frame has no dimensions.
    first_ifd = struct.unpack("<I", data[4:8])[0]
    count = struct.unpack("<H", data[first_ifd : first_ifd + 2])[0]
    second_ifd = struct.unpack("<I", data[first_ifd + 2 + 12 * count : first_ifd + 6 + 12 * count])[0]
    for index in range(struct.unpack("<H", data[second_ifd : second_ifd + 2])[0]):
        entry = second_ifd + 2 + 12 * index
        if struct.unpack("<H", data[entry : entry + 2])[0] == 256:
            data[entry : entry + 2] = struct.pack("<H", 0x9999)
    assert failure(bytes(data)).reason == "corrupt_image"


def test_an_image_over_max_pixels_is_a_decompression_bomb() -> None:
    error = failure(encode(solid((20, 20)), "PNG"), max_pixels=100)
    assert error.reason == "decompression_bomb"
    assert "100" in error.detail


def test_an_image_at_exactly_max_pixels_is_fine() -> None:
    assert run(encode(solid((10, 10)), "PNG"), "", max_pixels=100).width == 10


def test_an_animation_with_too_many_frames_is_a_decompression_bomb() -> None:
    frames = [Image.new("RGB", (5, 5), (10 * index, 0, 0)) for index in range(20)]  # 20 x 25 px > 4 x 100
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 20
    assert failure(data, max_pixels=100).reason == "decompression_bomb"


@pytest.mark.parametrize("side", [11, 15, 40], ids=["just-over-the-cap", "over-the-cap", "over-twice-the-cap"])
def test_any_image_over_the_cap_is_a_decompression_bomb(side: int) -> None:
    assert failure(encode(solid((side, side)), "PNG"), max_pixels=100).reason == "decompression_bomb"


@pytest.mark.parametrize("fmt", ["ICO", "PCX", "TGA", "PPM"])
def test_a_format_outside_the_allowlist_is_unsupported(fmt: str) -> None:
    error = failure(encode(solid((16, 16)), fmt))
    assert error.reason == "unsupported_format"
    assert fmt in error.detail


@pytest.mark.parametrize(
    "error",
    [ImageError("truncated", "image file is truncated (3 bytes not processed)"), ImageError()],
)
def test_an_image_error_survives_pickling(error: ImageError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is ImageError
    assert (copy.reason, copy.detail, copy.message) == (error.reason, error.detail, error.message)


def test_a_raised_image_error_survives_the_process_pool_pipe(noisy_jpeg: bytes) -> None:
    error = failure(noisy_jpeg[:100])
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.reason, copy.detail) == (error.reason, error.detail) == ("truncated", error.detail)


def test_an_iphone_heic_photo_is_decoded() -> None:
    data = encode(Image.new("RGB", (64, 48), (200, 30, 40)), "HEIF")
    assert data[4:12] == b"ftypheic"
    out = run(data, "thumbnail:32", "png")
    assert (out.input_format, out.input_width, out.input_height) == ("heif", 64, 48)
    image = decoded(out)
    assert image.size == (32, 24)
    red, green, blue = image.convert("RGB").getpixel((16, 12))
    assert red > 150 and green < 90 and blue < 90


def test_a_broken_heic_file_is_corrupt_not_silently_skipped() -> None:
    heic_header = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
    assert failure(heic_header).reason == "corrupt_image"


def test_a_jpeg_xl_is_an_unsupported_format_not_a_non_image() -> None:
    assert failure(b"\xff\x0a" + bytes(64)).reason == "unsupported_format"


SVG = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20" viewBox="0 0 40 20">'
    b'<rect width="40" height="20" fill="#0000ff"/><circle cx="20" cy="10" r="8" fill="#ff0000"/></svg>'
)


def test_an_svg_is_rasterised_at_the_size_the_chain_asks_for_not_upscaled_from_its_own() -> None:
    out = run(SVG, "thumbnail:400", "png")
    assert (out.input_format, out.input_width, out.input_height) == ("svg", 40, 20)
    image = decoded(out)
    assert image.size == (400, 200)
    assert image.convert("RGB").getpixel((200, 100))[0] > 200  # the circle, sharp at the centre
    assert image.convert("RGB").getpixel((5, 5))[2] > 200  # the blue background


def test_an_svg_without_a_size_op_keeps_its_own_size_and_a_huge_one_fits_the_pixel_cap() -> None:
    assert decoded(run(SVG, "grayscale", "png")).size == (40, 20)
    huge = SVG.replace(b'width="40" height="20"', b'width="400000" height="200000"')
    assert decoded(run(huge, "grayscale", "png", max_pixels=20_000)).size == (200, 100)


def test_an_svg_filled_into_a_box_covers_it_before_the_crop() -> None:
    assert decoded(run(SVG, "resize:30x30:fill", "png")).size == (30, 30)


def test_an_svg_never_reads_a_file_of_the_worker(tmp_path: Any) -> None:
    secret = tmp_path / "secret.png"
    Image.new("RGB", (20, 20), (0, 255, 0)).save(secret)
    hostile = (
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="20" '
        f'height="20"><image href="{secret}" width="20" height="20"/>'
        f'<image xlink:href="file://{secret}" width="20" height="20"/></svg>'
    ).encode()
    image = decoded(run(hostile, "", "png")).convert("RGBA")
    assert image.getpixel((10, 10)) == (0, 0, 0, 0), "the worker's file must not show through"


def test_an_svg_with_an_entity_bomb_or_bad_xml_fails_as_an_item() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&b;</text></svg>'
    )
    assert failure(bomb, "").reason == "corrupt_image"  # entities are never expanded: one failed item
    assert failure(b'<svg xmlns="http://www.w3.org/2000/svg"><rect', "").reason == "corrupt_image"


def test_a_gzipped_svg_is_rasterised_and_a_gzip_bomb_is_refused() -> None:
    import gzip

    assert decoded(run(gzip.compress(SVG), "thumbnail:80", "png")).size == (80, 40)
    padding = b"<!--" + b" " * (80 * 2**20) + b"-->"
    assert failure(gzip.compress(SVG[:-6] + padding + b"</svg>"), "").reason == "decompression_bomb"


def test_avif_photos_are_accepted() -> None:
    data = encode(noise((64, 48)), "AVIF")
    assert decoded(run(data, "thumbnail:32", "jpeg")).size == (32, 24)
