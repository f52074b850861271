"""Group states and every allowed transition, as data.

Rule 1: every state change of a classic group goes through :func:`check_transition`, which
consults :data:`CLASSIC_TRANSITIONS`; nothing else decides whether a transition is legal.
Rule 2: this module knows no requests, members or timers; it only names states and triggers.

Theory of operation (classic protocol, KIP-62/KIP-345/KIP-394, Kafka's ``ClassicGroupState``)::

            +-------------------------------------------------------------+
            |                                                             v
        Empty ---(first JoinGroup)---> PreparingRebalance ---(join phase done)---> CompletingRebalance
          ^                              ^      |   ^                                 |   |
          |                              |      |   +---(member joins/leaves/fails)---+   |
          +---(join phase done, no members)     |                                         |
                                         |      +--(all members left)--> Empty            |
                                         |                                  (leader's SyncGroup
                                         +---(member joins/leaves/fails)---- Stable <-- persisted)
        any state ---(DeleteGroups, unload)---> Dead

A group is *Empty* when it has no members (it may still own committed offsets).  A JoinGroup
moves it to *PreparingRebalance*; the first rebalance of an empty group waits
``group.initial.rebalance.delay.ms`` so that members starting together land in one generation.
When every known member has rejoined (or the rebalance timeout has passed, evicting the ones
that did not) the join phase completes: the generation is bumped, a protocol is chosen by vote,
a leader is elected and every parked JoinGroup is answered; the group is then
*CompletingRebalance* until the leader's SyncGroup brings the assignment, which is persisted
before the group becomes *Stable* and the parked SyncGroups are answered.  Any membership change
(a join with new metadata, a leave, a session timeout, a SyncGroup that never came) sends a
Stable or CompletingRebalance group back to PreparingRebalance.  *Dead* is terminal: the group
was deleted or its partition unloaded.

KIP-848 consumer groups have no such table: their state is derived from epochs
(:func:`consumer_group_state`), and each member's reconciliation state is one of
:class:`MemberState`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "ClassicGroupState",
    "ConsumerGroupState",
    "MemberState",
    "Transition",
    "CLASSIC_TRANSITIONS",
    "VALID_PREVIOUS_STATES",
    "IllegalStateTransition",
    "check_transition",
    "consumer_group_state",
]


class ClassicGroupState(enum.Enum):
    """A classic group's state; the value is the name Kafka reports (ListGroups, DescribeGroups)."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


class ConsumerGroupState(enum.Enum):
    """A KIP-848 consumer group's state, derived from its epochs (Kafka's ``ConsumerGroupState``)."""

    EMPTY = "Empty"
    ASSIGNING = "Assigning"
    RECONCILING = "Reconciling"
    STABLE = "Stable"
    DEAD = "Dead"


class MemberState(enum.IntEnum):
    """A KIP-848 member's reconciliation state; the value is stored in
    ConsumerGroupCurrentMemberAssignmentValue.state."""

    STABLE = 0
    UNREVOKED_PARTITIONS = 1
    UNRELEASED_PARTITIONS = 2
    UNKNOWN = 127


@dataclass(frozen=True, slots=True)
class Transition:
    source: ClassicGroupState
    target: ClassicGroupState
    trigger: str
    """What causes it, in words (the tests drive each row)."""


_S = ClassicGroupState

#: Every legal classic transition and what triggers it.
CLASSIC_TRANSITIONS: tuple[Transition, ...] = (
    Transition(_S.EMPTY, _S.PREPARING_REBALANCE, "a member joins an empty group"),
    Transition(_S.STABLE, _S.PREPARING_REBALANCE,
               "a member joins with new metadata, the leader rejoins, a member leaves or fails"),
    Transition(_S.COMPLETING_REBALANCE, _S.PREPARING_REBALANCE,
               "a member joins, leaves, fails or never sends SyncGroup"),
    Transition(_S.PREPARING_REBALANCE, _S.COMPLETING_REBALANCE,
               "every member rejoined, or the rebalance timeout evicted the rest"),
    Transition(_S.PREPARING_REBALANCE, _S.EMPTY, "the join phase completes with no members"),
    Transition(_S.COMPLETING_REBALANCE, _S.STABLE, "the leader's assignment is persisted"),
    Transition(_S.EMPTY, _S.DEAD, "DeleteGroups, offsets expiry, or partition unload"),
    Transition(_S.PREPARING_REBALANCE, _S.DEAD, "partition unload"),
    Transition(_S.COMPLETING_REBALANCE, _S.DEAD, "partition unload"),
    Transition(_S.STABLE, _S.DEAD, "partition unload"),
    Transition(_S.DEAD, _S.DEAD, "unload of a group already dead"),
)

#: target state -> states it may be entered from (Kafka's ``validPreviousStates``).
VALID_PREVIOUS_STATES: dict[ClassicGroupState, frozenset[ClassicGroupState]] = {
    state: frozenset(t.source for t in CLASSIC_TRANSITIONS if t.target is state)
    for state in ClassicGroupState
}


class IllegalStateTransition(AssertionError):
    """A programming error: code tried a transition the table does not allow."""


def check_transition(source: ClassicGroupState, target: ClassicGroupState) -> None:
    """Raise :class:`IllegalStateTransition` unless ``source -> target`` is in the table."""
    if source not in VALID_PREVIOUS_STATES[target]:
        raise IllegalStateTransition(f"group cannot go from {source.value} to {target.value}")


def consumer_group_state(*, member_count: int, group_epoch: int, assignment_epoch: int,
                         all_members_reconciled: bool) -> ConsumerGroupState:
    """Kafka's ``ConsumerGroup.state()``: Empty without members, Assigning while the target
    assignment lags the group epoch, Reconciling while a member lags the target, else Stable."""
    if member_count == 0:
        return ConsumerGroupState.EMPTY
    if group_epoch > assignment_epoch:
        return ConsumerGroupState.ASSIGNING
    if not all_members_reconciled:
        return ConsumerGroupState.RECONCILING
    return ConsumerGroupState.STABLE
