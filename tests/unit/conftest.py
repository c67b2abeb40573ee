"""Fixtures shared by unit tests that need a running event loop of the worker's kind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from workers.loop import EventLoopThread


@pytest.fixture
def loop_thread() -> Iterator[EventLoopThread]:
    """A worker-style event loop on its own thread, stopped after the test."""
    thread = EventLoopThread("test-loop")
    thread.start()
    yield thread
    thread.stop()
