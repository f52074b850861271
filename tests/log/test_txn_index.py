"""Partition side of transactions: last stable offset, markers and the aborted-txn index.

Method: append transactional batches of several producers and COMMIT/ABORT markers to a
real PartitionLog in a temp dir, then check the last stable offset, what
``collect_aborted_transactions`` returns for a fetch range, and that both survive a clean
close, an unclean one (no snapshot, a marker whose index entry never reached the file),
truncation, segment rolls and retention.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from logtest_support import ManualClock, append, batch, open_log
from streambus.log.config import LogConfig
from streambus.log.producer_state import (
    InvalidProducerEpochError,
    InvalidTxnStateError,
    TransactionCoordinatorFencedError,
)
from streambus.log.txn_index import (
    AbortedTxn,
    TransactionIndex,
    decode_entries,
    txn_index_file_path,
)


NOW_MS = ManualClock().now_ms


def txn_batch(producer_id: int, values: list[bytes], sequence: int, epoch: int = 0) -> bytearray:
    # Timestamps near the manual clock's, so markers (stamped with the clock) do not roll.
    return batch(values, producer_id=producer_id, producer_epoch=epoch, base_sequence=sequence,
                 is_transactional=True, timestamp_ms=NOW_MS)


def marker(log, producer_id: int, commit: bool, epoch: int = 0, coordinator_epoch: int = 0):
    return log.append_control_marker(producer_id=producer_id, producer_epoch=epoch,
                                     coordinator_epoch=coordinator_epoch, commit=commit,
                                     leader_epoch=0)


def test_txn_index_file_round_trips_and_drops_a_torn_tail(tmp_path: Path) -> None:
    """Entries are 34 bytes each; a partial trailing entry (a torn write) is ignored."""
    path = txn_index_file_path(tmp_path, 42)
    assert path.name == "00000000000000000042.txnindex"
    index = TransactionIndex(path)
    assert index.entries == []
    first = AbortedTxn(7, 10, 15, 16)
    second = AbortedTxn(8, 12, 20, 21)
    index.append(first)
    index.append(second)
    with open(path, "ab") as file:
        file.write(b"\x00" * 10)
    assert TransactionIndex(path).entries == [first, second]
    assert decode_entries(first.encode() + second.encode()) == [first, second]
    with pytest.raises(ValueError):
        index.append(AbortedTxn(9, 1, 19, 20))  # markers are appended in offset order
    index.truncate_to(20)
    assert TransactionIndex(path).entries == [first]
    index.truncate_to(0)
    assert not path.exists()


def test_open_transaction_holds_the_last_stable_offset_until_its_marker(tmp_path: Path) -> None:
    """LSO = first offset of the oldest open transaction; a marker releases it."""
    log = open_log(tmp_path / "t-0", ManualClock())
    append(log, batch([b"plain"], timestamp_ms=NOW_MS))  # offset 0
    append(log, txn_batch(1, [b"a", b"b"], 0))  # offsets 1-2, producer 1 opens at 1
    append(log, txn_batch(2, [b"c"], 0))  # offset 3, producer 2 opens at 3
    log.high_watermark = log.log_end_offset
    assert log.high_watermark == 4
    assert log.last_stable_offset == 1
    assert log.ongoing_transactions() == {1: 1, 2: 3}
    marker(log, 1, commit=True)  # offset 4
    log.high_watermark = log.log_end_offset
    assert log.last_stable_offset == 3
    marker(log, 2, commit=False)  # offset 5
    log.high_watermark = log.log_end_offset
    assert log.last_stable_offset == 6 == log.high_watermark
    assert log.aborted_transactions() == [AbortedTxn(2, 3, 5, 6)]
    log.close(clean=True)


def test_last_stable_offset_never_passes_the_high_watermark(tmp_path: Path) -> None:
    """A decided but unreplicated tail is not stable: LSO <= HW always."""
    log = open_log(tmp_path / "t-0", ManualClock())
    append(log, batch([b"x", b"y"]))
    log.high_watermark = 1
    assert log.last_stable_offset == 1
    log.close(clean=True)


def test_aborted_transactions_overlapping_a_fetch_are_collected(tmp_path: Path) -> None:
    """Only aborts whose [first, marker] range meets [fetch, upper) come back, including one
    whose marker lies beyond the upper bound's segment."""
    log = open_log(tmp_path / "t-0", ManualClock())
    append(log, txn_batch(1, [b"a"], 0))  # 0
    append(log, txn_batch(2, [b"b"], 0))  # 1
    marker(log, 1, commit=False)  # 2: abort [0, 2], LSO 1 (producer 2 open)
    log.roll()
    append(log, txn_batch(3, [b"c"], 0))  # 3
    marker(log, 2, commit=False)  # 4: abort [1, 4], LSO 3
    marker(log, 3, commit=True)  # 5
    log.high_watermark = log.log_end_offset
    assert log.collect_aborted_transactions(0, 6) == [AbortedTxn(1, 0, 2, 1),
                                                     AbortedTxn(2, 1, 4, 3)]
    assert log.collect_aborted_transactions(3, 6) == [AbortedTxn(2, 1, 4, 3)]
    assert log.collect_aborted_transactions(5, 6) == []
    assert log.collect_aborted_transactions(0, 1) == [AbortedTxn(1, 0, 2, 1)]
    log.close(clean=True)


def test_markers_are_fenced_by_producer_and_coordinator_epochs(tmp_path: Path) -> None:
    """A marker with an older producer epoch or coordinator epoch is refused; a newer
    producer epoch (the coordinator's fencing abort) fences the old producer's writes."""
    log = open_log(tmp_path / "t-0", ManualClock())
    append(log, txn_batch(1, [b"a"], 0, epoch=3))
    with pytest.raises(InvalidProducerEpochError):
        marker(log, 1, commit=True, epoch=2)
    marker(log, 1, commit=False, epoch=4, coordinator_epoch=5)
    with pytest.raises(TransactionCoordinatorFencedError):
        marker(log, 1, commit=False, epoch=4, coordinator_epoch=4)
    with pytest.raises(InvalidProducerEpochError):
        append(log, txn_batch(1, [b"zombie"], 1, epoch=3))
    log.close(clean=True)


def test_non_transactional_write_inside_an_open_transaction_is_refused(tmp_path: Path) -> None:
    log = open_log(tmp_path / "t-0", ManualClock())
    append(log, txn_batch(1, [b"a"], 0))
    with pytest.raises(InvalidTxnStateError):
        append(log, batch([b"b"], producer_id=1, producer_epoch=0, base_sequence=1,
                          timestamp_ms=NOW_MS))
    log.close(clean=True)


@pytest.mark.parametrize("clean", [True, False], ids=["clean", "killed"])
def test_open_transactions_and_aborts_survive_a_restart(tmp_path: Path, clean: bool) -> None:
    """Reopening restores the LSO and the aborted index, whether or not a snapshot was
    written, and a lost index entry (marker written, entry not) is rebuilt by the replay."""
    clock = ManualClock()
    directory = tmp_path / "t-0"
    log = open_log(directory, clock)
    append(log, txn_batch(1, [b"a"], 0))  # 0
    append(log, txn_batch(2, [b"b"], 0))  # 1
    marker(log, 1, commit=False)  # 2
    append(log, txn_batch(3, [b"c"], 0))  # 3
    log.high_watermark = log.log_end_offset
    expected_aborted = log.aborted_transactions()
    assert expected_aborted == [AbortedTxn(1, 0, 2, 1)]
    if not clean:
        txn_index_file_path(directory, 0).unlink()  # as if the entry never reached the disk
    log.close(clean=clean)
    reopened = open_log(directory, clock, clean_shutdown=clean)
    assert reopened.last_stable_offset == 1
    assert reopened.ongoing_transactions() == {2: 1, 3: 3}
    assert reopened.aborted_transactions() == expected_aborted
    marker(reopened, 2, commit=True)
    marker(reopened, 3, commit=False)
    reopened.high_watermark = reopened.log_end_offset
    assert reopened.last_stable_offset == reopened.log_end_offset == 6
    assert reopened.aborted_transactions()[-1] == AbortedTxn(3, 3, 5, 6)
    reopened.close(clean=True)


def test_truncation_drops_aborts_whose_marker_was_cut(tmp_path: Path) -> None:
    """Truncating below a marker reopens its transaction and forgets the abort."""
    log = open_log(tmp_path / "t-0", ManualClock())
    append(log, txn_batch(1, [b"a"], 0))  # 0
    marker(log, 1, commit=False)  # 1
    assert len(log.aborted_transactions()) == 1
    log.truncate_to(1)
    assert log.aborted_transactions() == []
    assert log.ongoing_transactions() == {1: 0}
    log.high_watermark = log.log_end_offset
    assert log.last_stable_offset == 0
    log.close(clean=True)


def test_retention_deletes_a_segments_aborts_with_it(tmp_path: Path) -> None:
    """The .txnindex goes with its segment; aborts of later segments stay."""
    directory = tmp_path / "t-0"
    log = open_log(directory, ManualClock())
    append(log, txn_batch(1, [b"a"], 0))
    marker(log, 1, commit=False)  # 1
    log.roll()
    append(log, txn_batch(1, [b"b"], 1))
    marker(log, 1, commit=False)  # 3
    log.roll()
    append(log, batch([b"tail"], timestamp_ms=NOW_MS))
    log.high_watermark = log.log_end_offset
    assert [e.last_offset for e in log.aborted_transactions()] == [1, 3]
    log.delete_records_before(2)
    assert [e.last_offset for e in log.aborted_transactions()] == [3]
    assert not txn_index_file_path(directory, 0).exists()
    log.close(clean=True)


def test_segments_roll_while_a_transaction_spans_them(tmp_path: Path) -> None:
    """A transaction that starts in one segment and aborts in a later one is found from a
    fetch offset in the first segment."""
    log = open_log(tmp_path / "t-0", ManualClock(), LogConfig(segment_bytes=200))
    sequence = 0
    for value in range(6):
        append(log, txn_batch(9, [b"v%d" % value], sequence))
        sequence += 1
    marker(log, 9, commit=False)
    log.high_watermark = log.log_end_offset
    assert len(log.segments) > 1
    assert log.collect_aborted_transactions(0, 3) == [AbortedTxn(9, 0, 6, 7)]
    log.close(clean=True)
