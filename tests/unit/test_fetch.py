"""The pure parts of fetching: URL checks, Retry-After parsing, reading local files.

``fetch_url`` itself talks to a server and is tested elsewhere.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.errors import FetchError
from pipeline.core.fetch import _retry_after, check_url, read_file


def fetch_error(call: object, *args: object) -> FetchError:
    with pytest.raises(FetchError) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value


# --- check_url --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["http://example.com/a.jpg", "https://example.com:8443/p/a.png?x=1", "HTTPS://EXAMPLE.COM/a.jpg"]
)
def test_http_and_https_urls_are_accepted(url: str) -> None:
    assert check_url(url).scheme in ("http", "https")


@pytest.mark.parametrize("url", ["ftp://example.com/a.jpg", "file:///etc/passwd", "gopher://x/1", "data://x"])
def test_other_schemes_are_refused_as_unsupported_scheme(url: str) -> None:
    error = fetch_error(check_url, url)
    assert error.reason == "unsupported_scheme"
    assert url.split(":", 1)[0] in error.detail


@pytest.mark.parametrize("url", ["http://", "https://", "http:///just/a/path", "http://[::1", "http://a:99999/"])
def test_urls_without_a_usable_host_are_invalid(url: str) -> None:
    error = fetch_error(check_url, url)
    assert error.reason == "invalid_url"
    assert url in error.detail


# --- Retry-After ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [("5", 5.0), (" 7 ", 7.0), ("0", 0.0), ("2.5", 2.5), ("-3", 0.0), ("9999", 60.0), ("1e400", 60.0)],
)
def test_retry_after_seconds_are_read_and_capped(header: str, expected: float) -> None:
    assert _retry_after(header, cap=60.0) == expected


def test_retry_after_an_http_date_is_the_seconds_until_then() -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    wait = _retry_after(soon, cap=60.0)
    assert wait is not None
    assert 25 <= wait <= 30


def test_retry_after_a_date_far_ahead_is_capped() -> None:
    assert _retry_after("Fri, 01 Jan 2100 00:00:00 GMT", cap=10.0) == 10.0


def test_retry_after_a_date_in_the_past_means_now() -> None:
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT", cap=10.0) == 0.0


@pytest.mark.parametrize("header", [None, "", "soon", "Someday, 99 Foo 2020", "Wed, 21 Oct 99999 07:28:00 GMT", "0x10"])
def test_retry_after_garbage_is_ignored(header: str | None) -> None:
    assert _retry_after(header, cap=10.0) is None


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=40))
def test_retry_after_never_raises_and_stays_within_the_cap(header: str) -> None:
    wait = _retry_after(header, cap=10.0)
    assert wait is None or 0.0 <= wait <= 10.0


# --- read_file ----------------------------------------------------------------------


def test_read_file_returns_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "cat.jpg"
    path.write_bytes(b"\xff\xd8 fake jpeg \xff\xd9")
    assert read_file(str(path), max_bytes=1024) == b"\xff\xd8 fake jpeg \xff\xd9"


def test_read_file_accepts_a_file_exactly_at_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "cat.jpg"
    path.write_bytes(b"x" * 100)
    assert len(read_file(str(path), max_bytes=100)) == 100


def test_an_empty_file_reads_as_no_bytes(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert read_file(str(path), max_bytes=1024) == b""


def test_a_file_whose_stat_tells_no_size_is_read_to_its_end_within_the_cap() -> None:
    assert b"Name:" in read_file("/proc/self/status", max_bytes=1 << 20)  # st_size is 0 in /proc
    assert fetch_error(read_file, "/proc/self/status", 10).reason == "too_large"


def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    missing = str(tmp_path / "gone.jpg")
    error = fetch_error(read_file, missing, 1024)
    assert error.reason == "not_found"
    assert missing in error.detail


def test_a_file_over_the_cap_is_too_large(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(b"x" * 101)
    error = fetch_error(read_file, str(path), 100)
    assert error.reason == "too_large"
    assert "100" in error.detail


def test_a_file_that_grows_past_the_cap_after_its_size_was_checked_is_too_large(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "growing.jpg"
    path.write_bytes(b"x" * 10)
    real_fstat = os.fstat

    def fstat_then_grow(fd: int) -> Any:
        info = real_fstat(fd)
        with path.open("ab") as grow:  # grows between the stat and the read
            grow.write(b"x" * 490)
        return info

    monkeypatch.setattr(os, "fstat", fstat_then_grow)
    assert fetch_error(read_file, str(path), 100).reason == "too_large"


def test_a_file_that_grows_under_the_cap_after_its_size_was_checked_is_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "growing.jpg"
    path.write_bytes(b"x" * 10)
    real_fstat = os.fstat

    def fstat_then_grow(fd: int) -> Any:
        info = real_fstat(fd)
        with path.open("ab") as grow:
            grow.write(b"y" * 90)
        return info

    monkeypatch.setattr(os, "fstat", fstat_then_grow)
    assert read_file(str(path), 1024) == b"x" * 10 + b"y" * 90


@pytest.mark.parametrize("cap", [1024, 10])
def test_a_directory_is_not_found_whatever_the_cap(tmp_path: Path, cap: int) -> None:
    error = fetch_error(read_file, str(tmp_path), cap)
    assert error.reason == "not_found"
    assert "directory" in error.detail


def test_an_unreadable_file_is_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.jpg"
    path.write_bytes(b"x")

    real_open = os.open

    def refuse(file: Any, *args: Any, **kwargs: Any) -> Any:
        if file == str(path):
            raise PermissionError(13, "Permission denied", file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    error = fetch_error(read_file, str(path), 1024)
    assert error.reason == "permission_denied"
    assert str(path) in error.detail


def test_a_named_pipe_is_refused_at_once_without_blocking_on_a_writer(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "p1.jpg")
    with pytest.raises(FetchError) as refused:
        read_file(str(tmp_path / "p1.jpg"), 1000)  # a blocking open would wait here for ever
    assert refused.value.reason == "not_a_file"
    assert "named pipe" in refused.value.detail


def test_a_device_is_refused_as_not_a_file() -> None:
    with pytest.raises(FetchError) as refused:
        read_file("/dev/zero", 1000)
    assert refused.value.reason == "not_a_file"
