"""The demo image set: reproducible, varied, cached, and broken in exactly the documented ways."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.core.errors import ImageError
from pipeline.core.imaging import TransformPlan, transform_image
from pipeline.demo import images
from pipeline.demo.images import DemoSet, generate_demo_images

SMALL = 30  # enough for every special case (exif, animated, alpha, each format) to appear


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoSet:
    return generate_demo_images(tmp_path_factory.mktemp("demo") / "set", count=SMALL)


def _on_disk(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() and p.name != images.MARKER}


def test_the_same_seed_writes_identical_bytes_in_two_directories(tmp_path: Path) -> None:
    first = generate_demo_images(tmp_path / "a", count=SMALL, seed=11)
    second = generate_demo_images(tmp_path / "b", count=SMALL, seed=11)
    assert [f.relative_to(first.root) for f in first.files] == [f.relative_to(second.root) for f in second.files]
    for a, b in zip(first.files, second.files, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_a_different_seed_draws_different_pictures(tmp_path: Path) -> None:
    first = generate_demo_images(tmp_path / "a", count=8, seed=1)
    second = generate_demo_images(tmp_path / "b", count=8, seed=2)
    assert {f.read_bytes() for f in first.healthy}.isdisjoint(f.read_bytes() for f in second.healthy)


@pytest.mark.parametrize("count", [3, 4, 12, 41])
def test_count_includes_the_three_broken_files(tmp_path: Path, count: int) -> None:
    demo = generate_demo_images(tmp_path / "set", count=count)
    assert len(demo.files) == count
    assert list(demo.files) == sorted(demo.files)
    assert set(demo.files) == _on_disk(demo.root)
    assert len(demo.healthy) == count - 3
    assert {f.name for f in demo.files} >= set(demo.broken)


def test_a_count_below_the_broken_files_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 3"):
        generate_demo_images(tmp_path / "set", count=2)


def test_broken_files_carry_the_documented_reasons(demo: DemoSet) -> None:
    assert demo.broken == {
        "broken-truncated.jpg": "truncated",
        "broken-not-an-image.png": "not_an_image",
        "broken-pixel-bomb.png": "decompression_bomb",
    }


def _broken(demo: DemoSet, name: str) -> Path:
    return next(f for f in demo.files if f.name == name)


def test_the_truncated_jpeg_opens_but_fails_to_load_as_truncated(demo: DemoSet) -> None:
    with Image.open(_broken(demo, "broken-truncated.jpg")) as image:
        assert image.format == "JPEG"
        with pytest.raises(OSError, match="truncated"):
            image.load()


def test_the_html_saved_as_png_is_not_an_image(demo: DemoSet) -> None:
    path = _broken(demo, "broken-not-an-image.png")
    assert path.read_bytes().startswith(b"<!doctype html>")
    with pytest.raises(UnidentifiedImageError):
        Image.open(path)


def test_the_pixel_bomb_is_small_on_disk_but_declares_20000_pixels_square(
    demo: DemoSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _broken(demo, "broken-pixel-bomb.png")
    assert path.stat().st_size < 64 * 1024
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with Image.open(path) as image:
        assert image.size == (20000, 20000)
        assert image.format == "PNG"


def test_the_pipeline_transform_fails_each_broken_file_with_its_reason(demo: DemoSet) -> None:
    plan = TransformPlan(ops=()).to_json()
    for name, reason in demo.broken.items():
        with pytest.raises(ImageError) as caught:
            transform_image(_broken(demo, name).read_bytes(), plan)
        assert caught.value.reason == reason, name


def test_every_healthy_file_decodes_in_full(demo: DemoSet) -> None:
    for path in demo.healthy:
        with Image.open(path) as image:
            image.load()
            assert min(image.size) >= 240, path


def test_the_set_mixes_formats_modes_and_animation(demo: DemoSet) -> None:
    formats, modes, frames = set(), set(), []
    for path in demo.healthy:
        with Image.open(path) as image:
            formats.add(image.format)
            modes.add(image.mode)
            frames.append(getattr(image, "n_frames", 1))
    assert formats == {"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"}
    assert "RGBA" in modes
    assert frames.count(3) == 2


def test_exif_rotated_jpegs_come_out_portrait_once_auto_oriented(demo: DemoSet) -> None:
    seen = set()
    for path in demo.healthy:
        with Image.open(path) as image:
            orientation = image.getexif().get(0x0112)
            if orientation is None:
                continue
            seen.add(orientation)
            assert image.width > image.height
            upright = ImageOps.exif_transpose(image)
            assert upright.height > upright.width
    assert seen == {6, 8}


def test_files_spread_over_subfolders_with_stems_that_clash(demo: DemoSet) -> None:
    assert {f.parent.name for f in demo.files} == {"landscapes", "portraits", "misc"}
    assert (demo.root / "landscapes" / "photo-001.jpg") in demo.files
    assert (demo.root / "portraits" / "photo-001.jpg") in demo.files


def test_a_complete_marker_for_the_same_arguments_skips_regeneration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = generate_demo_images(tmp_path / "set", count=6)

    def explode(*args: object) -> bytes:
        raise AssertionError("regenerated although .complete matched")

    monkeypatch.setattr(images, "_encode", explode)
    monkeypatch.setattr(images, "pixel_bomb_png", explode)
    assert generate_demo_images(tmp_path / "set", count=6) == first


def test_other_arguments_regenerate_and_remove_the_old_files(tmp_path: Path) -> None:
    generate_demo_images(tmp_path / "set", count=12, seed=1)
    second = generate_demo_images(tmp_path / "set", count=8, seed=2)
    assert set(second.files) == _on_disk(second.root)
    assert '"seed": 2' in (second.root / images.MARKER).read_text()


def test_a_missing_file_invalidates_the_marker(tmp_path: Path) -> None:
    first = generate_demo_images(tmp_path / "set", count=6)
    original = first.healthy[0].read_bytes()
    first.healthy[0].unlink()
    again = generate_demo_images(tmp_path / "set", count=6)
    assert again == first
    assert again.healthy[0].read_bytes() == original


@pytest.mark.slow
def test_the_default_set_has_240_files_with_a_few_portraits(tmp_path: Path) -> None:
    demo = generate_demo_images(tmp_path / "set")
    assert len(demo.files) == 240
    portraits = [f for f in demo.files if f.parent.name == "portraits"]
    assert 10 <= len(portraits) <= 80
