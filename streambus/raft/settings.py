"""Quorum settings in operator units (milliseconds, host:port) and their tick conversion.

This module owns turning Kafka's ``quorum.*`` settings into a tick-based
:class:`~streambus.raft.node.RaftConfig`; nothing else converts milliseconds to ticks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from streambus.raft.node import RaftConfig

__all__ = ["QuorumSettings", "SNAPSHOT_RECORD_BYTES_DEFAULT"]

#: Kafka's ``metadata.log.max.record.bytes.between.snapshots`` (20 MiB).
SNAPSHOT_RECORD_BYTES_DEFAULT = 20 * 1024 * 1024


def _ticks(ms: int, tick_ms: int) -> int:
    return max(1, (ms + tick_ms - 1) // tick_ms)


@dataclass(frozen=True, slots=True)
class QuorumSettings:
    """Where the voters are and how fast the quorum reacts.

    Attributes:
        node_id: this node.
        voters: voter id -> controller listener (host, port); ``{node_id: None}`` is the
            one-voter quorum of a single node (no listener needed).
        tick_ms: resolution of every timer below.
        election_timeout_ms: ``quorum.election.timeout.ms`` (randomized up to 2x).
        fetch_timeout_ms: ``quorum.fetch.timeout.ms``; a leader resigns after 1.5x without
            Fetches from a majority (check-quorum).
        election_backoff_max_ms: ``quorum.election.backoff.max.ms``.
        request_timeout_ms: resend a request after this long without an answer.
        fetch_max_wait_ms: how long a leader parks a Fetch with nothing to send.
        snapshot_record_bytes: take a metadata snapshot after this many bytes of records.
    """

    node_id: int
    voters: Mapping[int, tuple[str, int] | None] = field(default_factory=dict)
    tick_ms: int = 100
    election_timeout_ms: int = 1000
    fetch_timeout_ms: int = 2000
    election_backoff_max_ms: int = 1000
    request_timeout_ms: int = 500
    fetch_max_wait_ms: int = 500
    snapshot_record_bytes: int = SNAPSHOT_RECORD_BYTES_DEFAULT

    @classmethod
    def single(cls, node_id: int) -> "QuorumSettings":
        return cls(node_id=node_id, voters={node_id: None})

    @property
    def voter_ids(self) -> tuple[int, ...]:
        return tuple(sorted(self.voters)) or (self.node_id,)

    @property
    def is_single_voter(self) -> bool:
        return self.voter_ids == (self.node_id,)

    @property
    def is_voter(self) -> bool:
        return self.node_id in self.voter_ids

    def voter_addresses(self) -> dict[int, tuple[str, int]]:
        return {voter: address for voter, address in self.voters.items() if address is not None}

    def raft_config(self) -> RaftConfig:
        tick = self.tick_ms
        fetch_timeout = _ticks(self.fetch_timeout_ms, tick)
        return RaftConfig(
            node_id=self.node_id,
            voters=self.voter_ids,
            election_timeout_ticks=_ticks(self.election_timeout_ms, tick),
            election_backoff_max_ticks=_ticks(self.election_backoff_max_ms, tick),
            fetch_timeout_ticks=fetch_timeout,
            fetch_max_wait_ticks=min(_ticks(self.fetch_max_wait_ms, tick), fetch_timeout - 1),
            request_timeout_ticks=_ticks(self.request_timeout_ms, tick),
        )
