"""Hostile inputs and exposure: clear per-item errors, nothing written outside the job's
folder, Redis closed to strangers, and no secret in any output.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from PIL import Image

from pipeline.core.errors import StoreError
from pipeline.core.names import output_name
from pipeline.demo.images import pixel_bomb_png
from pipeline.ledger.connection import connect
from pipeline.outputs import OutputDir
from tests.faults.cli import run_cli
from tests.faults.conftest import FaultCluster
from tests.helpers import image_bytes, make_images


def _animated_gif(size: tuple[int, int], frames: int) -> bytes:
    images = [Image.new("RGB", size, (i * 12 % 256, i * 7 % 256, 90)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:])
    return out.getvalue()


def _encoded(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 20, 30)).save(out, fmt)
    return out.getvalue()


def test_bad_images_each_fail_with_their_own_reason_and_the_good_ones_succeed(
    cluster: FaultCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "in"
    make_images(folder, 3, size=(200, 150))
    jpeg = image_bytes((800, 600))
    bad = {
        "html-as.png": (b"<!doctype html><html><body>not a picture</body></html>", "not_an_image"),
        "cut.jpg": (jpeg[: len(jpeg) * 6 // 10], "truncated"),
        "bomb.png": (pixel_bomb_png(), "decompression_bomb"),
        "frames.gif": (_animated_gif((500, 500), 20), "decompression_bomb"),  # 5 M px > 4 x the 1 M cap
        "picture.tga": (_encoded("TGA"), "unsupported_format"),
        "picture.pcx": (_encoded("PCX"), "unsupported_format"),
    }
    for name, (data, _) in bad.items():
        (folder / name).write_bytes(data)
    monkeypatch.setenv("PIPELINE_MAX_PIXELS", "1000000")  # the cap travels in the job's plan
    cluster.connect(cluster.url)
    cluster.start("inputs@test", PIPELINE_PROCESSES="2")
    job_id, submitted = cluster.submit(sorted(str(p) for p in folder.iterdir()), batch_size=4)
    verdict = cluster.check(job_id, submitted, deadline_s=60, label="bad-images")
    reasons = {Path(r.source).name: r.reason for r in cluster.ledger.results(job_id) if not r.ok}
    assert reasons == {name: reason for name, (_, reason) in bad.items()}
    assert verdict.doc["images"]["ok"] == 3


@pytest.mark.parametrize("src", [
    "http://h/../../etc/passwd.jpg", "http://h/%2E%2E%2F%2E%2E%2Fescape.jpg", "/etc/../../abs/evil.jpg",
    "http://h/a%00b.jpg", "http://h/..", "C:\\\\Windows\\\\evil.jpg", "http://h/.hidden.jpg",
])  # fmt: skip
def test_an_output_name_made_from_a_hostile_source_is_a_bare_safe_file_name(src: str) -> None:
    name = output_name(src, ".jpg")
    assert name and "/" not in name and "\\" not in name and "\0" not in name and not name.startswith(".")
    assert OutputDir("/nonexistent").path / name != Path("/")


def test_a_symlink_planted_in_the_output_folder_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    out, outside = tmp_path / "out", tmp_path / "outside.jpg"
    out.mkdir()
    outside.write_bytes(b"precious")
    (out / "victim.jpg").symlink_to(outside)
    with pytest.raises(StoreError) as refused:
        OutputDir(out).write("victim.jpg", b"attacker bytes")
    assert refused.value.reason == "unsafe_path"
    assert outside.read_bytes() == b"precious"
    for name in ("../escape.jpg", "/abs.jpg", ".hidden", "a\\b.jpg"):
        with pytest.raises(StoreError):
            OutputDir(out).write(name, b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "outside.jpg"]


def test_an_output_folder_that_is_a_symlink_is_refused_and_nothing_is_written_through_it(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "link").symlink_to(elsewhere)
    with pytest.raises(StoreError) as refused:
        OutputDir(tmp_path / "link").write("a.jpg", b"x")
    assert refused.value.reason == "unsafe_path"
    assert list(elsewhere.iterdir()) == []


def test_the_redis_this_project_starts_listens_on_loopback_only_and_refuses_clients_without_its_password(
    cluster: FaultCluster,
) -> None:
    client = cluster.ledger.client
    assert client.config_get("bind")["bind"] == "127.0.0.1"
    assert client.config_get("protected-mode")["protected-mode"] == "yes"
    password = urlsplit(cluster.url).password
    assert password and len(password) >= 20
    anonymous = connect(cluster.url.replace(f":{password}@", ""))
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    anonymous.close()


def test_the_redis_password_appears_in_no_log_and_no_json_output(cluster: FaultCluster, tmp_path: Path) -> None:
    make_images(tmp_path / "in", 2, size=(100, 80))
    worker = cluster.start("secrets@test")
    password = urlsplit(cluster.url).password
    assert password
    submitted = run_cli("submit", "images", str(tmp_path / "in"), "--wait", "--json", redis_url=cluster.url)
    job_id = json.loads(submitted.stdout)["job_id"]
    shown = [submitted, run_cli("result", job_id, "--json", "--failed", redis_url=cluster.url),
             run_cli("workers", "--json", redis_url=cluster.url),
             run_cli("jobs", "--json", redis_url=cluster.url)]  # fmt: skip
    assert all(p.returncode == 0 for p in shown), [p.stderr for p in shown]
    worker.terminate()
    assert worker.wait(30)
    assert worker.log_path is not None
    texts = [p.stdout + p.stderr for p in shown] + [worker.log_path.read_text()]
    assert not [t for t in texts if password in t]
    assert os.environ.get("PIPELINE_REDIS_URL", "") == ""  # the tests never leak it into this process either
