"""Replica roles of the metadata quorum and the one table of allowed transitions.

Rule 1: every role change goes through :func:`check_transition`, which consults
:data:`ALLOWED_TRANSITIONS`; nothing else decides whether a change is legal.
Rule 2: this module never knows *why* a transition happens (a timer, a message); the node does.

Theory of operation (KIP-595 with KIP-996 pre-vote, as in Kafka 4.0's ``QuorumState``)
-------------------------------------------------------------------------------------
A replica is always in exactly one role for one epoch:

* ``UNATTACHED``: no leader known for the epoch.  It may have voted (``voted_id``), which is
  Kafka's old "Voted" state.  A voter whose election timer expires turns ``PROSPECTIVE``.
* ``PROSPECTIVE`` (KIP-996): asks the other voters for *pre-votes* without bumping the epoch.
  A majority of grants makes it ``CANDIDATE``; losing (timeout or a majority of rejections)
  sends it back to ``FOLLOWER`` of the leader it knew, or ``UNATTACHED``.  This is what stops a
  voter that was partitioned away from inflating the epoch and disrupting a healthy leader.
* ``CANDIDATE``: bumped the epoch and durably voted for itself.  A majority of votes makes it
  ``LEADER``; after an election timeout and a random backoff it turns ``PROSPECTIVE`` again.
* ``LEADER``: appends and replicates.  Check-quorum (no Fetch from a majority for 1.5 x the
  fetch timeout) or shutdown makes it ``RESIGNED``.
* ``FOLLOWER``: fetches from the known leader; an expired fetch timer makes a voter
  ``PROSPECTIVE`` (an observer ``UNATTACHED``).
* ``RESIGNED``: a former leader that sent EndQuorumEpoch and waits for its election timer.  It
  never leads the same epoch again, which is also how a restarted leader comes back.

Any message with a higher epoch moves a replica to ``FOLLOWER`` (leader named) or
``UNATTACHED`` (no leader named); these rows are in the table like every other.  Observers
(brokers that are not voters) only ever use ``UNATTACHED`` and ``FOLLOWER``.

Persistence: the (epoch, leader_id, voted_id) triple of :class:`QuorumState` is written durably
before any message that depends on it leaves the node (``ready.py``'s contract).  Kafka skips the
write on Leader -> Resigned; we write whenever the triple changes, which covers that case too.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["Role", "QuorumState", "ALLOWED_TRANSITIONS", "OBSERVER_ROLES", "check_transition",
           "IllegalTransitionError"]


class Role(Enum):
    UNATTACHED = "unattached"
    PROSPECTIVE = "prospective"
    CANDIDATE = "candidate"
    LEADER = "leader"
    FOLLOWER = "follower"
    RESIGNED = "resigned"


_U, _P, _C, _L, _F, _R = (Role.UNATTACHED, Role.PROSPECTIVE, Role.CANDIDATE, Role.LEADER,
                          Role.FOLLOWER, Role.RESIGNED)

#: (from, to) -> the trigger, as documentation and as the legality check.  Rows that name the
#: same role on both sides are epoch changes (or, for CANDIDATE, a retry without pre-vote).
ALLOWED_TRANSITIONS: dict[tuple[Role, Role], str] = {
    (_U, _U): "higher epoch, no leader named",
    (_U, _P): "election timer expired",
    (_U, _C): "election timer expired with pre-vote disabled, or the only voter",
    (_U, _F): "leader discovered (equal or higher epoch)",
    (_P, _U): "higher epoch, or election lost with no known leader",
    (_P, _C): "majority of pre-votes granted",
    (_P, _F): "leader discovered, or election lost while a leader is known",
    (_C, _U): "higher epoch, no leader named",
    (_C, _P): "election timer and backoff expired",
    (_C, _C): "election timer and backoff expired with pre-vote disabled",
    (_C, _L): "majority of votes granted",
    (_C, _F): "leader discovered (equal or higher epoch)",
    (_L, _U): "higher epoch, no leader named",
    (_L, _F): "higher epoch with a leader named",
    (_L, _R): "check-quorum failed, or graceful shutdown",
    (_F, _U): "higher epoch, no leader named; or an observer's fetch timer expired",
    (_F, _P): "fetch timer expired",
    (_F, _C): "fetch timer expired with pre-vote disabled",
    (_F, _F): "higher epoch with a leader named",
    (_R, _U): "higher epoch, no leader named",
    (_R, _P): "election timer expired",
    (_R, _C): "election timer expired with pre-vote disabled",
    (_R, _F): "higher epoch with a leader named",
}

#: The roles an observer may take.
OBSERVER_ROLES = frozenset({_U, _F})


class IllegalTransitionError(AssertionError):
    """A role change that :data:`ALLOWED_TRANSITIONS` does not list: a bug in the node."""


def check_transition(source: Role, target: Role, *, is_voter: bool) -> None:
    """Raise :class:`IllegalTransitionError` unless ``source -> target`` is allowed."""
    if (source, target) not in ALLOWED_TRANSITIONS:
        raise IllegalTransitionError(f"{source.value} -> {target.value} is not allowed")
    if not is_voter and target not in OBSERVER_ROLES:
        raise IllegalTransitionError(f"an observer cannot become {target.value}")


@dataclass(frozen=True, slots=True)
class QuorumState:
    """The durable election state (Kafka's ``QuorumStateData`` v1: LeaderId, LeaderEpoch,
    VotedId).  -1 means none; a fresh replica is ``QuorumState(0, -1, -1)``."""

    epoch: int = 0
    leader_id: int = -1
    voted_id: int = -1

    def __post_init__(self) -> None:
        assert self.epoch >= 0, self
        assert self.leader_id >= -1 and self.voted_id >= -1, self
