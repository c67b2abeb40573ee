"""``OutputDir``: files land inside the job folder, atomically, and nowhere else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.core.errors import StoreError
from pipeline.outputs import OutputDir


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


@pytest.fixture
def out(tmp_path: Path) -> OutputDir:
    return OutputDir(tmp_path / "job")


def test_write_creates_the_folder_writes_the_bytes_and_returns_the_path(out: OutputDir) -> None:
    path = out.write("cat.webp", b"RIFF....WEBP")
    assert path == out.path / "cat.webp"
    assert path.read_bytes() == b"RIFF....WEBP"


def test_write_replaces_an_existing_file(out: OutputDir) -> None:
    out.write("cat.jpg", b"old")
    assert out.write("cat.jpg", b"new").read_bytes() == b"new"


def test_write_leaves_no_part_files_after_success(out: OutputDir) -> None:
    out.write("a.jpg", b"1")
    out.write("b.jpg", b"2")
    assert leftovers(out.path) == []
    assert sorted(p.name for p in out.path.iterdir()) == ["a.jpg", "b.jpg"]


def test_write_is_atomic_a_failed_rename_keeps_the_old_file_and_no_part(
    out: OutputDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    out.write("cat.jpg", b"complete old version")

    def broken_replace(src: object, dst: object, **dir_fds: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(StoreError) as caught:
        out.write("cat.jpg", b"new")
    assert caught.value.reason == "write_error"
    assert (out.path / "cat.jpg").read_bytes() == b"complete old version"
    assert leftovers(out.path) == []


def test_write_leaves_no_part_file_when_the_target_cannot_be_replaced(out: OutputDir) -> None:
    (out.path / "taken.jpg").mkdir(parents=True)
    with pytest.raises(StoreError) as caught:
        out.write("taken.jpg", b"data")
    assert caught.value.reason == "write_error"
    assert leftovers(out.path) == []


@pytest.mark.parametrize(
    "name", ["", "a/b.jpg", "../escape.jpg", "..", ".", ".hidden.jpg", "a\\b.jpg", "nul\0.jpg", "/etc/passwd"]
)
def test_write_refuses_unsafe_names(out: OutputDir, tmp_path: Path, name: str) -> None:
    with pytest.raises(StoreError) as caught:
        out.write(name, b"data")
    assert caught.value.reason == "unsafe_name"
    assert not (tmp_path / "escape.jpg").exists()


def test_write_refuses_to_follow_a_symlink_planted_at_the_target_name(out: OutputDir, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    out.path.mkdir()
    (out.path / "cat.jpg").symlink_to(victim)
    with pytest.raises(StoreError) as caught:
        out.write("cat.jpg", b"attacker bytes")
    assert caught.value.reason == "unsafe_path"
    assert victim.read_bytes() == b"precious"
    assert (out.path / "cat.jpg").is_symlink()
    assert leftovers(out.path) == []


def test_write_refuses_a_dangling_symlink_at_the_target_name(out: OutputDir, tmp_path: Path) -> None:
    out.path.mkdir()
    (out.path / "cat.jpg").symlink_to(tmp_path / "would-be-created.txt")
    with pytest.raises(StoreError):
        out.write("cat.jpg", b"attacker bytes")
    assert not (tmp_path / "would-be-created.txt").exists()


def test_write_refuses_when_the_output_folder_itself_is_a_symlink(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "job").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(StoreError) as caught:
        OutputDir(tmp_path / "job").write("cat.jpg", b"data")
    assert caught.value.reason == "unsafe_path"
    assert list(elsewhere.iterdir()) == []


def test_ensure_refuses_a_file_where_the_folder_should_be(tmp_path: Path) -> None:
    (tmp_path / "job").write_bytes(b"not a folder")
    with pytest.raises(StoreError) as caught:
        OutputDir(tmp_path / "job").ensure()
    assert caught.value.reason == "write_error"


def test_an_open_folder_writes_many_files_and_survives_the_folder_being_removed(out: OutputDir) -> None:
    with out.open() as folder:
        folder.write("a.jpg", b"1")
        for path in out.path.iterdir():
            path.unlink()
        out.path.rmdir()
        folder.write("b.jpg", b"2")  # created again, as a write to a missing folder does
    assert sorted(p.name for p in out.path.iterdir()) == ["b.jpg"]
    assert folder.fd == -1


def test_an_open_folder_keeps_writing_into_the_folder_it_opened_when_its_path_becomes_a_symlink(
    out: OutputDir, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with out.open() as folder:
        out.path.rename(tmp_path / "moved")
        out.path.symlink_to(elsewhere, target_is_directory=True)
        folder.write("cat.jpg", b"data")
    assert (tmp_path / "moved" / "cat.jpg").read_bytes() == b"data"
    assert list(elsewhere.iterdir()) == []


def test_an_open_folder_refuses_unsafe_names_and_symlinks_like_write(out: OutputDir, tmp_path: Path) -> None:
    (tmp_path / "victim.txt").write_bytes(b"precious")
    with out.open() as folder:
        (out.path / "cat.jpg").symlink_to(tmp_path / "victim.txt")
        for name, reason in (("../x.jpg", "unsafe_name"), ("cat.jpg", "unsafe_path")):
            with pytest.raises(StoreError) as caught:
                folder.write(name, b"attacker bytes")
            assert caught.value.reason == reason
    assert (tmp_path / "victim.txt").read_bytes() == b"precious"
    assert leftovers(out.path) == []
