"""Pillow transforms, run inside a process-pool child.

``transform_image`` is the only entry point: bytes and a JSON-able plan in, the
encoded output and what we learned about the input out. Everything that can go
wrong with untrusted bytes becomes an ``ImageError`` with a reason the report
can count; nothing else escapes.

A ``plugin`` op (the user's own function) is found through ``plugin_op``, a
resolver the caller passes in: this module imports no plugin machinery (the
core stays pure); the worker hands in ``pipeline.plugins.load``. Its failures
are the item's: ``plugin_unavailable`` when this worker cannot import it,
``op_error`` when it raises or returns something that is not an image.
"""

from __future__ import annotations

import copy
import io
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pillow_heif
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from pipeline.core import vector
from pipeline.core.errors import ImageError, PipelineError
from pipeline.core.limits import DEFAULT_MAX_PIXELS
from pipeline.core.ops import PLUGIN, Op

# Finds a plugin op's function by name (``pipeline.plugins.load`` for role "op", on a worker).
# The function's signature: ``(image: PIL.Image.Image, *args: str) -> PIL.Image.Image``.
PluginOps = Callable[[str], Callable[..., Any]]

# HEIC/HEIF (every iPhone photo) through libheif, as a Pillow plugin (format "HEIF").
pillow_heif.register_heif_opener()

# Decoders we let near untrusted bytes; anything else is `unsupported_format`. SVG is not a
# Pillow format: ``pipeline.core.vector`` rasterises it first.
INPUT_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO", "AVIF", "HEIF")
_PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
# Image formats recognised by their first bytes that no decoder here reads: `unsupported_format`,
# not `not_an_image` (JPEG XL, both containers).
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_UNSUPPORTED_SIGNATURES = {b"\xff\x0a": "JPEG XL", b"\x00\x00\x00\x0cJXL \r\n\x87\n": "JPEG XL"}
_EXTENSIONS = {"jpeg": ".jpg", "png": ".png", "webp": ".webp"}
_SHRINKING = ("thumbnail", "resize")
# Where Pillow's ``getexif`` looks for an Orientation (besides a TIFF's own tags):
# an image with none of these cannot be rotated by the ``exif`` op.
_ORIENTATION_SOURCES = ("exif", "Raw profile type exif", "XML:com.adobe.xmp", "xmp")


@dataclass(frozen=True)
class TransformPlan:
    """What to do to every image of a job; travels to the pool child as a dict."""

    ops: tuple[Op, ...]
    format: str = "jpeg"
    quality: int = 85
    max_pixels: int = DEFAULT_MAX_PIXELS

    def to_json(self) -> dict[str, Any]:
        return {
            "ops": [op.to_json() for op in self.ops],
            "format": self.format,
            "quality": self.quality,
            "max_pixels": self.max_pixels,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> TransformPlan:
        return cls(
            ops=tuple(Op.from_json(op) for op in raw["ops"]),
            format=str(raw["format"]),
            quality=int(raw["quality"]),
            max_pixels=int(raw["max_pixels"]),
        )

    @property
    def extension(self) -> str:
        return _EXTENSIONS[self.format]


# The last plan parsed, with a private copy of its JSON: every item of a job has
# the same plan, and parsing it anew cost ~3 us per item (a 16x16 PNG costs ~100).
_last_plan: tuple[dict[str, Any], TransformPlan] | None = None


def _plan_of(plan_json: dict[str, Any]) -> TransformPlan:
    """``TransformPlan.from_json``, reusing the previous result when the JSON is equal."""
    global _last_plan
    last = _last_plan
    if last is not None and last[0] == plan_json:
        return last[1]
    plan = TransformPlan.from_json(plan_json)
    _last_plan = (copy.deepcopy(plan_json), plan)
    return plan


@dataclass(frozen=True)
class TransformOutput:
    data: bytes
    width: int
    height: int
    input_format: str
    input_width: int
    input_height: int
    pid: int
    seconds: float


def _is_cut_short(data: bytes) -> bool:
    """The bytes start like a JPEG, PNG, GIF or WebP but lack its end (EOI, IEND, trailer, size)."""
    if data.startswith(b"\xff\xd8"):
        return not data.rstrip(b"\0").endswith(b"\xff\xd9")
    if data.startswith((b"GIF87a", b"GIF89a")):
        return not data.rstrip(b"\0").endswith(b";")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return b"IEND" not in data[-16:]
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return int.from_bytes(data[4:8], "little") + 8 > len(data)
    return False


def _decode_failure(exc: BaseException, data: bytes) -> str:
    """``truncated`` when the file was cut short, wherever the cut fell; else ``corrupt_image``."""
    if "truncated" in str(exc).lower() or _is_cut_short(data):
        return "truncated"
    return "corrupt_image"


def _bomb(exc: Exception, max_pixels: int) -> ImageError:
    return ImageError("decompression_bomb", f"over the cap of {max_pixels} pixels (PIPELINE_MAX_PIXELS): {exc}")


def _known_format(data: bytes) -> tuple[str, ...] | None:
    """The one plugin to try for a signature only it accepts, else None: Image.open probes them all.

    JPEG is left to the probe (its plugin may open the bytes as MPO).
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ("PNG",)
    if data.startswith((b"GIF87a", b"GIF89a")):
        return ("GIF",)
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return ("WEBP",)
    return None


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Open (header only) and check format and size; run with bomb warnings turned into errors."""
    try:
        image = Image.open(io.BytesIO(data), formats=_known_format(data))
    except UnidentifiedImageError:
        if _is_cut_short(data):
            raise ImageError("truncated", "the file ends before its image header does") from None
        if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
            raise ImageError("corrupt_image", "a HEIC/HEIF file libheif cannot decode") from None
        named = next((name for magic, name in _UNSUPPORTED_SIGNATURES.items() if data.startswith(magic)), None)
        if named is not None:
            allowed = ", ".join(INPUT_FORMATS)
            raise ImageError("unsupported_format", f"{named} is not accepted (allowed: {allowed}, SVG)") from None
        raise ImageError("not_an_image", "the bytes are not an image Pillow recognises") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb(exc, max_pixels) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(_decode_failure(exc, data), str(exc)) from None
    if image.format not in INPUT_FORMATS:
        raise ImageError(
            "unsupported_format",
            f"{image.format} is not accepted (allowed: {', '.join(INPUT_FORMATS)})",
        )
    try:  # counting frames seeks through the file: a broken (or oversized) later frame fails here
        frames = int(getattr(image, "n_frames", 1))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb(exc, max_pixels) from None
    except (OSError, SyntaxError, ValueError, EOFError, TypeError, KeyError, IndexError) as exc:
        raise ImageError(_decode_failure(exc, data), f"cannot read every frame: {exc}") from None
    if image.width * image.height > max_pixels or image.width * image.height * frames > 4 * max_pixels:
        raise ImageError(
            "decompression_bomb",
            f"{image.width}x{image.height}x{frames} frames exceeds the cap of {max_pixels} pixels "
            "(PIPELINE_MAX_PIXELS)",
        )
    return image


def _workable(image: Image.Image) -> Image.Image:
    """Bring palette, bilevel and 16-bit images to a mode every op and filter accepts."""
    if image.mode in ("P", "PA"):
        has_alpha = image.mode == "PA" or "transparency" in image.info
        return image.convert("RGBA" if has_alpha else "RGB")
    if image.mode == "1":
        return image.convert("L")
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        return image.point(lambda v: v / 256).convert("L")  # 16-bit -> 8-bit, not clipped
    if image.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        return image.convert("RGB")
    return image


def _draft(image: Image.Image, ops: Sequence[Op]) -> None:
    """Let libjpeg decode at 1/2, 1/4 or 1/8 scale when the chain shrinks anyway."""
    if image.format != "JPEG":
        return
    first = next((op for op in ops if op.name not in ("exif",)), None)
    if first is None or first.name not in _SHRINKING:
        return
    width, height = int(first.args[0]), int(first.args[1])
    # Both decoded sides stay >= the target's larger side, so every fit mode (and an
    # EXIF rotation that swaps the axes) still only ever scales down afterwards.
    side = max(width, height)
    # Only scales that divide both sides exactly: libjpeg rounds a partial block up,
    # which skews the aspect ratio and can move the output size by a pixel.
    for scale in (8, 4, 2):
        if image.width % scale == 0 and image.height % scale == 0 and min(image.size) // scale >= side:
            image.draft(None, (image.width // scale, image.height // scale))
            return


def _fit_fill(image: Image.Image, width: int, height: int) -> Image.Image:
    return ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS)


def _plugin(image: Image.Image, op: Op, plugin_op: PluginOps | None) -> Image.Image:
    """Run the user's op; whatever it raises is this item's ``op_error``, never the worker's."""
    ref, args = str(op.args[0]), [str(a) for a in op.args[1:]]
    if plugin_op is None:
        raise ImageError("plugin_unavailable", f"plugin op {ref!r}: this process cannot load plugins")
    try:
        function = plugin_op(ref)
    except PipelineError as exc:  # PluginError: not installed on this worker, or not a function
        raise ImageError("plugin_unavailable", exc.message) from None
    try:
        made = function(image, *args)
    except Exception as exc:  # the user's code: any failure is this item's
        raise ImageError("op_error", f"plugin op {ref!r} raised {type(exc).__name__}: {exc}") from None
    if not isinstance(made, Image.Image):
        raise ImageError("op_error", f"plugin op {ref!r} returned a {type(made).__name__}, not a PIL image")
    return _workable(made)


def _apply(image: Image.Image, op: Op, plugin_op: PluginOps | None = None) -> Image.Image:
    name, args = op.name, op.args
    if name == PLUGIN:
        return _plugin(image, op, plugin_op)
    if name == "exif":
        # In place: without a rotation, the copy exif_transpose would return is waste.
        if hasattr(image, "tag_v2") or any(key in image.info for key in _ORIENTATION_SOURCES):
            ImageOps.exif_transpose(image, in_place=True)
        return image
    if name == "thumbnail":
        image.thumbnail((int(args[0]), int(args[1])), Image.Resampling.LANCZOS, reducing_gap=2.0)
        return image
    if name == "resize":
        width, height, mode = int(args[0]), int(args[1]), str(args[2])
        if mode == "fill":
            return _fit_fill(image, width, height)
        if mode == "force":
            return image.resize((width, height), Image.Resampling.LANCZOS)
        return ImageOps.contain(image, (width, height), Image.Resampling.LANCZOS)
    if name == "crop":
        width, height = min(int(args[0]), image.width), min(int(args[1]), image.height)
        left, top = (image.width - width) // 2, (image.height - height) // 2
        return image.crop((left, top, left + width, top + height))
    if name == "grayscale":
        return ImageOps.grayscale(image)
    if name == "threshold":
        cut = int(args[0])
        return ImageOps.grayscale(image).point(lambda v: 255 if v >= cut else 0)
    if name == "blur":
        return image.filter(ImageFilter.GaussianBlur(float(args[0])))
    if name == "sharpen":
        return image.filter(ImageFilter.SHARPEN)
    if name == "rotate":
        return image.rotate(float(args[0]), expand=True, resample=Image.Resampling.BICUBIC)
    if name == "flip":
        return ImageOps.flip(image)
    if name == "mirror":
        return ImageOps.mirror(image)
    raise ImageError("bad_op", f"unknown op {name!r}")


def _encodable(image: Image.Image, fmt: str) -> Image.Image:
    """Convert modes the encoder cannot take; alpha becomes white for JPEG."""
    if image.mode in ("RGBA", "LA", "P", "PA") and fmt == "jpeg":
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if fmt == "jpeg" and image.mode not in ("RGB", "L", "CMYK"):
        return image.convert("RGB")
    if fmt == "webp" and image.mode not in ("RGB", "RGBA"):
        return image.convert("RGBA" if "A" in image.mode or image.mode == "P" else "RGB")
    if fmt == "png" and image.mode in ("CMYK", "YCbCr", "I;16"):
        return image.convert("RGB")
    return image


def transform_image(data: bytes, plan_json: dict[str, Any], plugin_op: PluginOps | None = None) -> TransformOutput:
    """Decode, apply the chain, encode. Raises only ``ImageError``.

    ``plugin_op`` resolves the chain's ``plugin`` ops (none: such an op fails the item).
    """
    started = time.perf_counter()
    plan = _plan_of(plan_json)
    # Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that; make its
    # check ours for this call (the warning an error, from the header to the last
    # frame decoded), and put the process-wide setting back afterwards.
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = plan.max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _transform(data, plan, started, plugin_op)
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _transform(data: bytes, plan: TransformPlan, started: float, plugin_op: PluginOps | None) -> TransformOutput:
    """The transform proper, with Pillow's pixel cap set to the plan's and its bomb warning an error."""
    if vector.looks_like_svg(data):
        image, input_size = vector.rasterize(data, plan.ops, plan.max_pixels)
        input_format = "SVG"
    else:
        image = _open(data, plan.max_pixels)
        input_format, input_size = str(image.format), image.size
    icc = image.info.get("icc_profile")
    try:
        _draft(image, plan.ops)
        image.load()
        image = _workable(image)
        for op in plan.ops:
            image = _apply(image, op, plugin_op)
        image = _encodable(image, plan.format)
        out = io.BytesIO()
        options: dict[str, Any] = {"quality": plan.quality}
        if icc and plan.format in ("jpeg", "webp", "png"):
            options["icc_profile"] = icc
        image.save(out, _PIL_FORMAT[plan.format], **options)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb(exc, plan.max_pixels) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(_decode_failure(exc, data), str(exc)) from None
    return TransformOutput(
        data=out.getvalue(),
        width=image.width,
        height=image.height,
        input_format=input_format.lower(),
        input_width=input_size[0],
        input_height=input_size[1],
        pid=os.getpid(),
        seconds=time.perf_counter() - started,
    )
