"""The lease rules (``odin.cluster.lease``): who may start a run, and what the leader moves."""

from __future__ import annotations

import math

from odin import config
from odin.cluster import lease
from odin.jobs.fields import Delivery


def test_a_majority_is_counted_with_this_node_among_the_voters() -> None:
    assert lease.quorum_contact([], 1) == math.inf  # alone: always in touch
    assert lease.quorum_contact([5.0, 9.0], 3) == 9.0  # one partner besides itself suffices
    assert lease.quorum_contact([5.0, 9.0, 7.0, 1.0], 5) == 7.0  # two of four partners
    assert lease.quorum_contact([9.0], 5) is None  # too few ever spoke


def test_the_lease_holds_only_while_quorum_contact_is_recent() -> None:
    assert lease.holds_lease(10.0, 10.0 - config.START_LEASE_S / 2)
    assert not lease.holds_lease(10.0, 10.0 - config.START_LEASE_S)
    assert not lease.holds_lease(10.0, None)


def test_a_silent_nodes_run_moves_only_when_it_surely_never_started() -> None:
    heard = 1000.0
    sure = lease.surely_stopped_at(heard)
    assert math.isclose(sure - heard, config.SURE_S) and config.SURE_S > config.START_LEASE_S
    assert lease.move_reason("n1", sure, heard, Delivery.AT_MOST_ONCE) is not None
    assert lease.move_reason("n1", sure - 0.01, heard, Delivery.AT_MOST_ONCE) is None
    unsure = lease.move_reason("n1", sure - 0.01, heard, Delivery.AT_LEAST_ONCE)
    assert unsure is not None and "at-least-once" in unsure


def test_a_silent_node_first_gets_no_new_runs_then_loses_its_planned_ones() -> None:
    assert lease.state_of(0.05) is lease.LeaseState.HELD
    assert lease.state_of(config.SUSPECT_S + 0.01) is lease.LeaseState.EXPIRING
    assert lease.state_of(config.SURE_S + 0.01) is lease.LeaseState.EXPIRED
    assert config.SUSPECT_S < config.SURE_S
