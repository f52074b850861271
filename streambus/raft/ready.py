"""The batch of work a Raft core hands its driver, and the order the driver must do it in.

This module owns the :class:`Ready` contract (etcd-raft's ``Ready``/``Advance`` plus KRaft's
durability rules).  The core never performs I/O; it accumulates a Ready, and the driver — the
asyncio driver in ``raft/driver.py`` or the simulator in ``streambus/testing/sim.py`` — must,
for each Ready, in this order:

1. **Persist** ``quorum_state`` (if not None) durably (write + fsync).  A vote, a candidacy or a
   leadership claim is never visible to another node before it is on disk (KIP-595; the
   PySyncObj double-vote bug in RAFT_AND_REPLICATION.md §6).
2. **Install** ``install_snapshot`` (if not None): save it durably, then drop the whole log so
   it starts empty at the snapshot's end offset.
3. **Truncate** the log to ``truncate_to`` (if not None), dropping every batch at or above it.
4. **Append** ``append`` in order.
5. **Sync**: if ``must_sync``, fsync the log.  Voters always sync before the messages below go
   out, so a Fetch that reports offset N to the leader means N is durable here (Kafka's
   ``appendAsFollower`` flush), and a leader counts its own end offset towards the high
   watermark only after this step (RAFT_AND_REPLICATION.md §5 rule 3, stricter than Kafka).
6. **Trim**: if ``log_start_offset`` is not None, delete log batches wholly below it (a snapshot
   at or above it is already durable).
7. **Send** ``messages``.  Dropping some is allowed (the network may too); reordering is allowed.
8. **Apply**: if ``load_snapshot`` is set, reset the state machine from that stored snapshot
   first; then apply ``committed`` batches in order (control batches carry no application data).
9. Call ``node.advance(ready)``.

A crash may interrupt the list anywhere; the core tolerates that because nothing it promised
to others (step 7) precedes what it must remember (steps 1-5).  The core must not be stepped
between ``ready()`` and ``advance()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streambus.raft.messages import Batch, Envelope, SnapshotId
from streambus.raft.state import QuorumState

__all__ = ["Ready", "Snapshot"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A complete snapshot: its id and its opaque bytes."""

    snapshot_id: SnapshotId
    data: bytes


@dataclass(slots=True)
class Ready:
    """One unit of driver work; see the module docstring for the mandatory order."""

    quorum_state: QuorumState | None = None
    install_snapshot: Snapshot | None = None
    truncate_to: int | None = None
    append: list[Batch] = field(default_factory=list)
    must_sync: bool = False
    log_start_offset: int | None = None
    messages: list[Envelope] = field(default_factory=list)
    load_snapshot: SnapshotId | None = None
    committed: list[Batch] = field(default_factory=list)
    high_watermark: int = 0
    """The committed offset after this Ready (exclusive); committed batches end at or below it."""

    def is_empty(self) -> bool:
        return (self.quorum_state is None and self.install_snapshot is None
                and self.truncate_to is None and not self.append and not self.messages
                and self.log_start_offset is None and self.load_snapshot is None
                and not self.committed)
