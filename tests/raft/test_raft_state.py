"""Role transitions: one table decides what is legal (DESIGN §1, h11's transition tables).

Method: every row of ALLOWED_TRANSITIONS passes check_transition, everything else raises;
observers are limited to UNATTACHED and FOLLOWER; every role is reachable from UNATTACHED.
"""

from __future__ import annotations

import itertools

import pytest

from streambus.raft.state import (
    ALLOWED_TRANSITIONS,
    IllegalTransitionError,
    QuorumState,
    Role,
    check_transition,
)


@pytest.mark.parametrize(("source", "target"), list(itertools.product(Role, Role)),
                         ids=lambda role: role.value)
def test_only_listed_transitions_are_legal(source: Role, target: Role) -> None:
    if (source, target) in ALLOWED_TRANSITIONS:
        check_transition(source, target, is_voter=True)
    else:
        with pytest.raises(IllegalTransitionError):
            check_transition(source, target, is_voter=True)


def test_observers_only_move_between_unattached_and_follower() -> None:
    check_transition(Role.UNATTACHED, Role.FOLLOWER, is_voter=False)
    check_transition(Role.FOLLOWER, Role.UNATTACHED, is_voter=False)
    for target in (Role.PROSPECTIVE, Role.CANDIDATE, Role.LEADER, Role.RESIGNED):
        with pytest.raises(IllegalTransitionError):
            check_transition(Role.UNATTACHED, target, is_voter=False)


def test_every_role_is_reachable_from_unattached() -> None:
    reached = {Role.UNATTACHED}
    frontier = [Role.UNATTACHED]
    while frontier:
        role = frontier.pop()
        for source, target in ALLOWED_TRANSITIONS:
            if source is role and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(Role)


def test_a_leader_can_only_leave_by_resigning_or_a_higher_epoch() -> None:
    exits = {target for source, target in ALLOWED_TRANSITIONS if source is Role.LEADER}
    assert exits == {Role.RESIGNED, Role.UNATTACHED, Role.FOLLOWER}


def test_quorum_state_defaults_to_nothing_known() -> None:
    assert QuorumState() == QuorumState(epoch=0, leader_id=-1, voted_id=-1)
