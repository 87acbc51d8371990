"""Admission control: bounded slots, handed out manual first, then in instant order."""

from __future__ import annotations

import asyncio

import pytest

from odin.engine.admission import Admission, Priority, Ticket


def _ticket(instant: float, run_id: str, priority: Priority = Priority.SCHEDULED) -> Ticket:
    return Ticket(priority, instant, run_id)


def test_a_free_slot_is_taken_at_once_and_the_limit_holds() -> None:
    async def scenario() -> list[str]:
        gate = Admission(2, clock=lambda: 100.0)
        order: list[str] = []

        async def run(ticket: Ticket) -> None:
            await gate.enter(ticket)
            order.append(ticket.run_id)
            assert gate.view().busy <= 2

        tasks = [asyncio.create_task(run(_ticket(float(i), f"r{i}"))) for i in range(5)]
        await asyncio.sleep(0)
        assert order == ["r0", "r1"]
        assert gate.view().waiting == 3
        assert gate.view().behind_s == pytest.approx(98.0)  # r2's instant was 2.0
        for _ in range(3):
            gate.leave()
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(scenario()) == ["r0", "r1", "r2", "r3", "r4"]


def test_waiters_go_manual_first_then_by_instant() -> None:
    async def scenario() -> list[str]:
        gate = Admission(1, clock=lambda: 0.0)
        await gate.enter(_ticket(0.0, "first"))
        order: list[str] = []

        async def run(ticket: Ticket) -> None:
            await gate.enter(ticket)
            order.append(ticket.run_id)
            gate.leave()

        late = asyncio.create_task(run(_ticket(9.0, "late")))
        early = asyncio.create_task(run(_ticket(3.0, "early")))
        manual = asyncio.create_task(run(_ticket(50.0, "manual", Priority.MANUAL)))
        await asyncio.sleep(0)
        gate.leave()
        await asyncio.gather(late, early, manual)
        assert gate.view().busy == 0
        return order

    assert asyncio.run(scenario()) == ["manual", "early", "late"]


def test_a_cancelled_waiter_never_keeps_a_slot() -> None:
    async def scenario() -> None:
        gate = Admission(1, clock=lambda: 0.0)
        await gate.enter(_ticket(0.0, "holder"))
        gone = asyncio.create_task(gate.enter(_ticket(1.0, "gone")))
        after = asyncio.create_task(gate.enter(_ticket(2.0, "after")))
        await asyncio.sleep(0)
        gone.cancel()
        gate.leave()  # "gone" is cancelled: "after" takes the slot
        await asyncio.sleep(0)
        assert after.done()
        assert gate.view().busy == 1
        assert gate.view().waiting == 0
        gate.leave()
        assert gate.view().busy == 0

    asyncio.run(scenario())


def test_granted_then_cancelled_passes_the_slot_on() -> None:
    async def scenario() -> None:
        gate = Admission(1, clock=lambda: 0.0)
        await gate.enter(_ticket(0.0, "holder"))
        first = asyncio.create_task(gate.enter(_ticket(1.0, "first")))
        second = asyncio.create_task(gate.enter(_ticket(2.0, "second")))
        await asyncio.sleep(0)
        gate.leave()  # grants "first"...
        first.cancel()  # ...which is cancelled before it runs: the slot goes to "second"
        with pytest.raises(asyncio.CancelledError):
            await first
        await second
        assert gate.view().busy == 1

    asyncio.run(scenario())


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Admission(0, clock=lambda: 0.0)


def test_runs_submitted_past_the_limit_hold_a_place_not_a_task_and_go_in_ticket_order() -> None:
    """``submit`` calls back with the slot taken, now or at the run's turn: a burst waiting for
    slots is a heap of tickets (no task per run), served manual first, then by instant."""

    async def scenario() -> tuple[list[str], int]:
        gate = Admission(1, clock=lambda: 0.0)
        began: list[str] = []
        tickets = [
            Ticket(Priority.SCHEDULED, 2.0, "late"),
            Ticket(Priority.SCHEDULED, 1.0, "early"),
            Ticket(Priority.MANUAL, 3.0, "asked"),
        ]
        gate.submit(Ticket(Priority.SCHEDULED, 0.0, "first"), lambda: began.append("first"))
        tasks_before = len(asyncio.all_tasks())
        for ticket in tickets:
            gate.submit(ticket, lambda t=ticket: began.append(t.run_id))
        waiting = gate.view().waiting
        assert len(asyncio.all_tasks()) == tasks_before  # nothing runs while they wait
        for _ in range(4):
            gate.leave()
        return began, waiting

    began, waiting = asyncio.run(scenario())
    assert waiting == 3
    assert began == ["first", "asked", "early", "late"]
