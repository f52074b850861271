"""The contract every :class:`~streambus.raft.storage.RaftStorage` must meet, as one suite.

This module owns :func:`check_raft_storage` (trio's ``check_two_way_stream`` idea): the same
checks run against :class:`MemoryRaftStorage` and :class:`FileRaftStorage`, so the simulator's
reference storage and the real one cannot drift apart.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from streambus.raft.messages import Batch, SnapshotId
from streambus.raft.ready import Snapshot
from streambus.raft.state import QuorumState

__all__ = ["check_raft_storage"]

S = TypeVar("S")


def _batch(base_offset: int, epoch: int, *values: str, control: bool = False) -> Batch:
    return Batch(base_offset, epoch, tuple(v.encode() for v in values), control)


def check_raft_storage(make: Callable[[], S], reopen: Callable[[S], S]) -> None:
    """Run every check on fresh storages.

    Args:
        make: returns a new, empty storage.
        reopen: closes a storage as a clean shutdown would and returns the same data reopened.
    """
    for check in (_check_empty, _check_quorum_state, _check_append_read, _check_truncate,
                  _check_snapshot_and_trim, _check_install_snapshot):
        check(make, reopen)


def _check_empty(make: Callable[[], S], reopen: Callable[[S], S]) -> None:
    storage = make()
    assert storage.quorum_state() == QuorumState()
    assert (storage.log_start_offset(), storage.log_end_offset()) == (0, 0)
    assert storage.epoch_starts() == []
    assert storage.latest_snapshot_id() is None
    assert storage.read(0, 1000, 0) == []


def _check_quorum_state(make: Callable[[], S], reopen: Callable[[S], S]) -> None:
    storage = make()
    for state in (QuorumState(1, -1, 2), QuorumState(1, 2, 2), QuorumState(4, -1, -1)):
        storage.save_quorum_state(state)
        assert storage.quorum_state() == state
    storage = reopen(storage)
    assert storage.quorum_state() == QuorumState(4, -1, -1)


def _appended(make: Callable[[], S]) -> tuple[S, list[Batch]]:
    storage = make()
    batches = [_batch(0, 1, "lc", control=True), _batch(1, 1, "a", "b"), _batch(3, 1, "c"),
               _batch(4, 3, "lc3", control=True), _batch(5, 3, "d", "e", "f")]
    storage.append(batches[:2])
    storage.append(batches[2:])
    storage.sync()
    return storage, batches


def _check_append_read(make: Callable[[], S], reopen: Callable[[S], S]) -> None:
    storage, batches = _appended(make)
    assert storage.log_end_offset() == 8
    assert storage.epoch_starts() == [(1, 0), (3, 4)]
    assert storage.read(0, 1 << 20, 8) == batches
    assert storage.read(1, 1 << 20, 4) == batches[1:3], "end offset is exclusive"
    assert storage.read(3, 1, 8) == [batches[2]], "at least one batch even over budget"
    assert storage.read(8, 1 << 20, 8) == []
    storage = reopen(storage)
    assert storage.read(0, 1 << 20, 8) == batches
    assert storage.epoch_starts() == [(1, 0), (3, 4)]


def _check_truncate(make: Callable[[], S], reopen: Callable[[S], S]) -> None:
    storage, batches = _appended(make)
    storage.truncate_to(4)
    storage.sync()
    assert storage.log_end_offset() == 4
    assert storage.epoch_starts() == [(1, 0)]
    assert storage.read(0, 1 << 20, 4) == batches[:3]
    storage.append([_batch(4, 5, "x")])
    storage.sync()
    storage = reopen(storage)
    assert storage.read(3, 1 << 20, 5) == [batches[2], _batch(4, 5, "x")]
    assert storage.epoch_starts() == [(1, 0), (5, 4)]


def _check_snapshot_and_trim(make: Callable[[], S], reopen: Callable[[S], S]) -> None:
    storage, batches = _appended(make)
    first = Snapshot(SnapshotId(3, 1), b"state-at-3")
    storage.save_snapshot(first)
    second = Snapshot(SnapshotId(4, 1), b"0123456789" * 5)
    storage.save_snapshot(second)
    assert storage.latest_snapshot_id() == SnapshotId(4, 1)
    assert storage.read_snapshot(SnapshotId(4, 1), 0, 7) == (50, b"0123456")
    assert storage.read_snapshot(SnapshotId(4, 1), 45, 100) == (50, b"56789")
    assert storage.read_snapshot(SnapshotId(9, 9), 0, 10) is None
    storage.trim_prefix(4)
    assert storage.log_start_offset() == 4
    assert storage.read(4, 1 << 20, 8) == batches[3:]
    assert storage.epoch_starts() == [(3, 4)]
    storage = reopen(storage)
    assert storage.log_start_offset() == 4
    assert storage.latest_snapshot_id() == SnapshotId(4, 1)
    assert storage.read(4, 1 << 20, 8) == batches[3:]


def _check_install_snapshot(make: Callable[[], S], reopen: Callable[[S], S]) -> None:
    storage, _ = _appended(make)
    snapshot = Snapshot(SnapshotId(20, 6), b"remote")
    storage.install_snapshot(snapshot)
    assert (storage.log_start_offset(), storage.log_end_offset()) == (20, 20)
    assert storage.epoch_starts() == []
    assert storage.latest_snapshot_id() == SnapshotId(20, 6)
    storage.append([_batch(20, 7, "next")])
    storage.sync()
    storage = reopen(storage)
    assert (storage.log_start_offset(), storage.log_end_offset()) == (20, 21)
    assert storage.read_snapshot(SnapshotId(20, 6), 0, 100) == (6, b"remote")
    assert storage.read(20, 100, 21) == [_batch(20, 7, "next")]
