"""The worker's private event loop thread (workers.loop)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from workers.loop import EventLoopThread


def test_run_returns_the_coroutines_result_to_the_calling_thread(loop_thread: EventLoopThread) -> None:
    async def answer() -> str:
        return threading.current_thread().name

    assert loop_thread.run(answer()) == "test-loop"


def test_a_coroutine_past_the_callers_timeout_is_cancelled_not_left_running(loop_thread: EventLoopThread) -> None:
    ended = threading.Event()
    outcome: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
            outcome.append("ran to the end")
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        finally:
            ended.set()

    with pytest.raises(TimeoutError):
        loop_thread.run(slow(), timeout=0.05)
    assert ended.wait(5)
    assert outcome == ["cancelled"]
