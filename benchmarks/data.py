"""The benchmark's image sets, generated once into ``benchmarks/results/data``.

Photo-like content (colour gradients, soft shapes, mid-frequency texture and
sensor-like grain, saved as JPEG quality 90 with a small EXIF block): flat
colours compress to almost nothing and decode unrealistically fast, which would
make per-image overhead look far bigger than it is on real photos.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

RESULTS = Path(__file__).resolve().parent / "results"
DATA = RESULTS / "data"
VERSION = 1  # bump when the generator changes: cached sets are regenerated


@dataclass(frozen=True)
class DataSet:
    name: str
    size: tuple[int, int]
    count: int

    @property
    def folder(self) -> Path:
        return DATA / f"{self.name}-n{self.count}"

    def paths(self) -> list[Path]:
        return sorted(self.folder.glob("*.jpg"))


LARGE = DataSet("1600x1200", (1600, 1200), 400)
SMALL = DataSet("640x480", (640, 480), 400)


def _gradient(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """One channel: a linear gradient at a random angle, with a random range."""
    low, high = sorted(rng.sample(range(20, 236), 2))
    ramp = Image.linear_gradient("L").rotate(rng.uniform(0, 360), resample=Image.Resampling.BILINEAR, expand=False)
    ramp = ramp.crop((48, 48, 208, 208)).resize(size, Image.Resampling.BICUBIC)
    return ramp.point(lambda v: low + v * (high - low) // 255)


def photo_like(size: tuple[int, int], seed: int) -> Image.Image:
    rng = random.Random(seed)
    width, height = size
    image = Image.merge("RGB", [_gradient(size, rng) for _ in range(3)])
    # Soft-edged shapes (the edges and regions a real scene has), drawn at a quarter of the
    # size and scaled up smoothly: soft edges for the price of a resize instead of a blur.
    small = (max(1, width // 4), max(1, height // 4))
    shapes = Image.new("RGB", small)
    draw = ImageDraw.Draw(shapes)
    for _ in range(rng.randint(12, 24)):
        x, y = rng.randrange(small[0]), rng.randrange(small[1])
        rx, ry = rng.randint(small[0] // 30 + 1, small[0] // 4), rng.randint(small[1] // 30 + 1, small[1] // 4)
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=colour)
        else:
            draw.polygon([(x + rng.randint(-rx, rx), y + rng.randint(-ry, ry)) for _ in range(4)], fill=colour)
    shapes = shapes.resize(size, Image.Resampling.BICUBIC)
    image = Image.blend(image, shapes, 0.45)
    # Mid-frequency texture (foliage, fabric): coarse noise scaled up smoothly.
    coarse = [
        Image.effect_noise((width // 8, height // 8), 50).resize(size, Image.Resampling.BICUBIC) for _ in range(3)
    ]
    image = Image.blend(image, Image.merge("RGB", coarse), 0.18)
    # Fine grain, mostly in luma as in a camera's output.
    grain = Image.effect_noise(size, 28)
    return Image.blend(image, Image.merge("RGB", (grain, grain, grain)), 0.12)


def _write_one(job: tuple[str, tuple[int, int], int]) -> int:
    path, size, seed = job
    exif = Image.Exif()
    exif[0x0112] = 1  # Orientation: normal (exif_transpose still has to read it)
    exif[0x010F] = "pipeline-bench"  # Make
    photo_like(size, seed).save(path, "JPEG", quality=90, exif=exif)
    return Path(path).stat().st_size


def ensure(data_set: DataSet, log: object = print) -> Path:
    """Generate ``data_set`` unless a complete copy of this generator version is cached."""
    folder = data_set.folder
    manifest = folder / "manifest.json"
    expected = {"version": VERSION, "size": list(data_set.size), "count": data_set.count, "quality": 90}
    try:
        cached = json.loads(manifest.read_text())
        if {k: cached.get(k) for k in expected} == expected and len(data_set.paths()) == data_set.count:
            return folder
    except (OSError, ValueError):
        pass
    if callable(log):
        log(f"generating {data_set.count} JPEGs of {data_set.name} into {folder} (once) ...")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    base = 1_000_003 * data_set.size[0]
    jobs = [(str(folder / f"img-{i:04d}.jpg"), data_set.size, base + i) for i in range(data_set.count)]
    with multiprocessing.get_context("fork").Pool() as pool:
        sizes = pool.map(_write_one, jobs, chunksize=8)
    manifest.write_text(json.dumps({**expected, "bytes_total": sum(sizes), "bytes_mean": sum(sizes) // len(sizes)}))
    return folder


def describe(data_set: DataSet) -> dict[str, object]:
    manifest = json.loads((data_set.folder / "manifest.json").read_text())
    return {
        "name": data_set.name,
        "count": data_set.count,
        "folder": str(data_set.folder),
        "bytes_mean": manifest.get("bytes_mean"),
        "quality": 90,
    }


# -- tiny items: per-item overhead with almost no per-item work ---------------------------
TINY_SIZE = (16, 16)
TINY_PART = 20_000  # files per sub-folder: the tiny benchmark uses one, the memory benchmark all


def tiny_folder(count: int) -> Path:
    return DATA / f"tiny{TINY_SIZE[0]}-n{count}"


def _write_tiny(job: tuple[str, int, int]) -> int:
    folder, start, stop = job
    rng = random.Random(start)
    Path(folder).mkdir(parents=True, exist_ok=True)
    for index in range(start, stop):
        pixels = bytes(rng.randrange(256) for _ in range(TINY_SIZE[0] * TINY_SIZE[1] * 3))
        Image.frombytes("RGB", TINY_SIZE, pixels).save(Path(folder, f"t-{index:06d}.png"), "PNG")
    return stop - start


def tiny_paths(count: int) -> list[Path]:
    return sorted(tiny_folder(count).glob("part-*/*.png"))


def ensure_tiny(count: int, log: object = print) -> Path:
    """``count`` 16x16 PNGs (a few hundred bytes each) in sub-folders of ``TINY_PART``, generated once."""
    folder = tiny_folder(count)
    manifest = folder / "manifest.json"
    expected = {"version": VERSION, "size": list(TINY_SIZE), "count": count}
    try:
        if json.loads(manifest.read_text()) == expected:
            return folder
    except (OSError, ValueError):
        pass
    if callable(log):
        log(f"generating {count} {TINY_SIZE[0]}x{TINY_SIZE[1]} PNGs into {folder} (once) ...")
    shutil.rmtree(folder, ignore_errors=True)
    step = 2_000
    jobs = [(str(folder / f"part-{start // TINY_PART}"), start, min(count, start + step))
            for start in range(0, count, step)]  # fmt: skip
    with multiprocessing.get_context("fork").Pool() as pool:
        pool.map(_write_tiny, jobs, chunksize=1)
    manifest.write_text(json.dumps(expected))
    return folder
