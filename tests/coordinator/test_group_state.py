"""The classic state table: exactly Kafka's valid transitions, nothing else.

Method: compare VALID_PREVIOUS_STATES with Kafka's ClassicGroupState.validPreviousStates and
try every (source, target) pair through check_transition.
"""

import itertools

import pytest

from streambus.coordinator.group.state import (
    CLASSIC_TRANSITIONS,
    VALID_PREVIOUS_STATES,
    ClassicGroupState as S,
    ConsumerGroupState,
    IllegalStateTransition,
    check_transition,
    consumer_group_state,
)

KAFKA_VALID_PREVIOUS = {
    S.EMPTY: {S.PREPARING_REBALANCE},
    S.PREPARING_REBALANCE: {S.STABLE, S.COMPLETING_REBALANCE, S.EMPTY},
    S.COMPLETING_REBALANCE: {S.PREPARING_REBALANCE},
    S.STABLE: {S.COMPLETING_REBALANCE},
    S.DEAD: {S.STABLE, S.PREPARING_REBALANCE, S.COMPLETING_REBALANCE, S.EMPTY, S.DEAD},
}


def test_table_matches_kafka_valid_previous_states() -> None:
    assert {k: set(v) for k, v in VALID_PREVIOUS_STATES.items()} == KAFKA_VALID_PREVIOUS


@pytest.mark.parametrize(("source", "target"), list(itertools.product(S, S)),
                         ids=lambda s: s.value)
def test_check_transition_allows_exactly_the_table(source: S, target: S) -> None:
    allowed = any(t.source is source and t.target is target for t in CLASSIC_TRANSITIONS)
    if allowed:
        check_transition(source, target)
    else:
        with pytest.raises(IllegalStateTransition):
            check_transition(source, target)


def test_every_transition_names_its_trigger() -> None:
    assert all(t.trigger for t in CLASSIC_TRANSITIONS)


def test_consumer_group_state_follows_epochs() -> None:
    state = lambda **kw: consumer_group_state(**{"member_count": 1, "group_epoch": 2,  # noqa: E731
                                                 "assignment_epoch": 2,
                                                 "all_members_reconciled": True, **kw})
    assert state(member_count=0) is ConsumerGroupState.EMPTY
    assert state(group_epoch=3) is ConsumerGroupState.ASSIGNING
    assert state(all_members_reconciled=False) is ConsumerGroupState.RECONCILING
    assert state() is ConsumerGroupState.STABLE
