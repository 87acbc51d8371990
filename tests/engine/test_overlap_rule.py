"""Which other run blocks a tick under ``overlap: skip``: the node's own runs are known first hand."""

from __future__ import annotations

import dataclasses

from odin.cluster.model import Run, RunReason, RunStatus
from odin.engine.rules import another_going

T0 = 1_800_000_000.0


def tick(offset: float, node: str = "n1", status: RunStatus = RunStatus.PLANNED) -> Run:
    return Run(
        id=f"abc@{T0 + offset}",
        job_id="abc",
        owner_uid=1000,
        instant=T0 + offset,
        reason=RunReason.SCHEDULE,
        node=node,
        planned_at=T0 - 1,
        status=status,
    )


def test_a_run_that_ended_here_does_not_block_while_its_finish_is_on_the_way() -> None:
    before = tick(0, status=RunStatus.RUNNING)  # the log has not heard it finished yet
    now = tick(2)
    assert not another_going(now, [before, now], "n1", live_here=[])


def test_a_run_still_going_here_blocks_before_the_log_hears_of_its_start() -> None:
    before = tick(0)  # planned in the log: its start is reported only after a second
    now = tick(2)
    assert another_going(now, [before, now], "n1", live_here=[before])


def test_a_run_on_another_node_blocks_while_the_log_says_it_runs() -> None:
    before = tick(0, node="n2", status=RunStatus.RUNNING)
    now = tick(2)
    assert another_going(now, [before, now], "n1", live_here=[])
    ended = dataclasses.replace(before, status=RunStatus.SUCCEEDED)
    assert not another_going(now, [ended, now], "n1", live_here=[])


def test_a_run_never_blocks_itself_nor_does_another_job() -> None:
    now = tick(2, status=RunStatus.RUNNING)
    other_job = dataclasses.replace(tick(0), id="xyz@1", job_id="xyz")
    assert not another_going(now, [now], "n1", live_here=[now, other_job])
