"""Bad input never breaks a job: each bad item fails with its reason, the rest complete.

Every case is one job of three good local images plus one bad item, run on the
real worker; the bad item must fail with exactly the expected reason and the
job must still succeed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.demo.images import pixel_bomb_png
from pipeline.demo.server import StaticServer
from pipeline.kinds.images import ImagesSpec
from pipeline.ledger import Ledger
from pipeline.producer import Producer
from tests.helpers import image_bytes, make_images, wait_for_job

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticServer]:
    root = tmp_path_factory.mktemp("site")
    (root / "ok.jpg").write_bytes(image_bytes())
    with StaticServer(root) as server:
        yield server


def _file(name: str, data: bytes) -> Callable[[Path, StaticServer], str]:
    def make(folder: Path, site: StaticServer) -> str:
        path = folder / name
        path.write_bytes(data)
        return str(path)

    return make


def _url(route: str) -> Callable[[Path, StaticServer], str]:
    return lambda folder, site: site.url_for(route)


_JPEG = image_bytes((800, 600))
BAD_ITEMS = {
    "http_404": _url("status/404"),
    "http_500": _url("status/500"),
    "timeout": _url("slow/10/-"),
    "too_large": _url("big/5000000"),
    "not_an_image": _url("not-image.jpg"),
    "truncated": _file("cut.jpg", _JPEG[: len(_JPEG) * 6 // 10]),
    "decompression_bomb": _file("bomb.png", pixel_bomb_png()),
    # Typed on the command line it is refused at submit; a line of a URL list is one item that fails.
    "unsupported_scheme": lambda folder, site: _in_list(folder, "ftp://127.0.0.1/picture.jpg"),
    "connection_error": lambda folder, site: "http://127.0.0.1:9/unreachable.jpg",
    "not_found": lambda folder, site: _missing_in_list(folder),
}


def _in_list(folder: Path, line: str) -> str:
    listing = folder / "urls.txt"
    listing.write_text(line + "\n")
    return str(listing)


def _missing_in_list(folder: Path) -> str:
    listing = folder / "list.txt"
    listing.write_text("gone.jpg\n")  # a relative path that does not exist
    return str(listing)


@pytest.mark.parametrize("reason", sorted(BAD_ITEMS))
def test_a_bad_item_fails_with_its_reason_and_the_rest_of_the_job_completes(
    reason: str, producer: Producer, ledger: Ledger, site: StaticServer, tmp_path: Path, outputs: Path
) -> None:
    make_images(tmp_path / "good", 3)
    bad = BAD_ITEMS[reason](tmp_path, site)
    job_id = producer.submit(ImagesSpec(sources=[str(tmp_path / "good"), bad], output_dir=outputs))
    doc = wait_for_job(ledger, job_id, timeout=90)
    assert doc["failures"] == {reason: 1}
    assert doc["images"] == {"ok": 3, "failed": 1, "total": 4, "pending": 0}
    assert doc["state"] == "succeeded"
    [failed] = list(ledger.results(job_id, failed_only=True))
    assert failed.reason == reason and failed.detail, "a failure must explain itself"


def test_server_errors_are_retried_before_the_item_fails(
    producer: Producer, ledger: Ledger, site: StaticServer, outputs: Path
) -> None:
    before = site.hits["/status/503"]
    job_id = producer.submit(ImagesSpec(sources=[site.url_for("status/503")], output_dir=outputs))
    wait_for_job(ledger, job_id)
    assert site.hits["/status/503"] - before == 3, "PIPELINE_FETCH_RETRIES=2 means three attempts"


def test_a_flaky_server_that_recovers_within_the_retries_yields_the_image(
    producer: Producer, ledger: Ledger, site: StaticServer, outputs: Path
) -> None:
    job_id = producer.submit(ImagesSpec(sources=[site.url_for("flaky/2/ok.jpg")], output_dir=outputs))
    doc = wait_for_job(ledger, job_id)
    assert doc["images"]["ok"] == 1


def test_a_job_where_nothing_can_be_processed_ends_failed_with_a_reason(
    producer: Producer, ledger: Ledger, tmp_path: Path, outputs: Path
) -> None:
    (tmp_path / "a.jpg").write_bytes(b"plain text")
    (tmp_path / "b.png").write_bytes(b"<html></html>")
    job_id = producer.submit(ImagesSpec(sources=[str(tmp_path / "a.jpg"), str(tmp_path / "b.png")], output_dir=outputs))
    doc = wait_for_job(ledger, job_id)
    assert doc["state"] == "failed"
    assert doc["reason"] == "no item could be processed"
    assert doc["failures"] == {"not_an_image": 2}
