"""Output file names: recognisable, and unable to leave the output folder."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.names import output_name, source_stem

SAFE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")


def assert_safe(name: str) -> None:
    assert name
    assert "/" not in name
    assert "\\" not in name
    assert not name.startswith(".")
    assert SAFE.match(name), name


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("https://example.com/photos/cat.jpg", "cat.webp"),
        ("https://example.com/photos/cat.jpg?size=large&v=2#top", "cat.webp"),
        ("https://example.com/img/My%20Cat%21.png", "My-Cat.webp"),
        ("https://example.com/a%2F..%2F..%2Fetc%2Fpasswd", "passwd.webp"),
        ("https://example.com", "image.webp"),
        ("https://example.com/", "image.webp"),
        ("https://example.com/?id=7", "image.webp"),
        ("https://example.com/download?file=x.jpg", "download.webp"),
    ],
)
def test_names_from_urls_use_the_last_path_segment(src: str, expected: str) -> None:
    assert output_name(src, ".webp") == expected


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("/home/me/photos/Cat 1.JPG", "Cat-1.jpg"),
        ("photos/holiday   snap (2).jpeg", "holiday-snap-2.jpg"),
        ("/photos/Ünïcödé café.png", "n-c-d-caf.jpg"),
        ("/photos/猫.png", "image.jpg"),
        ("../../etc/passwd", "passwd.jpg"),
        ("/etc/shadow", "shadow.jpg"),
        ("..", "image.jpg"),
        ("/photos/.hidden.png", "hidden.jpg"),
        ("/photos/.bashrc", "bashrc.jpg"),
        ("/photos/...", "image.jpg"),
        ("C:\\Users\\me\\Pictures\\dog.bmp", "dog.jpg"),
        ("archive.tar.gz", "archive.tar.jpg"),
        ("noextension", "noextension.jpg"),
    ],
)
def test_names_from_local_paths_keep_only_the_safe_stem(src: str, expected: str) -> None:
    assert output_name(src, ".jpg") == expected


def test_a_very_long_name_is_cut_to_80_characters() -> None:
    stem = source_stem("/p/" + "a" * 500 + ".png")
    assert stem == "a" * 80


def test_the_suffix_is_appended_after_a_dash() -> None:
    assert output_name("/p/cat.png", ".webp", "1a2b3c4d") == "cat-1a2b3c4d.webp"


def test_an_unsafe_suffix_is_cleaned() -> None:
    assert output_name("/p/cat.png", ".webp", "../x/y") == "cat-..xy.webp"


def test_an_empty_suffix_adds_nothing() -> None:
    assert output_name("/p/cat.png", ".webp", "") == output_name("/p/cat.png", ".webp", "/") == "cat.webp"


def test_a_malformed_url_still_gets_a_name() -> None:
    assert output_name("http://[::1/photos/cat.jpg", ".jpg") == "cat.jpg"


@pytest.mark.parametrize(
    "src",
    [
        "../../../../etc/passwd", "/", "", ".", "..", "...", "\\\\server\\share\\..\\x",
        "https://x/%2e%2e%2f%2e%2e%2f", "\0evil.png", "-.-.png", "a/b/\u202egnp.exe",
        "https://example.com/" + "%" * 50, "x" * 10_000,
    ],
)  # fmt: skip
def test_hostile_sources_give_safe_names(src: str) -> None:
    assert_safe(output_name(src, ".jpg"))
    assert_safe(output_name(src, ".jpg", "../h"))


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.text() | st.builds("https://example.com/{}".format, st.text()),
    st.text(max_size=12),
)
def test_any_source_gives_a_safe_name(src: str, suffix: str) -> None:
    name = output_name(src, ".png", suffix)
    assert_safe(name)
    assert name.endswith(".png")
    assert len(source_stem(src)) <= 80
