"""Majority arithmetic: commit offsets and vote outcomes (etcd-raft ``quorum/majority.go``).

Method: a table of (end offsets, expected commit) and (votes, expected result), then
Hypothesis properties: the commit offset is held by a majority and is the largest such.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streambus.raft.quorum import VoteResult, committed_offset, majority_size, vote_result


@pytest.mark.parametrize(("voters", "majority"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (7, 4)])
def test_majority_size(voters: int, majority: int) -> None:
    assert majority_size(voters) == majority


@pytest.mark.parametrize(("offsets", "expected"), [
    ([5], 5),
    ([5, 0], 0),
    ([5, 3, 0], 3),
    ([0, 3, 5], 3),
    ([2, 2, 9], 2),
    ([9, 8, 7, 1], 7),
    ([10, 1, 1, 10, 10], 10),
    ([10, 1, 1, 10, 2], 2),
])
def test_committed_offset_is_the_majority_floor(offsets: list[int], expected: int) -> None:
    assert committed_offset(offsets) == expected


@given(st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=9))
def test_committed_offset_is_held_by_a_majority_and_is_the_largest_such(offsets: list[int]
                                                                       ) -> None:
    commit = committed_offset(offsets)
    majority = majority_size(len(offsets))
    assert sum(1 for offset in offsets if offset >= commit) >= majority
    assert sum(1 for offset in offsets if offset >= commit + 1) < majority


@pytest.mark.parametrize(("voters", "votes", "expected"), [
    ((1,), {1: True}, VoteResult.WON),
    ((1, 2, 3), {1: True}, VoteResult.PENDING),
    ((1, 2, 3), {1: True, 2: True}, VoteResult.WON),
    ((1, 2, 3), {1: True, 2: False}, VoteResult.PENDING),
    ((1, 2, 3), {1: True, 2: False, 3: False}, VoteResult.LOST),
    ((1, 2, 3, 4), {1: True, 2: True}, VoteResult.PENDING),
    ((1, 2, 3, 4), {1: True, 2: False, 3: False}, VoteResult.LOST),
    ((1, 2, 3, 4, 5), {1: True, 2: True, 9: True}, VoteResult.PENDING),
])
def test_vote_result(voters: tuple[int, ...], votes: dict[int, bool], expected: VoteResult
                     ) -> None:
    assert vote_result(voters, votes) is expected
