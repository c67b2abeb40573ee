"""The worker's budget of large bodies (pipeline.core.bodies), on a real event loop."""

from __future__ import annotations

import asyncio
import threading

from pipeline.core.bodies import BodyBudget


def test_the_budget_has_as_many_large_slots_as_whole_bodies_fit_and_at_least_one() -> None:
    assert BodyBudget(256 * 2**20, 50 * 2**20).slots == 5
    assert BodyBudget(10, 50 * 2**20).slots == 1


def test_a_large_body_waits_for_a_slot_and_gets_one_when_another_is_released_from_a_thread() -> None:
    async def scenario() -> list[str]:
        budget = BodyBudget(2, 1)  # two slots
        first, second, third = budget.hold(), budget.hold(), budget.hold()
        await first.take()
        await second.take()
        order: list[str] = []

        async def waiter() -> None:
            await third.take()
            order.append("third took a slot")

        task = asyncio.create_task(waiter())
        await asyncio.sleep(0.05)
        order.append("still waiting")
        threading.Thread(target=first.release).start()  # released by a recording thread
        await asyncio.wait_for(task, 5)
        return order

    assert asyncio.run(scenario()) == ["still waiting", "third took a slot"]


def test_release_is_idempotent_and_a_released_hold_takes_nothing_after() -> None:
    async def scenario() -> int:
        budget = BodyBudget(1, 1)
        hold = budget.hold()
        await hold.take()
        hold.release()
        hold.release()
        await hold.take()  # closed: a request still reading after its owner let go takes no slot
        other = budget.hold()
        await asyncio.wait_for(other.take(), 1)  # the one slot is free
        return int(other.taken)

    assert asyncio.run(scenario()) == 1
