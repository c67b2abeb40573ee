"""SVG sources, rasterised with resvg at the size the op chain asks for, inside a pool child.

Why resvg (the ``resvg-py`` wheel): a self-contained Rust renderer in a manylinux
wheel, so it installs with pip like everything else and needs no system library
(CairoSVG needs libcairo at run time, which a slim image or a fresh machine lacks),
parses with a memory-safe XML parser, and renders text with the system's fonts.

Untrusted SVG is made safe first: it is parsed with lxml without entities, DTDs
or network, and every ``href`` that is not a fragment (``#id``) or a ``data:`` URI
is dropped, because resvg loads ``<image href="/etc/...">`` from the worker's own
disk. Size: a vector has no pixels to bomb with, so it is rendered straight at
the first size op's box (``thumbnail``/``resize``) -- crisp, never upscaled from a
small raster -- or at its own size, scaled down to fit ``PIPELINE_MAX_PIXELS``.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Sequence

import lxml.etree
import resvg_py
from PIL import Image

from pipeline.core.errors import ImageError
from pipeline.core.ops import Op

_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
_PARSER = lxml.etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
)
_LENGTH = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(px|pt|pc|mm|cm|in)?\s*$")
_PX_PER = {None: 1.0, "px": 1.0, "pt": 4 / 3, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0}
MAX_SVG_BYTES = 64 * 2**20  # an .svgz is inflated up to this, never further (a gzip bomb)
_DEFAULT_SIZE = (100.0, 100.0)  # what resvg assumes without width, height or viewBox


def looks_like_svg(data: bytes) -> bool:
    """An SVG document (or an .svgz: gzip whose content is one), by its first bytes."""
    if data[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[:4096], 1024)
        except zlib.error:
            return False
        return _svg_head(head)
    return _svg_head(data[:1024])


def _svg_head(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith(b"<svg") or (text.startswith((b"<?xml", b"<!--", b"<!doctype svg")) and b"<svg" in text)


def _inflate(data: bytes) -> bytes:
    if data[:2] != b"\x1f\x8b":
        return data
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, MAX_SVG_BYTES)
    except zlib.error as exc:
        raise ImageError("corrupt_image", f"the .svgz does not inflate: {exc}") from None
    if inflater.unconsumed_tail:
        raise ImageError("decompression_bomb", f"the .svgz inflates past {MAX_SVG_BYTES} bytes")
    return out


def _safe_tree(data: bytes) -> lxml.etree._Element:
    """The SVG's tree with every reference outside the document removed."""
    try:
        root = lxml.etree.fromstring(_inflate(data), _PARSER)
    except lxml.etree.XMLSyntaxError as exc:
        raise ImageError("corrupt_image", f"not well-formed SVG: {exc}") from None
    if root is None or lxml.etree.QName(root).localname != "svg":
        raise ImageError("not_an_image", "the XML document is not an SVG image")
    for element in root.iter():
        for name in ("href", _XLINK_HREF):
            value = (element.get(name) or "").strip()
            if value and not value.startswith(("#", "data:")):
                del element.attrib[name]  # a file or URL: resvg would read the worker's disk
    return root


def _length(text: str | None) -> float | None:
    match = _LENGTH.match(text or "")
    if match is None:
        return None
    value = float(match.group(1)) * _PX_PER[match.group(2)]
    return value if value > 0 else None


def intrinsic_size(root: lxml.etree._Element) -> tuple[float, float]:
    """The size resvg renders at without being told one: width/height, else the viewBox, else 100 x 100."""
    width, height = _length(root.get("width")), _length(root.get("height"))
    box = [float(v) for v in re.split(r"[\s,]+", (root.get("viewBox") or "").strip()) if v][:4]
    if len(box) == 4 and box[2] > 0 and box[3] > 0:
        if width and not height:
            height = width * box[3] / box[2]
        elif height and not width:
            width = height * box[2] / box[3]
        width, height = width or box[2], height or box[3]
    return (width or _DEFAULT_SIZE[0], height or _DEFAULT_SIZE[1])


def render_box(size: tuple[float, float], ops: Sequence[Op], max_pixels: int) -> tuple[int, int]:
    """Width and height to rasterise at: the first size op's box (covering it for ``fill``/``crop``),
    else the SVG's own size; never over ``max_pixels``."""
    width, height = size
    first = next((op for op in ops if op.name != "exif"), None)
    if first is not None and first.name in ("thumbnail", "resize", "crop"):
        box_w, box_h = float(first.args[0]), float(first.args[1])
        cover = first.name == "crop" or (first.name == "resize" and first.args[2] in ("fill", "force"))
        scale = (max if cover else min)(box_w / width, box_h / height)
        width, height = width * scale, height * scale
    if width * height > max_pixels:
        shrink = (max_pixels / (width * height)) ** 0.5
        width, height = width * shrink, height * shrink
    return max(1, round(width)), max(1, round(height))


def rasterize(data: bytes, ops: Sequence[Op], max_pixels: int) -> tuple[Image.Image, tuple[int, int]]:
    """The SVG as an RGBA image at ``render_box``'s size, and the SVG's own size (for the report)."""
    root = _safe_tree(data)
    size = intrinsic_size(root)
    width, height = render_box(size, ops, max_pixels)
    svg = lxml.etree.tostring(root, encoding="unicode")
    try:
        png = resvg_py.svg_to_bytes(svg_string=svg, width=width, height=height)
    except (ValueError, OSError) as exc:
        raise ImageError("corrupt_image", f"resvg cannot render it: {exc}") from None
    image = Image.open(io.BytesIO(png), formats=("PNG",))
    image.load()
    return image, (round(size[0]), round(size[1]))
