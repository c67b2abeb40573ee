"""No file pipeline writes follows a symlink planted where it writes (the worker may run as root).

The report writer once wrote ``.report.json.part``, ``.failures.jsonl.part`` and
``.pages.jsonl.part`` with a plain ``open()``: links planted under those names made
the worker overwrite whatever they pointed at. Every file now goes through the
outputs' writer (``O_NOFOLLOW | O_EXCL`` temporary name, renamed into place).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.core.errors import StoreError
from pipeline.demo.site import DemoSite
from pipeline.kinds import job_document
from pipeline.kinds.crawl import CrawlSpec
from pipeline.ledger.keys import job_key
from pipeline.localredis import RedisServer, write_state
from pipeline.outputs import open_log, write_file
from tests.faults.conftest import FaultCluster
from tests.helpers import wait_until

REPORT_FILES = ("report.json", "failures.jsonl", "pages.jsonl")


@pytest.fixture(scope="module")
def site() -> Iterator[DemoSite]:
    with DemoSite(pages=30, slow_s=0) as demo:
        yield demo


def _plant(folder: Path, names: list[str], victims: Path) -> dict[Path, Path]:
    """A link per name, each to its own precious file; returns link -> victim."""
    folder.mkdir(parents=True, exist_ok=True)
    victims.mkdir(exist_ok=True)
    planted = {}
    for name in names:
        victim = victims / f"victim-{name.strip('.')}"
        victim.write_text("precious\n")
        (folder / name).symlink_to(victim)
        planted[folder / name] = victim
    return planted


def _crawl_and_finalize(cluster: FaultCluster, site: DemoSite, out: Path) -> dict[str, object]:
    cluster.start("links@test")
    # /missing.html is a 404: failures.jsonl has a line to write.
    request = CrawlSpec(seeds=[site.url + "/", site.url + "/missing.html"], max_pages=6, output_dir=out)
    job_id = cluster.producer.submit(request)
    # Finalized: the reduce step has run (its report path is "" when it could not write it).
    wait_until(lambda: cluster.ledger.client.hget(job_key(job_id), "finalized_at"), 60, f"job {job_id} finalized")
    return job_document(cluster.ledger, job_id)


def test_links_planted_at_the_report_writers_temporary_names_are_never_written_through(
    cluster: FaultCluster, site: DemoSite, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    planted = _plant(out, [f".{name}.part" for name in REPORT_FILES], tmp_path / "victims")
    doc = _crawl_and_finalize(cluster, site, out)
    assert all(victim.read_text() == "precious\n" for victim in planted.values())
    for name in REPORT_FILES:  # the report was written all the same, as regular files
        path = out / name
        assert path.is_file() and not path.is_symlink(), name
    assert json.loads((out / "report.json").read_text())["job_id"] == doc["job_id"]
    assert (out / "failures.jsonl").read_text().strip()
    assert not [p for p in out.iterdir() if p.name.endswith(".part") and not p.is_symlink()]


def test_links_planted_at_the_report_file_names_are_refused_and_the_job_still_finalizes(
    cluster: FaultCluster, site: DemoSite, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    planted = _plant(out, list(REPORT_FILES), tmp_path / "victims")
    doc = _crawl_and_finalize(cluster, site, out)
    assert doc["state"] == "succeeded"
    assert not doc["report"]  # not written: its name is taken by a link
    assert all(victim.read_text() == "precious\n" for victim in planted.values())
    assert all(link.is_symlink() for link in planted)  # refused, not replaced: the link is left as found


def test_the_private_redis_state_file_is_never_written_through_a_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "redis.json").symlink_to(victim)
    server = RedisServer("redis://127.0.0.1:1/0", process=SimpleNamespace(pid=1), directory=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(StoreError) as refused:
        write_state(tmp_path / "home", server)
    assert refused.value.reason == "unsafe_path"
    assert victim.read_text() == "precious\n"


def test_a_log_file_that_is_a_link_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "worker.log").symlink_to(victim)
    with pytest.raises(StoreError) as refused:
        open_log(tmp_path / "worker.log")
    assert refused.value.reason == "unsafe_path"
    assert victim.read_text() == "precious\n"


def test_any_file_written_with_write_file_replaces_nothing_through_a_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "urls.txt").symlink_to(victim)
    with pytest.raises(StoreError):
        write_file(tmp_path / "urls.txt", b"http://attacker/\n")
    assert victim.read_text() == "precious\n"
    assert write_file(tmp_path / "fresh.txt", iter(["a\n", "b\n"])).read_text() == "a\nb\n"
