"""The core's picture of its log: durable storage plus changes not yet handed to the driver.

This module owns answering log questions (end offsets, last epoch, ``end_offset_for_epoch``,
reads) while recent appends, truncations and snapshot installs still wait in the next
:class:`~streambus.raft.ready.Ready`.  Like etcd-raft's ``raftLog`` (``unstable`` over
``Storage``), it reads stored batches through the read-only half of
:class:`~streambus.raft.storage.RaftStorage` and never writes: the driver applies the pending
changes, then :meth:`LogView.stabilize` forgets them.

The epoch cache (Kafka's ``LeaderEpochFileCache``) is a list of (epoch, start offset), one entry
per epoch present in the log above the log start offset; the latest snapshot stands in for
everything below it.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from streambus.raft.messages import Batch, OffsetAndEpoch, SnapshotId
from streambus.raft.ready import Snapshot

if TYPE_CHECKING:
    from streambus.raft.storage import RaftStorage

__all__ = ["LogView"]


class LogView:
    """Stored batches overlaid with pending changes.

    Args:
        storage: read for batches below the stable end and for the initial offsets.
    """

    def __init__(self, storage: "RaftStorage") -> None:
        self._storage = storage
        self.start_offset = storage.log_start_offset()
        self.end_offset = storage.log_end_offset()
        self.snapshot_id: SnapshotId | None = storage.latest_snapshot_id()
        self._epochs: list[tuple[int, int]] = list(storage.epoch_starts())
        self._stable_end = self.end_offset
        self._unstable: list[Batch] = []
        self._truncate_to: int | None = None
        self._install: Snapshot | None = None
        self._trim_to: int | None = None
        assert self.start_offset <= self.end_offset
        snapshot_id = self.snapshot_id
        if snapshot_id is not None and snapshot_id.end_offset > self.end_offset:
            # The log lost its unsynced tail (an observer does not fsync) but the snapshot is
            # durable: start over from the snapshot, as Kafka's KafkaMetadataLog does.
            found = storage.read_snapshot(snapshot_id, 0, 1 << 62)
            assert found is not None and len(found[1]) == found[0], snapshot_id
            self.install_snapshot(Snapshot(snapshot_id, found[1]))

    # -- questions ------------------------------------------------------------------------

    def last_epoch(self) -> int:
        """Epoch of the last batch; the snapshot's epoch (or 0) when the log is empty."""
        if self._epochs:
            return self._epochs[-1][0]
        return self.snapshot_id.epoch if self.snapshot_id is not None else 0

    def end_offset_for_epoch(self, epoch: int) -> OffsetAndEpoch | None:
        """Kafka's ``endOffsetForEpoch``: the largest epoch <= ``epoch`` in the log and the
        offset where the next larger epoch starts (or the log end).

        Returns None when ``epoch`` predates the latest snapshot, whose history is gone.
        """
        base_epoch = self.snapshot_id.epoch if self.snapshot_id is not None else 0
        if epoch < base_epoch:
            return None
        index = bisect.bisect_right(self._epochs, (epoch, 1 << 62)) - 1
        if index < 0:
            # Every epoch in the log is newer: the snapshot (or the empty log) is the answer.
            end_offset = self._epochs[0][1] if self._epochs else self.end_offset
            return OffsetAndEpoch(base_epoch, end_offset)
        found_epoch = self._epochs[index][0]
        if index + 1 < len(self._epochs):
            return OffsetAndEpoch(found_epoch, self._epochs[index + 1][1])
        return OffsetAndEpoch(found_epoch, self.end_offset)

    def epoch_at(self, offset: int) -> int:
        """Epoch of the record at ``offset`` (which must be in the log or the snapshot)."""
        assert offset < self.end_offset, (offset, self.end_offset)
        index = bisect.bisect_right([start for _, start in self._epochs], offset) - 1
        if index >= 0:
            return self._epochs[index][0]
        assert self.snapshot_id is not None and offset < self.snapshot_id.end_offset
        return self.snapshot_id.epoch

    def read(self, start_offset: int, max_bytes: int, end_offset: int | None = None
             ) -> list[Batch]:
        """Whole batches from the one starting at ``start_offset``, at least one if any, within
        ``max_bytes`` and below ``end_offset`` (default: the log end)."""
        limit = self.end_offset if end_offset is None else min(end_offset, self.end_offset)
        assert self.start_offset <= start_offset <= self.end_offset, (
            start_offset, self.start_offset, self.end_offset)
        batches: list[Batch] = []
        if start_offset >= limit:
            return batches
        budget = max_bytes
        stable_limit = min(limit, self._stable_end)
        if start_offset < stable_limit:
            batches = self._storage.read(start_offset, budget, stable_limit)
            assert batches and batches[0].base_offset == start_offset, (start_offset, batches[:1])
            budget -= sum(batch.size_bytes for batch in batches)
            start_offset = batches[-1].end_offset
        if start_offset >= self._stable_end and start_offset < limit and budget > 0:
            index = self._unstable_index(start_offset)
            while index < len(self._unstable) and self._unstable[index].base_offset < limit:
                batch = self._unstable[index]
                if batches and batch.size_bytes > budget:
                    break
                batches.append(batch)
                budget -= batch.size_bytes
                index += 1
        return batches

    def _unstable_index(self, offset: int) -> int:
        for index, batch in enumerate(self._unstable):
            if batch.base_offset == offset:
                return index
        raise AssertionError(f"no unstable batch starts at {offset}")

    # -- changes --------------------------------------------------------------------------

    def append(self, batch: Batch) -> None:
        assert batch.base_offset == self.end_offset, (batch.base_offset, self.end_offset)
        assert batch.records, "a batch holds at least one record"
        assert batch.epoch >= self.last_epoch(), (batch.epoch, self.last_epoch())
        if not self._epochs or self._epochs[-1][0] != batch.epoch:
            self._epochs.append((batch.epoch, batch.base_offset))
        self._unstable.append(batch)
        self.end_offset = batch.end_offset

    def truncate_to(self, offset: int) -> None:
        """Drop every batch at or above ``offset`` (an epoch boundary, so a batch boundary)."""
        assert offset >= self.start_offset, (offset, self.start_offset)
        if offset >= self.end_offset:
            return
        if offset >= self._stable_end:
            kept = [batch for batch in self._unstable if batch.base_offset < offset]
            assert not kept or kept[-1].end_offset == offset, "truncation inside a batch"
            self._unstable = kept
        else:
            self._unstable = []
            self._stable_end = offset
            self._truncate_to = offset if self._truncate_to is None else min(
                self._truncate_to, offset)
        self.end_offset = offset
        while self._epochs and self._epochs[-1][1] >= offset:
            self._epochs.pop()

    def install_snapshot(self, snapshot: Snapshot) -> None:
        """Replace the whole log by ``snapshot``: empty, starting at its end offset."""
        end_offset = snapshot.snapshot_id.end_offset
        self._install = snapshot
        self._truncate_to = None
        self._trim_to = None
        self._unstable = []
        self._epochs = []
        self.snapshot_id = snapshot.snapshot_id
        self.start_offset = self.end_offset = self._stable_end = end_offset

    def trim_to_snapshot(self, snapshot_id: SnapshotId) -> None:
        """A local snapshot became durable: the log may start at its end offset."""
        assert self.start_offset <= snapshot_id.end_offset <= self.end_offset
        self.snapshot_id = snapshot_id
        offset = snapshot_id.end_offset
        if offset <= self.start_offset:
            return
        self.start_offset = offset
        self._trim_to = offset
        kept = []
        for index, (epoch, start) in enumerate(self._epochs):
            range_end = (self._epochs[index + 1][1] if index + 1 < len(self._epochs)
                         else self.end_offset)
            if range_end > offset:
                kept.append((epoch, max(start, offset)))
        self._epochs = kept

    # -- ready / advance ------------------------------------------------------------------

    def pending(self) -> tuple[Snapshot | None, int | None, list[Batch], int | None]:
        """(install_snapshot, truncate_to, append, trim_to) for the next Ready."""
        return self._install, self._truncate_to, list(self._unstable), self._trim_to

    def has_pending(self) -> bool:
        return bool(self._unstable or self._install is not None or self._truncate_to is not None
                    or self._trim_to is not None)

    def stabilize(self) -> None:
        """The driver applied everything :meth:`pending` returned."""
        self._install = None
        self._truncate_to = None
        self._trim_to = None
        self._unstable = []
        self._stable_end = self.end_offset
