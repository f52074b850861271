"""Majority arithmetic of a static voter set: commit offsets and election outcomes.

This module owns nothing but arithmetic.  It knows no roles, messages or time, so it is tested
exhaustively on its own (``tests/raft/test_quorum.py``), like etcd-raft's ``quorum/majority.go``.
"""

from __future__ import annotations

from enum import Enum
from typing import Iterable, Mapping

__all__ = ["majority_size", "committed_offset", "VoteResult", "vote_result"]


def majority_size(voter_count: int) -> int:
    """The fewest voters that form a majority of ``voter_count``."""
    assert voter_count >= 1, voter_count
    return voter_count // 2 + 1


def committed_offset(end_offsets: Iterable[int]) -> int:
    """The largest offset that a majority of voters hold below (Kafka's
    ``LeaderState.maybeUpdateHighWatermark``: sort descending, take index n/2).

    Args:
        end_offsets: one durable log end offset per voter, the leader's own included; a voter
            never heard from counts as 0.
    """
    offsets = sorted(end_offsets, reverse=True)
    assert offsets, "a quorum has at least one voter"
    return offsets[len(offsets) // 2]


class VoteResult(Enum):
    PENDING = "pending"
    WON = "won"
    LOST = "lost"


def vote_result(voters: Iterable[int], votes: Mapping[int, bool]) -> VoteResult:
    """WON once a majority granted, LOST once a majority can no longer be reached.

    Args:
        voters: the voter ids.
        votes: voter id -> granted; voters missing from it have not answered.  Votes from
            ids that are not voters are ignored.
    """
    voter_set = set(voters)
    granted = sum(1 for voter, ok in votes.items() if ok and voter in voter_set)
    rejected = sum(1 for voter, ok in votes.items() if not ok and voter in voter_set)
    needed = majority_size(len(voter_set))
    if granted >= needed:
        return VoteResult.WON
    if len(voter_set) - rejected < needed:
        return VoteResult.LOST
    return VoteResult.PENDING
