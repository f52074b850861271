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


def test_file_storage_meets_the_contract(tmp_path) -> None:
    from streambus.raft.storage import FileRaftStorage

    directories = iter(range(1000))

    def make() -> FileRaftStorage:
        path = tmp_path / f"run-{next(directories)}" / "__cluster_metadata-0"
        return FileRaftStorage(path, lambda: 1_700_000_000_000, clean_shutdown=True)

    def reopen(storage: FileRaftStorage) -> FileRaftStorage:
        storage.close(clean=True)
        return FileRaftStorage(storage._directory, lambda: 1_700_000_000_000,
                               clean_shutdown=True)

    check_raft_storage(make, reopen)


def test_file_storage_reads_a_log_written_before_raft(tmp_path) -> None:
    """A single-node data dir from before the quorum (epoch-0 batches, no quorum-state file)
    opens as epoch 0 with its batches intact."""
    from streambus.log.config import LogConfig
    from streambus.log.partition_log import PartitionLog
    from streambus.protocol.records.batch import validate_batches
    from streambus.protocol.records.record import build_batch
    from streambus.raft.storage import FileRaftStorage

    directory = tmp_path / "__cluster_metadata-0"
    log = PartitionLog.open(directory, LogConfig(), clock_ms=lambda: 0, clean_shutdown=True)
    for values in ([b"a", b"b"], [b"c"]):
        batch = bytearray(build_batch([(None, v, [], 0) for v in values]))
        log.append_as_leader(batch, validate_batches(batch), leader_epoch=0)
    log.close(clean=True)
    storage = FileRaftStorage(directory, lambda: 0, clean_shutdown=True)
    assert storage.quorum_state() == QuorumState()
    assert storage.epoch_starts() == [(0, 0)]
    assert [b.records for b in storage.read(0, 1 << 20, 3)] == [(b"a", b"b"), (b"c",)]
