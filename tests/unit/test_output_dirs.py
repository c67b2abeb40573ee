"""Where a job may write (pipeline.output_dirs): system folders never, the output root when set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.core.errors import UsageError
from pipeline.output_dirs import check_not_another_jobs, check_output_dir, refusal


@pytest.mark.parametrize("folder", ["/", "/etc", "/etc/cron.d", "/usr/local/share", "/proc/1", "/var/lib/x"])
def test_system_folders_are_refused(folder: str) -> None:
    assert refusal(Path(folder), None) is not None


def test_a_folder_of_ones_own_is_allowed(tmp_path: Path) -> None:
    assert refusal(tmp_path / "out", None) is None
    check_output_dir(tmp_path / "out" / "deeper", None)  # created later, its parent is writable


def test_with_an_output_root_only_folders_inside_it_are_allowed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert refusal(root / "job", root) is None
    assert refusal(root, root) is None
    assert "outside PIPELINE_OUTPUT_ROOT" in (refusal(tmp_path / "rootless", root) or "")
    assert refusal(tmp_path / "root-sibling", root) is not None, "a prefix of the path is not its parent"


def test_a_file_where_the_folder_would_be_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is not a folder"):
        check_output_dir(tmp_path / "file" / "out", None)


def _report(folder: Path, job_id: str, schedule: str | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps({"job_id": job_id, "schedule": schedule}))


def test_a_folder_another_job_reported_in_is_refused(tmp_path: Path) -> None:
    _report(tmp_path, "other-job")
    with pytest.raises(UsageError, match="job other-job writes its outputs there"):
        check_not_another_jobs(tmp_path, "this-job", None, None)


def test_the_fires_of_one_schedule_share_their_folder(tmp_path: Path) -> None:
    _report(tmp_path, "earlier-fire", "nightly")
    check_not_another_jobs(tmp_path, "next-fire", "nightly", None)
    with pytest.raises(UsageError):
        check_not_another_jobs(tmp_path, "next-fire", "another-schedule", None)


def test_the_ledgers_owner_is_refused_even_before_it_wrote_a_report(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="job running-job writes"):
        check_not_another_jobs(tmp_path, "this-job", None, "running-job")
