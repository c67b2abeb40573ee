"""Strange files in a source folder: formats people have, and files that are not files.

A folder of wallpapers and phone photos is processed or reported item by item: HEIC
decoded, SVG rasterised, other image-looking names reported (never silently left out).
A named pipe called ``p1.jpg`` once wedged every pool child that opened it, and later
good jobs then failed every item with ``deadline``; now it fails at once as
``not_a_file``. A child that is stuck anyway is killed and replaced at the deadline.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

from PIL import Image

from pipeline.core.sources import expand_sources
from tests.faults.conftest import FaultCluster
from tests.helpers import image_bytes, make_images
from workers.processes import HANG

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="32"><rect width="64" height="32" fill="#08f"/></svg>'


def _heic() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (80, 60), (10, 200, 30)).save(out, "HEIF")
    return out.getvalue()


def test_a_folder_of_photos_wallpapers_and_a_pipe_is_processed_or_reported_item_by_item(
    cluster: FaultCluster, tmp_path: Path
) -> None:
    folder = tmp_path / "wallpapers"
    make_images(folder, 2, size=(120, 90))
    (folder / "iphone.HEIC").write_bytes(_heic())
    (folder / "logo.svg").write_bytes(SVG)
    (folder / "layers.psd").write_bytes(b"8BPS" + bytes(40))
    os.mkfifo(folder / "p1.jpg")
    sources = [str(folder)]
    assert len(list(expand_sources(sources))) == 6, "every image-looking name is an item"
    cluster.start("strange@test")
    job_id, submitted = cluster.submit(sources, ops="thumbnail:32", format="png")
    started = time.monotonic()
    verdict = cluster.check(job_id, submitted, deadline_s=30, label="strange-files")
    assert time.monotonic() - started < 20, "the pipe must not hold the job until a deadline"
    outcome = {Path(r.source).name: (r.ok, r.reason) for r in cluster.ledger.results(job_id)}
    assert outcome["iphone.HEIC"] == (True, None)
    assert outcome["logo.svg"] == (True, None)
    assert outcome["p1.jpg"] == (False, "not_a_file")
    assert outcome["layers.psd"][0] is False and outcome["layers.psd"][1] in ("unsupported_format", "not_an_image")
    assert verdict.doc["images"]["ok"] == 4
    out = tmp_path / "out"
    for name, size in (("logo.png", (32, 16)), ("iphone.png", (32, 24))):
        with Image.open(out / name) as output:
            assert output.size == size

    # The workers are not wedged: a good job right after is fine.
    again, ids = cluster.submit([str(p) for p in make_images(tmp_path / "more", 3, size=(60, 40))],
                                output_dir=tmp_path / "out2")  # fmt: skip
    assert cluster.check(again, ids, deadline_s=20, label="after-the-pipe").doc["images"]["ok"] == 3


def test_a_stuck_pool_child_is_killed_at_the_deadline_and_the_next_job_runs(
    cluster: FaultCluster, tmp_path: Path
) -> None:
    stuck = tmp_path / "stuck"
    stuck.mkdir()
    (stuck / "hangs.jpg").write_bytes(image_bytes((40, 30)) + HANG)
    cluster.start("stuck@test")  # one pool process (FAULT_ENV), deadline 6 s
    job_id, submitted = cluster.submit([str(stuck)])
    cluster.check(job_id, submitted, deadline_s=30, states=("failed",), label="stuck-child")
    assert [r.reason for r in cluster.ledger.results(job_id)] == ["deadline"]
    # With the only pool process still stuck, every item of this job would fail with `deadline` too.
    again, ids = cluster.submit([str(p) for p in make_images(tmp_path / "good", 4, size=(60, 40))],
                                output_dir=tmp_path / "out2")  # fmt: skip
    assert cluster.check(again, ids, deadline_s=30, label="after-the-stuck-child").doc["images"]["ok"] == 4
