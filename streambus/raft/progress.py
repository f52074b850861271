"""What a leader knows about each replica that fetches from it.

This module owns the per-replica bookkeeping of Kafka's ``LeaderState.ReplicaState``: the end
offset the replica reported with its last valid Fetch, when it last fetched, and when it was
last caught up (the ISR rule of ``Replica.updateFetchStateOrThrow``, which DescribeQuorum's
``LastCaughtUpTimestamp`` reports).  Times are logical ticks; the driver turns them into
milliseconds.  Pull replication needs no etcd-style probe/replicate/snapshot *send* states: the
follower's Fetch carries its position, so the leader's only job is to remember it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ReplicaProgress"]


@dataclass(slots=True)
class ReplicaProgress:
    """One replica's progress as seen by the leader of one epoch.

    Attributes:
        replica_id: the fetching replica.
        end_offset: the fetch offset of its last valid Fetch (-1: never fetched this epoch).
            A voter fsyncs before fetching, so everything below it is durable there.
        last_fetch_tick: tick of that Fetch (-1: never).
        last_caught_up_tick: last tick at which it was known to hold the leader's log end.
        acknowledged: it answered BeginQuorumEpoch or fetched in this epoch.
        high_watermark_sent: see below.
    """

    replica_id: int
    end_offset: int = -1
    last_fetch_tick: int = -1
    last_caught_up_tick: int = -1
    acknowledged: bool = False
    high_watermark_sent: int = -1
    """The high watermark in the last Fetch response sent to it; a parked Fetch is answered
    at once when ours is newer."""
    _previous_leader_end_offset: int = -1
    _previous_fetch_tick: int = -1

    def record_fetch(self, fetch_offset: int, leader_end_offset: int, now_tick: int) -> None:
        """Note a valid Fetch at ``fetch_offset`` while the leader's log ends at
        ``leader_end_offset``."""
        assert fetch_offset >= 0 and now_tick >= 0
        if fetch_offset >= leader_end_offset:
            self.last_caught_up_tick = max(self.last_caught_up_tick, now_tick)
        elif fetch_offset >= self._previous_leader_end_offset >= 0:
            self.last_caught_up_tick = max(self.last_caught_up_tick, self._previous_fetch_tick)
        self._previous_leader_end_offset = leader_end_offset
        self._previous_fetch_tick = now_tick
        self.end_offset = fetch_offset
        self.last_fetch_tick = now_tick
        self.acknowledged = True
