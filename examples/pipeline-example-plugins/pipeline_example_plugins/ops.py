"""Image ops: ``(image: PIL.Image.Image, *args: str) -> PIL.Image.Image``.

pipeline calls an op with the image so far (mode RGB, RGBA, L or LA) and the
op's arguments from the chain as strings (``plugin:frame:12:black`` calls
``frame(image, "12", "black")``). Return a new image (or the same one, changed).
Raise to fail that image: the job records it as ``op_error`` with your message
and carries on with the others.
"""

from __future__ import annotations

from PIL import Image, ImageColor, ImageDraw

# The classic sepia matrix (Microsoft's, as used by most editors): each output
# channel a weighted sum of the input's R, G and B.
SEPIA = (
    0.393, 0.769, 0.189, 0.0,
    0.349, 0.686, 0.168, 0.0,
    0.272, 0.534, 0.131, 0.0,
)  # fmt: skip


def sepia(image: Image.Image) -> Image.Image:
    """Old-photo brown tones; an alpha channel is kept."""
    alpha = image.getchannel("A") if "A" in image.getbands() else None
    toned = image.convert("RGB").convert("RGB", SEPIA)
    if alpha is not None:
        toned.putalpha(alpha)
    return toned


def frame(image: Image.Image, width: str = "8", color: str = "white") -> Image.Image:
    """A border ``width`` pixels wide drawn inside the image (its size does not change).

    Raises ValueError when the frame would cover the whole image, or for a bad
    width or color: that image fails, the others do not.
    """
    pixels = int(width)
    if pixels < 1:
        raise ValueError(f"frame width must be at least 1 pixel, got {width!r}")
    if 2 * pixels >= min(image.size):
        raise ValueError(f"a {pixels} px frame covers the whole {image.width}x{image.height} image")
    framed = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    fill = ImageColor.getrgb(color)
    draw = ImageDraw.Draw(framed)
    for inset in range(pixels):
        draw.rectangle((inset, inset, framed.width - 1 - inset, framed.height - 1 - inset), outline=fill)
    return framed
