"""Where a Raft replica keeps its log, its snapshots and its election state.

This module owns the :class:`RaftStorage` protocol and its two implementations:
:class:`MemoryRaftStorage` (the reference, used by the simulator; a crash loses what was never
synced) and :class:`FileRaftStorage` (``streambus/log`` segments plus a ``quorum-state`` file
and ``.checkpoint`` snapshot files, fsynced where Raft requires it).  ``raft/`` touches
``streambus.log`` only here (DESIGN §8).

Contract (checked for both implementations by ``streambus.testing.check_raft_storage``):

* The read half (``quorum_state`` ... ``read_snapshot``) is what the core calls.  Reads never
  change anything.  ``read(start, max_bytes, end)`` returns whole batches, the first starting
  exactly at ``start``, at least one batch when ``start < end`` even if it exceeds
  ``max_bytes`` (Kafka's KIP-74 rule), none at or past ``end``.
* The write half is called only by a driver applying a :class:`~streambus.raft.ready.Ready`,
  in the Ready's order.  ``save_quorum_state``, ``install_snapshot`` and ``save_snapshot`` are
  durable when they return; ``append`` and ``truncate_to`` are durable only after ``sync()``.
* ``epoch_starts()`` lists (epoch, first offset) for each epoch present above the log start,
  in offset order; it is the core's epoch cache after a restart.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
from pathlib import Path
from typing import Callable, Protocol

from streambus.raft.messages import Batch, SnapshotId
from streambus.raft.ready import Snapshot
from streambus.raft.state import QuorumState

__all__ = ["RaftStorage", "MemoryRaftStorage", "FileRaftStorage", "snapshot_file_name"]

logger = logging.getLogger(__name__)


class RaftStorage(Protocol):
    # -- read half (the core) ---------------------------------------------------------------
    def quorum_state(self) -> QuorumState: ...

    def log_start_offset(self) -> int: ...

    def log_end_offset(self) -> int: ...

    def epoch_starts(self) -> list[tuple[int, int]]: ...

    def read(self, start_offset: int, max_bytes: int, end_offset: int) -> list[Batch]: ...

    def latest_snapshot_id(self) -> SnapshotId | None: ...

    def read_snapshot(self, snapshot_id: SnapshotId, position: int, max_bytes: int
                      ) -> tuple[int, bytes] | None:
        """(total size, bytes from ``position``) or None when no such snapshot exists."""
        ...

    # -- write half (the driver) ------------------------------------------------------------
    def save_quorum_state(self, state: QuorumState) -> None: ...

    def install_snapshot(self, snapshot: Snapshot) -> None: ...

    def truncate_to(self, offset: int) -> None: ...

    def append(self, batches: list[Batch]) -> None: ...

    def sync(self) -> None: ...

    def save_snapshot(self, snapshot: Snapshot) -> None: ...

    def trim_prefix(self, offset: int) -> None: ...


class MemoryRaftStorage:
    """The reference storage: everything in lists; ``crash()`` forgets what was not synced.

    ``save_quorum_state`` and snapshots are durable at once (they are fsynced files in
    :class:`FileRaftStorage`); appended and truncated batches become durable at ``sync()``.
    """

    def __init__(self) -> None:
        self._state = QuorumState()
        self._batches: list[Batch] = []
        self._start_offset = 0
        self._durable_batches: list[Batch] = []
        self._durable_start_offset = 0
        self._snapshots: dict[SnapshotId, bytes] = {}
        self.sync_count = 0

    # -- read half --------------------------------------------------------------------------

    def quorum_state(self) -> QuorumState:
        return self._state

    def log_start_offset(self) -> int:
        return self._start_offset

    def log_end_offset(self) -> int:
        return self._batches[-1].end_offset if self._batches else self._start_offset

    def epoch_starts(self) -> list[tuple[int, int]]:
        starts: list[tuple[int, int]] = []
        for batch in self._batches:
            if not starts or starts[-1][0] != batch.epoch:
                starts.append((batch.epoch, max(batch.base_offset, self._start_offset)))
        return starts

    def read(self, start_offset: int, max_bytes: int, end_offset: int) -> list[Batch]:
        index = bisect.bisect_left(self._batches, start_offset,
                                   key=lambda batch: batch.base_offset)
        out: list[Batch] = []
        budget = max_bytes
        while index < len(self._batches):
            batch = self._batches[index]
            if batch.base_offset >= end_offset or (out and batch.size_bytes > budget):
                break
            out.append(batch)
            budget -= batch.size_bytes
            index += 1
        assert not out or out[0].base_offset == start_offset, (start_offset, out[0])
        return out

    def latest_snapshot_id(self) -> SnapshotId | None:
        return max(self._snapshots, default=None)

    def read_snapshot(self, snapshot_id: SnapshotId, position: int, max_bytes: int
                      ) -> tuple[int, bytes] | None:
        data = self._snapshots.get(snapshot_id)
        if data is None:
            return None
        return len(data), data[position:position + max_bytes]

    def snapshot_data(self, snapshot_id: SnapshotId) -> bytes:
        return self._snapshots[snapshot_id]

    # -- write half -------------------------------------------------------------------------

    def save_quorum_state(self, state: QuorumState) -> None:
        assert state.epoch >= self._state.epoch, (state, self._state)
        self._state = state

    def install_snapshot(self, snapshot: Snapshot) -> None:
        self._snapshots = {snapshot.snapshot_id: snapshot.data}
        self._batches = []
        self._start_offset = snapshot.snapshot_id.end_offset
        # The snapshot file and the emptied log are both fsynced before this returns.
        self._durable_batches = []
        self._durable_start_offset = self._start_offset

    def truncate_to(self, offset: int) -> None:
        assert offset >= self._start_offset, (offset, self._start_offset)
        kept = [batch for batch in self._batches if batch.base_offset < offset]
        assert not kept or kept[-1].end_offset <= offset, f"truncation at {offset} splits a batch"
        self._batches = kept

    def append(self, batches: list[Batch]) -> None:
        for batch in batches:
            assert batch.base_offset == self.log_end_offset(), (batch, self.log_end_offset())
            self._batches.append(batch)

    def sync(self) -> None:
        self.sync_count += 1
        self._durable_batches = list(self._batches)
        self._durable_start_offset = self._start_offset

    def save_snapshot(self, snapshot: Snapshot) -> None:
        snapshot_id = snapshot.snapshot_id
        assert self._start_offset <= snapshot_id.end_offset <= self.log_end_offset()
        self._snapshots[snapshot_id] = snapshot.data
        for old in [s for s in self._snapshots if s < snapshot_id]:
            del self._snapshots[old]

    def trim_prefix(self, offset: int) -> None:
        assert self.latest_snapshot_id() is not None
        assert offset <= self.latest_snapshot_id().end_offset
        self._batches = [batch for batch in self._batches if batch.end_offset > offset]
        assert not self._batches or self._batches[0].base_offset >= offset, offset
        self._start_offset = max(self._start_offset, offset)
        # Deleting a prefix needs no fsync to be safe: losing the deletion only keeps more.
        if self._durable_batches:
            self._durable_batches = [b for b in self._durable_batches if b.end_offset > offset]
            self._durable_start_offset = max(self._durable_start_offset, offset)

    # -- simulation -------------------------------------------------------------------------

    def crash(self) -> None:
        """Lose everything not synced, as a power cut would."""
        self._batches = list(self._durable_batches)
        self._start_offset = self._durable_start_offset

    def durable_end_offset(self) -> int:
        if self._durable_batches:
            return self._durable_batches[-1].end_offset
        return self._durable_start_offset

    def all_batches(self) -> list[Batch]:
        return list(self._batches)


def snapshot_file_name(snapshot_id: SnapshotId) -> str:
    """Kafka's snapshot file name: ``<end offset, 20 digits>-<epoch, 10 digits>.checkpoint``."""
    return f"{snapshot_id.end_offset:020d}-{snapshot_id.epoch:010d}.checkpoint"


#: Name of the election-state file in the metadata log directory (Kafka's ``quorum-state``).
QUORUM_STATE_FILE_NAME = "quorum-state"
SNAPSHOT_SUFFIX = ".checkpoint"
_QUORUM_STATE_DATA_VERSION = 1


class FileRaftStorage:
    """Raft storage on a ``streambus/log`` partition directory.

    Layout of ``<data dir>/metadata/__cluster_metadata-0/``::

        00000000000000000000.log/.index/.timeindex   segments (streambus.log)
        quorum-state                                 {"leaderEpoch", "leaderId", "votedId"} JSON
        <end offset, 20 digits>-<epoch, 10 digits>.checkpoint   the latest snapshot

    Durability: ``quorum-state`` and snapshots are replaced atomically (write, fsync, rename,
    fsync the directory) before the call returns; appended batches are fsynced by ``sync()``
    (``PartitionLog.flush``).  The log start offset is not stored: it is the latest snapshot's
    end offset, since everything below it is covered by the snapshot.

    Args:
        directory: the partition directory (created if missing).
        clock_ms: wall clock, for record timestamps.
        clean_shutdown: the previous run closed the log cleanly (no recovery scan needed).
        segment_bytes: roll segments at this size.
    """

    def __init__(self, directory: Path, clock_ms: Callable[[], int], *, clean_shutdown: bool,
                 segment_bytes: int = 64 * 1024 * 1024) -> None:
        from streambus.log.config import LogConfig
        from streambus.log.partition_log import PartitionLog

        directory.mkdir(parents=True, exist_ok=True)
        self._directory = directory
        self._clock_ms = clock_ms
        self._snapshot_id = self._scan_snapshots()
        start_offset = self._snapshot_id.end_offset if self._snapshot_id is not None else 0
        self._log = PartitionLog.open(directory, LogConfig(segment_bytes=segment_bytes),
                                      clock_ms=clock_ms, clean_shutdown=clean_shutdown,
                                      log_start_offset=start_offset)
        self._state = self._read_quorum_state()
        self._epochs = self._scan_epochs()

    # -- read half --------------------------------------------------------------------------

    def quorum_state(self) -> QuorumState:
        return self._state

    def log_start_offset(self) -> int:
        return self._log.log_start_offset

    def log_end_offset(self) -> int:
        return self._log.log_end_offset

    def epoch_starts(self) -> list[tuple[int, int]]:
        return list(self._epochs)

    def read(self, start_offset: int, max_bytes: int, end_offset: int) -> list[Batch]:
        from streambus.raft.batches import decode_batches

        if start_offset >= end_offset or start_offset >= self._log.log_end_offset:
            return []
        result = self._log.read(start_offset, max(1, max_bytes), max_offset=end_offset)
        batches = [b for b in decode_batches(result.records) if b.base_offset < end_offset]
        assert not batches or batches[0].base_offset == start_offset, (start_offset, batches[0])
        return batches

    def latest_snapshot_id(self) -> SnapshotId | None:
        return self._snapshot_id

    def read_snapshot(self, snapshot_id: SnapshotId, position: int, max_bytes: int
                      ) -> tuple[int, bytes] | None:
        path = self._directory / snapshot_file_name(snapshot_id)
        try:
            with open(path, "rb") as file:
                size = os.fstat(file.fileno()).st_size
                file.seek(position)
                return size, file.read(max_bytes)
        except FileNotFoundError:
            return None

    def snapshot_data(self, snapshot_id: SnapshotId) -> bytes:
        return (self._directory / snapshot_file_name(snapshot_id)).read_bytes()

    # -- write half -------------------------------------------------------------------------

    def save_quorum_state(self, state: QuorumState) -> None:
        from streambus.log.partition_log import write_file_atomically

        assert state.epoch >= self._state.epoch, (state, self._state)
        document = {"leaderEpoch": state.epoch, "leaderId": state.leader_id,
                    "votedId": state.voted_id, "data_version": _QUORUM_STATE_DATA_VERSION}
        write_file_atomically(self._directory / QUORUM_STATE_FILE_NAME,
                              json.dumps(document).encode())
        self._state = state

    def install_snapshot(self, snapshot: Snapshot) -> None:
        self._write_snapshot(snapshot)
        self._log.truncate_fully_and_start_at(snapshot.snapshot_id.end_offset)
        self._log.flush()
        self._epochs = []

    def truncate_to(self, offset: int) -> None:
        self._log.truncate_to(offset)
        assert self._log.log_end_offset == offset or offset >= self._log.log_end_offset, offset
        while self._epochs and self._epochs[-1][1] >= self._log.log_end_offset:
            self._epochs.pop()

    def append(self, batches: list[Batch]) -> None:
        from streambus.protocol.records.batch import validate_batches
        from streambus.raft.batches import encode_batches

        if not batches:
            return
        data = bytearray(encode_batches(batches, self._clock_ms()))
        self._log.append_as_follower(data, validate_batches(data, verify_crc=False))
        for batch in batches:
            if not self._epochs or self._epochs[-1][0] != batch.epoch:
                self._epochs.append((batch.epoch, batch.base_offset))

    def sync(self) -> None:
        self._log.flush()

    def save_snapshot(self, snapshot: Snapshot) -> None:
        assert snapshot.snapshot_id.end_offset <= self._log.log_end_offset, snapshot.snapshot_id
        self._write_snapshot(snapshot)

    def trim_prefix(self, offset: int) -> None:
        assert self._snapshot_id is not None and offset <= self._snapshot_id.end_offset
        log = self._log
        log.high_watermark = log.log_end_offset
        log.delete_records_before(offset)
        kept = []
        for index, (epoch, start) in enumerate(self._epochs):
            range_end = (self._epochs[index + 1][1] if index + 1 < len(self._epochs)
                         else log.log_end_offset)
            if range_end > offset:
                kept.append((epoch, max(start, offset)))
        self._epochs = kept

    def close(self, *, clean: bool = True) -> None:
        self._log.close(clean=clean)

    # -- internals --------------------------------------------------------------------------

    def _write_snapshot(self, snapshot: Snapshot) -> None:
        from streambus.log.partition_log import write_file_atomically

        write_file_atomically(self._directory / snapshot_file_name(snapshot.snapshot_id),
                              snapshot.data)
        self._snapshot_id = max(snapshot.snapshot_id, self._snapshot_id or snapshot.snapshot_id)
        for path in self._directory.glob("*" + SNAPSHOT_SUFFIX):
            if path.name != snapshot_file_name(self._snapshot_id):
                path.unlink()

    def _scan_snapshots(self) -> SnapshotId | None:
        found = []
        for path in self._directory.glob("*" + SNAPSHOT_SUFFIX):
            end_text, _, epoch_text = path.name[: -len(SNAPSHOT_SUFFIX)].partition("-")
            if end_text.isdigit() and epoch_text.isdigit():
                found.append(SnapshotId(int(end_text), int(epoch_text)))
        return max(found, default=None)

    def _read_quorum_state(self) -> QuorumState:
        path = self._directory / QUORUM_STATE_FILE_NAME
        if not path.exists():
            return QuorumState()
        document = json.loads(path.read_text())
        return QuorumState(epoch=int(document.get("leaderEpoch", 0)),
                           leader_id=int(document.get("leaderId", -1)),
                           voted_id=int(document.get("votedId", -1)))

    def _scan_epochs(self) -> list[tuple[int, int]]:
        """The epoch cache, rebuilt from batch headers (the metadata log is small)."""
        from streambus.protocol.records.batch import iter_batch_headers

        epochs: list[tuple[int, int]] = []
        log = self._log
        offset = log.log_start_offset
        while offset < log.log_end_offset:
            data = log.read(offset, 8 * 1024 * 1024).records
            headers = list(iter_batch_headers(data))
            if not headers:
                break
            for header in headers:
                if header.next_offset <= offset:
                    continue
                epoch = max(header.partition_leader_epoch, 0)
                if not epochs or epochs[-1][0] != epoch:
                    epochs.append((epoch, max(header.base_offset, log.log_start_offset)))
                offset = header.next_offset
        return epochs
