"""``redact``: Redis URLs are safe to print in logs and error messages."""

from __future__ import annotations

import pytest

from pipeline.ledger.connection import redact


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://:s3cret@localhost:6379/0", "redis://:***@localhost:6379/0"),
        ("redis://default:s3cret@cache.internal:6380/1", "redis://default:***@cache.internal:6380/1"),
        ("rediss://user:p%40ss@example.com:6380", "rediss://user:***@example.com:6380"),
        ("redis://:s3cret@localhost/0", "redis://:***@localhost/0"),
        ("redis://:s3cret@localhost:6379/0?socket_timeout=5", "redis://:***@localhost:6379/0?socket_timeout=5"),
        ("unix://:s3cret@/var/run/redis.sock?db=2", "unix://:***@/var/run/redis.sock?db=2"),
    ],
)
def test_redact_hides_the_password(url: str, expected: str) -> None:
    assert redact(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost:6379/0",
        "redis://user@localhost:6379/0",
        "rediss://cache.example.com:6380",
        "unix:///var/run/redis.sock",
        "redis://127.0.0.1",
    ],
)
def test_redact_leaves_urls_without_a_password_alone(url: str) -> None:
    assert redact(url) == url


def test_a_password_with_an_at_sign_does_not_leak() -> None:
    redacted = redact("redis://:p@ss@localhost:6379/0")
    assert "p@ss" not in redacted
    assert redacted.endswith("@localhost:6379/0")


def test_an_empty_password_is_still_masked() -> None:
    assert redact("redis://user:@localhost:6379") == "redis://user:***@localhost:6379"


def test_an_ipv6_host_keeps_its_brackets() -> None:
    assert redact("redis://:s3cret@[::1]:6379/0") == "redis://:***@[::1]:6379/0"


def test_a_url_with_a_bad_port_is_still_redacted_rather_than_raising() -> None:
    assert "s3cret" not in redact("redis://:s3cret@localhost:99999/0")
