"""The values a Raft core exchanges: log batches, snapshot ids and the KRaft RPC bodies.

This module owns the *core's* view of the KRaft RPCs (KIP-595, KIP-630, KIP-996): one frozen
dataclass per request and response, carrying only the fields the state machine reads.  It never
knows bytes: ``raft/transport.py`` maps these to and from Kafka's generated wire classes
(``VoteRequest`` v0-v2, ``BeginQuorumEpoch``, ``EndQuorumEpoch``, ``Fetch``, ``FetchSnapshot``)
and fills the *echo* fields of a response (``pre_vote``, ``fetch_offset``, ``snapshot_id``) from
the request it answers, exactly as Kafka's ``RaftRequest.Outbound`` keeps the request beside the
response.

Every message has a ``sequence``: a request's is chosen by whoever delivers it (the sender's
core for its own Fetches, the transport for requests arriving from the network), and every
response repeats the sequence of the request it answers.  That is how the transport routes a
response to the connection and correlation id it belongs to, and how a follower ignores answers
to Fetches it has already given up on.  Sequences never go on the wire.

Offsets follow Kafka: an offset is a record position, and every ``*end_offset`` is exclusive.
A :class:`Batch` occupies ``len(records)`` consecutive offsets and has one epoch, so epoch
boundaries are always batch boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Union

__all__ = [
    "Batch",
    "SnapshotId",
    "OffsetAndEpoch",
    "VoteRequest",
    "VoteResponse",
    "BeginQuorumEpochRequest",
    "BeginQuorumEpochResponse",
    "EndQuorumEpochRequest",
    "EndQuorumEpochResponse",
    "FetchRequest",
    "FetchResponse",
    "FetchSnapshotRequest",
    "FetchSnapshotResponse",
    "Message",
    "Envelope",
    "NO_LEADER",
    "BATCH_OVERHEAD_BYTES",
]

#: Kafka's "no leader" id (-1) in every leader field.
NO_LEADER = -1
#: Bytes charged per batch when the core budgets a Fetch response (the v2 batch header).
BATCH_OVERHEAD_BYTES = 61


@dataclass(frozen=True, slots=True)
class Batch:
    """Records appended together by one leader: they share ``epoch`` and commit together.

    Attributes:
        base_offset: offset of the first record.
        epoch: the leader epoch that appended the batch (Kafka's ``partitionLeaderEpoch``).
        records: opaque record values; at least one.
        control: a KRaft control batch (LeaderChangeMessage); the application skips it.
    """

    base_offset: int
    epoch: int
    records: tuple[bytes, ...]
    control: bool = False

    @property
    def end_offset(self) -> int:
        """Offset just past the batch's last record."""
        return self.base_offset + len(self.records)

    @property
    def size_bytes(self) -> int:
        return BATCH_OVERHEAD_BYTES + sum(len(record) for record in self.records)


class SnapshotId(NamedTuple):
    """A snapshot of everything below ``end_offset``; ``epoch`` is that of offset end-1."""

    end_offset: int
    epoch: int


class OffsetAndEpoch(NamedTuple):
    """Kafka's OffsetAndEpoch; compared lexicographically on (epoch, offset)."""

    epoch: int
    offset: int


# ---------------------------------------------------------------------------------- Vote


@dataclass(frozen=True, slots=True)
class VoteRequest:
    """Vote (52).  ``epoch`` is the candidate's bumped epoch, or for a pre-vote (KIP-996) the
    sender's current epoch, unbumped."""

    epoch: int
    candidate_id: int
    voter_id: int
    last_offset_epoch: int
    last_offset: int
    pre_vote: bool = False
    sequence: int = 0


@dataclass(frozen=True, slots=True)
class VoteResponse:
    error_code: int
    leader_id: int
    leader_epoch: int
    vote_granted: bool
    pre_vote: bool = False
    """Echo of the request's flag (the transport fills it from the request)."""
    sequence: int = 0


# ---------------------------------------------------------------------- BeginQuorumEpoch


@dataclass(frozen=True, slots=True)
class BeginQuorumEpochRequest:
    leader_id: int
    leader_epoch: int
    voter_id: int
    sequence: int = 0


@dataclass(frozen=True, slots=True)
class BeginQuorumEpochResponse:
    error_code: int
    leader_id: int
    leader_epoch: int
    sequence: int = 0


# ------------------------------------------------------------------------ EndQuorumEpoch


@dataclass(frozen=True, slots=True)
class EndQuorumEpochRequest:
    leader_id: int
    leader_epoch: int
    preferred_successors: tuple[int, ...]
    """Other voters, most caught-up first (KIP-595 "preferred successors")."""
    sequence: int = 0


@dataclass(frozen=True, slots=True)
class EndQuorumEpochResponse:
    error_code: int
    leader_id: int
    leader_epoch: int
    sequence: int = 0


# ---------------------------------------------------------------------------------- Fetch


@dataclass(frozen=True, slots=True)
class FetchRequest:
    replica_id: int
    current_leader_epoch: int
    fetch_offset: int
    last_fetched_epoch: int
    max_wait_ticks: int
    max_bytes: int
    sequence: int = 0
    """The sender's own request number; never on the wire (see FetchResponse.sequence)."""


@dataclass(frozen=True, slots=True)
class FetchResponse:
    error_code: int
    leader_id: int
    leader_epoch: int
    high_watermark: int
    """-1 while the leader has not committed a record of its own epoch."""
    log_start_offset: int
    fetch_offset: int
    """Echo of the request's fetch offset."""
    diverging_epoch: OffsetAndEpoch | None = None
    snapshot_id: SnapshotId | None = None
    batches: tuple[Batch, ...] = ()
    sequence: int = 0
    """Echo of the request's sequence: a follower acts only on the answer to its latest Fetch
    (the transport fills it from the request, like Kafka's correlation id)."""


@dataclass(frozen=True, slots=True)
class FetchSnapshotRequest:
    replica_id: int
    current_leader_epoch: int
    snapshot_id: SnapshotId
    position: int
    max_bytes: int
    sequence: int = 0


@dataclass(frozen=True, slots=True)
class FetchSnapshotResponse:
    error_code: int
    leader_id: int
    leader_epoch: int
    snapshot_id: SnapshotId
    size: int
    position: int
    data: bytes = b""
    sequence: int = 0


Message = Union[
    VoteRequest, VoteResponse, BeginQuorumEpochRequest, BeginQuorumEpochResponse,
    EndQuorumEpochRequest, EndQuorumEpochResponse, FetchRequest, FetchResponse,
    FetchSnapshotRequest, FetchSnapshotResponse,
]

REQUEST_TYPES = (VoteRequest, BeginQuorumEpochRequest, EndQuorumEpochRequest, FetchRequest,
                 FetchSnapshotRequest)


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message in flight: who sent it, who must receive it, and the body."""

    source: int
    destination: int
    message: Message

    @property
    def is_request(self) -> bool:
        return isinstance(self.message, REQUEST_TYPES)
