"""The worker's budget of large bodies (pipeline.core.bodies), on a real event loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from pipeline.core.bodies import BodyBudget
from pipeline.core.errors import FetchError

MiB = 2**20


def test_the_budget_holds_bytes_so_many_photos_fit_where_whole_cap_slots_held_five() -> None:
    async def scenario() -> int:
        budget = BodyBudget(256 * MiB, 50 * MiB)
        holds = [budget.hold() for _ in range(51)]
        for hold in holds[:50]:
            await asyncio.wait_for(hold.take(5 * MiB), 1)
        return budget.used

    assert asyncio.run(scenario()) == 250 * MiB


def test_a_body_of_the_cap_always_fits_alone_even_over_a_smaller_budget() -> None:
    async def scenario() -> int:
        budget = BodyBudget(10, 50 * MiB)
        hold = budget.hold()
        await asyncio.wait_for(hold.take(), 1)  # no declared length: the cap
        return hold.nbytes

    assert asyncio.run(scenario()) == 50 * MiB


def test_a_large_body_waits_for_room_and_gets_it_when_another_is_released_from_a_thread() -> None:
    async def scenario() -> list[str]:
        budget = BodyBudget(2, 1)  # room for two bodies of the cap
        first, second, third = budget.hold(), budget.hold(), budget.hold()
        await first.take()
        await second.take()
        order: list[str] = []

        async def waiter() -> None:
            await third.take()
            order.append("third took room")

        task = asyncio.create_task(waiter())
        await asyncio.sleep(0.05)
        order.append("still waiting")
        threading.Thread(target=first.release).start()  # released by a recording thread
        await asyncio.wait_for(task, 5)
        return order

    assert asyncio.run(scenario()) == ["still waiting", "third took room"]


def test_a_waiting_large_body_is_not_overtaken_by_smaller_ones() -> None:
    async def scenario() -> list[str]:
        budget = BodyBudget(10 * MiB, 10 * MiB)
        first = budget.hold()
        await first.take(6 * MiB)
        order: list[str] = []

        async def take(name: str, nbytes: int) -> None:
            await budget.hold().take(nbytes)
            order.append(name)

        big = asyncio.create_task(take("big", 8 * MiB))
        await asyncio.sleep(0.01)
        small = asyncio.create_task(take("small", 3 * MiB))  # would fit now, but the big one came first
        await asyncio.sleep(0.05)
        order.append("both waiting")
        first.release()
        await asyncio.wait_for(big, 1)
        await asyncio.sleep(0.05)
        order.append("small still waiting" if not small.done() else "small done")
        small.cancel()
        return order

    assert asyncio.run(scenario()) == ["both waiting", "big", "small still waiting"]


def test_a_cancelled_waiter_leaves_no_reservation_and_lets_the_next_one_in() -> None:
    async def scenario() -> int:
        budget = BodyBudget(2, 2)
        first = budget.hold()
        await first.take()
        cancelled = asyncio.create_task(budget.hold().take(2))
        await asyncio.sleep(0.01)
        cancelled.cancel()
        await asyncio.sleep(0.01)
        first.release()
        after = budget.hold()
        await asyncio.wait_for(after.take(2), 1)
        return budget.used

    assert asyncio.run(scenario()) == 2


def test_release_is_idempotent_and_a_released_hold_takes_nothing_after() -> None:
    async def scenario() -> int:
        budget = BodyBudget(1, 1)
        hold = budget.hold()
        await hold.take()
        hold.release()
        hold.release()
        await hold.take()  # closed: a request still reading after its owner let go takes nothing
        other = budget.hold()
        await asyncio.wait_for(other.take(), 1)  # the room is free
        return int(other.taken)

    assert asyncio.run(scenario()) == 1


def test_a_batch_that_holds_room_is_refused_more_instead_of_waiting_on_itself() -> None:
    async def scenario() -> None:
        budget = BodyBudget(2 * MiB, 2 * MiB)
        batch = budget.group()
        first, second = batch.hold(), batch.hold()
        await first.take(2 * MiB)
        await asyncio.wait_for(second.take(2 * MiB), 1)  # refused at once, not after a timeout

    with pytest.raises(FetchError) as refused:
        asyncio.run(scenario())
    assert refused.value.reason == "deferred"


def test_a_batch_that_holds_nothing_waits_for_room() -> None:
    async def scenario() -> bool:
        budget = BodyBudget(2 * MiB, 2 * MiB)
        other = budget.hold()
        await other.take(2 * MiB)
        hold = budget.group().hold()
        task = asyncio.create_task(hold.take(2 * MiB))
        await asyncio.sleep(0.05)
        waiting = not task.done()
        other.release()
        await asyncio.wait_for(task, 1)
        return waiting and hold.taken

    assert asyncio.run(scenario()) is True


def test_two_batches_each_holding_room_never_wait_on_each_other() -> None:
    async def scenario() -> list[str]:
        budget = BodyBudget(2 * MiB, 2 * MiB)
        a, b = budget.group(), budget.group()
        await a.hold().take(MiB)
        await b.hold().take(MiB)
        outcomes = []
        for group in (a, b):
            try:
                await asyncio.wait_for(group.hold().take(MiB), 1)
                outcomes.append("took")
            except FetchError as exc:
                outcomes.append(exc.reason)
        return outcomes

    assert asyncio.run(scenario()) == ["deferred", "deferred"]


def test_a_cancelled_head_of_the_queue_lets_a_smaller_waiter_behind_it_in() -> None:
    async def scenario() -> bool:
        budget = BodyBudget(10 * MiB, 10 * MiB)
        first = budget.hold()
        await first.take(6 * MiB)
        head = asyncio.create_task(budget.hold().take(8 * MiB))  # cannot fit while the first holds 6
        await asyncio.sleep(0.01)
        small = budget.hold()
        behind = asyncio.create_task(small.take(3 * MiB))  # would fit now, but queues behind the head
        await asyncio.sleep(0.01)
        queued = not behind.done()
        head.cancel()
        await asyncio.wait_for(behind, 1)
        return queued and small.taken

    assert asyncio.run(scenario()) is True


def test_room_granted_to_a_waiter_cancelled_in_the_same_step_goes_back() -> None:
    async def scenario() -> int:
        budget = BodyBudget(2 * MiB, 2 * MiB)
        first = budget.hold()
        await first.take(2 * MiB)
        waiter = asyncio.create_task(budget.hold().take(2 * MiB))
        await asyncio.sleep(0.01)
        first.release()  # grants the waiter its room...
        waiter.cancel()  # ...and it is cancelled before it runs again
        await asyncio.gather(waiter, return_exceptions=True)
        return budget.used

    assert asyncio.run(scenario()) == 0


def test_everything_released_leaves_the_budget_empty() -> None:
    async def scenario() -> int:
        budget = BodyBudget(8 * MiB, 4 * MiB)
        holds = [budget.hold() for _ in range(6)]
        tasks = [asyncio.create_task(h.take(3 * MiB)) for h in holds]
        await asyncio.sleep(0.01)
        for hold in holds:  # from a thread, as recording threads do; waiters get room as others let go
            threading.Thread(target=hold.release).start()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0.05)
        return budget.used

    assert asyncio.run(scenario()) == 0


def test_a_batchs_bodies_queued_behind_its_waiting_first_body_are_refused_once_it_has_room() -> None:
    async def scenario() -> list[str]:
        budget = BodyBudget(4 * MiB, 4 * MiB)
        other = budget.hold()
        await other.take(4 * MiB)
        batch = budget.group()
        first, second = batch.hold(), batch.hold()
        waiting = asyncio.create_task(first.take(4 * MiB))  # the batch holds nothing: it may wait
        await asyncio.sleep(0.01)
        queued = asyncio.create_task(second.take(MiB))  # behind it, on the batch's lock
        await asyncio.sleep(0.01)
        other.release()
        await asyncio.wait_for(waiting, 1)
        outcome = await asyncio.gather(queued, return_exceptions=True)
        return ["first took room" if first.taken else "first waits",
                outcome[0].reason if isinstance(outcome[0], FetchError) else "second took room"]  # fmt: skip

    assert asyncio.run(scenario()) == ["first took room", "deferred"]


def test_a_hold_asked_for_more_than_it_holds_lets_go_first_then_waits_for_the_new_size() -> None:
    async def scenario() -> tuple[int, int]:
        budget = BodyBudget(4 * MiB, 4 * MiB)
        hold, other = budget.hold(), budget.hold()
        await hold.take(2 * MiB)
        await other.take(2 * MiB)
        growing = asyncio.create_task(hold.take_at_least(4 * MiB))  # a retry met a bigger body
        await asyncio.sleep(0.01)
        let_go = budget.used  # its 2 MiB went back while it waits: never waiting while holding
        other.release()
        await asyncio.wait_for(growing, 1)
        return let_go, hold.nbytes

    assert asyncio.run(scenario()) == (2 * MiB, 4 * MiB)
