"""RaftStorage implementations meet one contract (streambus.testing.check_raft_storage).

Method: run the contract suite against each implementation; then the crash behaviour the
simulator relies on: MemoryRaftStorage forgets exactly what was not synced.
"""

from __future__ import annotations

from streambus.raft.messages import Batch
from streambus.raft.state import QuorumState
from streambus.raft.storage import MemoryRaftStorage
from streambus.testing.storage_contract import check_raft_storage


def _reopen_memory(storage: MemoryRaftStorage) -> MemoryRaftStorage:
    storage.crash()  # after a clean shutdown everything was synced; nothing is lost
    return storage


def test_memory_storage_meets_the_contract() -> None:
    check_raft_storage(MemoryRaftStorage, _reopen_memory)


def test_memory_storage_crash_loses_exactly_the_unsynced_batches() -> None:
    storage = MemoryRaftStorage()
    storage.save_quorum_state(QuorumState(2, 1, 1))
    storage.append([Batch(0, 1, (b"a",))])
    storage.sync()
    storage.append([Batch(1, 2, (b"b",))])
    storage.crash()
    assert storage.all_batches() == [Batch(0, 1, (b"a",))]
    assert storage.quorum_state() == QuorumState(2, 1, 1)


def test_memory_storage_crash_undoes_an_unsynced_truncation() -> None:
    storage = MemoryRaftStorage()
    storage.append([Batch(0, 1, (b"a",)), Batch(1, 1, (b"b",))])
    storage.sync()
    storage.truncate_to(1)
    storage.crash()
    assert storage.log_end_offset() == 2
