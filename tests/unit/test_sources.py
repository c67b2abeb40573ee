"""Expanding what the user typed (URLs, lists, files, folders, globs) into items."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

from pipeline.core.errors import SourceError, UsageError
from pipeline.core.sources import Item, expand_sources


def srcs(*args: str) -> list[str]:
    return [item.src for item in expand_sources(args)]


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    for name in [
        "b.jpg", "a.PNG", "c.webp", "notes.txt.bak", "readme.md", ".hidden.jpg",
        "sub/d.gif", "sub/deeper/e.tiff", "sub/f.doc", ".cache/g.jpg", "a-dir/h.jpeg",
    ]:  # fmt: skip
        touch(root / name)
    return root


def test_urls_pass_through_unchanged() -> None:
    url = "https://example.com/a b/cat.jpg?x=1"
    assert srcs(url, "http://example.com/dog.png") == [url, "http://example.com/dog.png"]


def test_any_scheme_passes_through_for_the_fetcher_to_refuse() -> None:
    assert srcs("ftp://example.com/a.jpg") == ["ftp://example.com/a.jpg"]


def test_a_directory_is_walked_recursively_for_images_only_in_sorted_order(photos: Path) -> None:
    assert srcs(str(photos)) == [
        str(photos / "a.PNG"),
        str(photos / "b.jpg"),
        str(photos / "c.webp"),
        str(photos / "a-dir" / "h.jpeg"),
        str(photos / "sub" / "d.gif"),
        str(photos / "sub" / "deeper" / "e.tiff"),
    ]


def test_hidden_files_and_folders_are_skipped(photos: Path) -> None:
    found = srcs(str(photos))
    assert not any("/." in src for src in found)


def test_a_directory_walk_gives_absolute_paths(photos: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(photos.parent)
    assert all(Path(src).is_absolute() for src in srcs("photos"))


def test_a_single_file_is_one_item_with_its_absolute_path(photos: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(photos)
    assert srcs("b.jpg") == [str(photos / "b.jpg")]


def test_a_named_file_is_taken_even_without_an_image_extension(photos: Path) -> None:
    assert srcs(str(photos / "readme.md")) == [str(photos / "readme.md")]


def test_a_url_list_yields_urls_and_paths_relative_to_the_list(tmp_path: Path) -> None:
    listing = tmp_path / "lists" / "urls.txt"
    touch(listing, (
        b"# holiday photos\n"
        b"\n"
        b"https://example.com/1.jpg\n"
        b"   \n"
        b"  https://example.com/2.png  \n"
        b"#https://example.com/commented-out.jpg\n"
        b"local/3.jpg\n"
        b"../up/4.jpg\n"
        b"/abs/5.jpg\n"
    ))  # fmt: skip
    assert srcs(str(listing)) == [
        "https://example.com/1.jpg",
        "https://example.com/2.png",
        str(tmp_path / "lists" / "local" / "3.jpg"),
        str(tmp_path / "up" / "4.jpg"),
        "/abs/5.jpg",
    ]


@pytest.mark.parametrize("suffix", [".txt", ".urls", ".list", ".lst", ".TXT"])
def test_every_url_list_extension_is_read_as_a_list(tmp_path: Path, suffix: str) -> None:
    listing = touch(tmp_path / f"sources{suffix}", b"https://example.com/a.jpg\n")
    assert srcs(str(listing)) == ["https://example.com/a.jpg"]


def test_a_url_list_with_bad_bytes_is_still_read(tmp_path: Path) -> None:
    listing = touch(tmp_path / "urls.txt", b"https://example.com/\xff.jpg\nhttps://example.com/ok.jpg\n")
    found = srcs(str(listing))
    assert found[1] == "https://example.com/ok.jpg"
    assert len(found) == 2


def test_a_url_list_of_only_comments_yields_nothing(tmp_path: Path) -> None:
    assert srcs(str(touch(tmp_path / "urls.txt", b"# nothing yet\n\n"))) == []


def test_a_glob_expands_to_the_matching_files_in_sorted_order(photos: Path) -> None:
    assert srcs(str(photos / "*.jpg")) == [str(photos / "b.jpg")]
    assert srcs(str(photos / "[ab].*")) == [str(photos / "a.PNG"), str(photos / "b.jpg")]


def test_a_recursive_glob_reaches_every_level(photos: Path) -> None:
    assert srcs(str(photos / "**" / "*.gif")) == [str(photos / "sub" / "d.gif")]
    assert srcs(str(photos / "**" / "*.tiff")) == [str(photos / "sub" / "deeper" / "e.tiff")]
    assert srcs(str(photos / "**" / "*.jp*g")) == [str(photos / "a-dir" / "h.jpeg"), str(photos / "b.jpg")]


def test_a_glob_skips_hidden_files(photos: Path) -> None:
    assert str(photos / ".hidden.jpg") not in srcs(str(photos / "*"))


def test_a_glob_matching_a_directory_walks_it(photos: Path) -> None:
    assert srcs(str(photos / "su?")) == [str(photos / "sub" / "d.gif"), str(photos / "sub" / "deeper" / "e.tiff")]


def test_a_missing_path_is_a_source_error_naming_the_path(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope" / "cat.jpg")
    with pytest.raises(SourceError) as caught:
        srcs(missing)
    assert missing in caught.value.message


def test_a_glob_matching_nothing_is_a_source_error_naming_the_pattern(tmp_path: Path) -> None:
    pattern = str(tmp_path / "*.jpg")
    with pytest.raises(SourceError) as caught:
        srcs(pattern)
    assert pattern in caught.value.message
    assert "matches no files" in caught.value.message


def test_source_errors_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        srcs("/definitely/not/here.jpg")


def test_arguments_are_expanded_in_the_order_given(photos: Path) -> None:
    assert srcs("https://example.com/z.jpg", str(photos / "b.jpg"), "https://example.com/a.jpg") == [
        "https://example.com/z.jpg",
        str(photos / "b.jpg"),
        "https://example.com/a.jpg",
    ]


def test_surrounding_whitespace_in_an_argument_is_ignored(photos: Path) -> None:
    assert srcs(f"  {photos / 'b.jpg'}\n") == [str(photos / "b.jpg")]


def test_expansion_is_lazy(tmp_path: Path) -> None:
    items = expand_sources(["https://example.com/a.jpg", str(tmp_path / "missing.jpg")])
    assert isinstance(items, types.GeneratorType)
    assert next(items).src == "https://example.com/a.jpg"  # the bad second argument is not touched yet
    with pytest.raises(SourceError):
        next(items)


def test_a_url_list_is_read_lazily(tmp_path: Path) -> None:
    listing = touch(tmp_path / "urls.txt", b"https://example.com/1.jpg\nhttps://example.com/2.jpg\n")
    items = expand_sources([str(listing)])
    assert next(items).src == "https://example.com/1.jpg"
    listing.unlink()  # the open handle keeps reading; nothing was read ahead into a list
    assert next(items).src == "https://example.com/2.jpg"


def test_an_item_id_is_16_hex_characters() -> None:
    assert re.fullmatch(r"[0-9a-f]{16}", Item.of("https://example.com/a.jpg").id)


def test_the_same_source_always_gets_the_same_id(photos: Path) -> None:
    first = list(expand_sources([str(photos)]))
    again = list(expand_sources([str(photos)]))
    assert first == again
    assert Item.of("x").id == Item.of("x").id


def test_different_sources_get_different_ids(photos: Path) -> None:
    items = list(expand_sources([str(photos)]))
    assert len({item.id for item in items}) == len(items)


def test_a_repeated_source_repeats_its_id_so_the_ledger_can_drop_it() -> None:
    items = list(expand_sources(["https://example.com/a.jpg"] * 2))
    assert items[0] == items[1]


def test_an_item_survives_a_json_round_trip() -> None:
    item = Item.of("https://example.com/a.jpg")
    assert Item.from_json(item.to_json()) == item


def test_an_item_knows_whether_it_is_a_url() -> None:
    assert Item.of("https://example.com/a.jpg").is_url
    assert not Item.of("/photos/a.jpg").is_url


def test_a_glob_selects_only_images_and_never_reads_a_matching_text_file_as_a_url_list(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("http://example.org/x.jpg\n")
    srcs = [item.src for item in expand_sources([str(tmp_path / "*")])]
    assert srcs == [str((tmp_path / "a.jpg").resolve())]


def test_spellings_of_one_url_are_one_item_and_local_paths_are_taken_as_written() -> None:
    ids = {Item.of(src).id for src in ("http://h/a.jpg", "http://h/a.jpg#x", "http://h//a.jpg", "http://H/a%2Ejpg")}
    assert len(ids) == 1
    assert Item.of("http://h/a.jpg#x").src == "http://h/a.jpg#x"  # fetched and named as the user wrote it
    assert Item.of("/photos/a.jpg").id != Item.of("/photos//a.jpg").id


def test_every_image_looking_name_in_a_folder_is_an_item_even_the_ones_not_decoded(tmp_path: Path) -> None:
    names = ["a.jpg", "b.HEIC", "c.svg", "d.svgz", "e.psd", "f.dng", "g.jxl", "h.ico", "i.jfif"]
    for name in [*names, "notes.txt", "doc.pdf", ".hidden.jpg"]:
        (tmp_path / name).write_bytes(b"x")
    found = sorted(Path(item.src).name for item in expand_sources([str(tmp_path)]))
    assert found == sorted(names)


def test_a_named_pipe_in_a_folder_is_an_item_and_one_given_alone_is_refused(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "p1.jpg")
    assert [Path(item.src).name for item in expand_sources([str(tmp_path)])] == ["p1.jpg"]
    with pytest.raises(SourceError, match="not a regular file"):
        list(expand_sources([str(tmp_path / "p1.jpg")]))
