"""The image op chain: ``exif,thumbnail:256,grayscale`` parsed into typed ops.

Parsing happens at submit time so a typo is a one-line error before anything is
queued; the parsed chain travels as plain JSON (``Op.to_json``) to the workers.

``plugin:NAME[:ARG...]`` is the user's own op: NAME is an entry point of the
``pipeline.ops`` group or a dotted path (``package.module.function``: the
chain's ``:`` separates arguments, so the path uses dots), the ARGs are strings
passed to it. Here it is only a name and arguments (this package imports no
plugin); whether a worker can import it is asked at submit, and the op is
loaded on the worker (see ``pipeline.plugins``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipeline.core.errors import OpSpecError

FORMATS = ("jpeg", "png", "webp")
_SIZE = re.compile(r"^(\d{1,5})(?:x(\d{1,5}))?$")
_FITS = ("fit", "fill", "force")
_SIZED = ("thumbnail", "resize", "crop")  # ops whose first two args are a WxH size


@dataclass(frozen=True)
class Op:
    """One step of the chain; ``args`` are already validated numbers or names."""

    name: str
    args: tuple[int | float | str, ...] = ()

    def to_json(self) -> list[object]:
        return [self.name, *self.args]

    @classmethod
    def from_json(cls, raw: Sequence[object]) -> Op:
        name, *args = raw
        return cls(str(name), tuple(a for a in args if isinstance(a, int | float | str)))

    def __str__(self) -> str:
        """The chain syntax that parses back to this op (sizes as ``WxH``)."""
        args = [str(a) for a in self.args]
        if self.name in _SIZED and len(args) >= 2:
            args[:2] = [f"{args[0]}x{args[1]}"]
        return ":".join([self.name, *args])


def _size(text: str, op: str, *, need_height: bool) -> tuple[int, int]:
    match = _SIZE.match(text)
    if not match:
        raise OpSpecError(f"{op}: size must be W or WxH in pixels (e.g. 256 or 640x480), got {text!r}")
    width = int(match.group(1))
    height = int(match.group(2)) if match.group(2) else None
    if height is None:
        if need_height:
            raise OpSpecError(f"{op}: needs WxH (e.g. {op}:640x480), got {text!r}")
        height = width
    if not (1 <= width <= 20000 and 1 <= height <= 20000):
        raise OpSpecError(f"{op}: size must be between 1 and 20000 pixels, got {text!r}")
    return width, height


def _number(text: str, op: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise OpSpecError(f"{op}: expected a number, got {text!r}") from None
    if not low <= value <= high:
        raise OpSpecError(f"{op}: must be between {low:g} and {high:g}, got {text!r}")
    return value


def _no_args(name: str) -> Callable[[list[str]], Op]:
    def parse(args: list[str]) -> Op:
        if args:
            raise OpSpecError(f"{name} takes no arguments, got {':'.join(args)!r}")
        return Op(name)

    return parse


def _thumbnail(args: list[str]) -> Op:
    if len(args) != 1:
        raise OpSpecError("thumbnail needs one size: thumbnail:W or thumbnail:WxH")
    return Op("thumbnail", _size(args[0], "thumbnail", need_height=False))


def _resize(args: list[str]) -> Op:
    if not 1 <= len(args) <= 2:
        raise OpSpecError("resize needs resize:WxH[:fit|fill|force]")
    mode = args[1] if len(args) == 2 else "fit"
    if mode not in _FITS:
        raise OpSpecError(f"resize: mode must be one of {', '.join(_FITS)}, got {mode!r}")
    return Op("resize", (*_size(args[0], "resize", need_height=True), mode))


def _crop(args: list[str]) -> Op:
    if len(args) != 1:
        raise OpSpecError("crop needs crop:WxH (a centred crop)")
    return Op("crop", _size(args[0], "crop", need_height=True))


def _one_number(name: str, low: float, high: float, *, integer: bool) -> Callable[[list[str]], Op]:
    def parse(args: list[str]) -> Op:
        if len(args) != 1:
            raise OpSpecError(f"{name} needs one value: {name}:N")
        value = _number(args[0], name, low, high)
        if integer and not value.is_integer():
            raise OpSpecError(f"{name}: expected a whole number, got {args[0]!r}")
        return Op(name, (int(value) if integer else value,))

    return parse


PLUGIN = "plugin"


def _plugin(args: list[str]) -> Op:
    if not args or not args[0]:
        raise OpSpecError("plugin needs a name: plugin:NAME[:ARG...] (an entry point or package.module.function)")
    return Op(PLUGIN, tuple(args))


def plugin_refs(ops: Sequence[Op]) -> list[str]:
    """The plugin names a chain uses, in order, each once."""
    return list(dict.fromkeys(str(op.args[0]) for op in ops if op.name == PLUGIN))


# name -> (parser, help text); the help text is what the CLI lists on a bad op.
OPS: dict[str, tuple[Callable[[list[str]], Op], str]] = {
    "exif": (_no_args("exif"), "exif  auto-orient from EXIF (on by default; 'noexif' turns it off)"),
    "noexif": (_no_args("noexif"), "noexif  keep the stored orientation"),
    "thumbnail": (_thumbnail, "thumbnail:W[xH]  shrink to fit W x H, keeping aspect"),
    "resize": (_resize, "resize:WxH[:fit|fill|force]  fit inside, fill and crop, or stretch"),
    "crop": (_crop, "crop:WxH  centred crop"),
    "grayscale": (_no_args("grayscale"), "grayscale"),
    "threshold": (_one_number("threshold", 0, 255, integer=True), "threshold:T  black/white at T"),
    "blur": (_one_number("blur", 0, 100, integer=False), "blur:R  Gaussian blur radius R"),
    "sharpen": (_no_args("sharpen"), "sharpen"),
    "rotate": (_one_number("rotate", -360, 360, integer=False), "rotate:DEG  counter-clockwise"),
    "flip": (_no_args("flip"), "flip  top to bottom"),
    "mirror": (_no_args("mirror"), "mirror  left to right"),
    PLUGIN: (_plugin, "plugin:NAME[:ARG...]  your own op: an installed pipeline.ops entry point or a dotted path"),
}


def valid_ops_help() -> str:
    return "; ".join(help_text for _, help_text in OPS.values())


def parse_ops(chain: str) -> tuple[Op, ...]:
    """Parse a comma-separated chain; ``exif`` is prepended unless given or ``noexif``."""
    ops: list[Op] = []
    for part in (p.strip() for p in chain.split(",")):
        if not part:
            continue
        name, *args = part.split(":")
        entry = OPS.get(name.strip().lower())
        if entry is None:
            raise OpSpecError(f"unknown op {name!r}; valid ops: {valid_ops_help()}")
        ops.append(entry[0]([a.strip() for a in args]))
    names = [op.name for op in ops]
    if "noexif" in names:
        return tuple(op for op in ops if op.name not in ("noexif", "exif"))
    if "exif" not in names:
        ops.insert(0, Op("exif"))
    return tuple(ops)


def parse_format(fmt: str) -> str:
    normal = fmt.strip().lower()
    normal = "jpeg" if normal == "jpg" else normal
    if normal not in FORMATS:
        raise OpSpecError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return normal
