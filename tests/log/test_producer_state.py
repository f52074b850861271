"""Producer state: idempotent producers' retries are acknowledged, not re-appended, and
sequence or epoch violations are refused with Kafka's error codes (KIP-98, KIP-360).

Method: real batch headers (built with ``make_batch``/``build_control_batch`` and parsed with
``read_batch_header``) are appended through a tiny stand-in for the partition log
(``FakeLog``: check, assign offsets, update), and the state is inspected as whole entries.
Snapshots are written to pytest's ``tmp_path`` and damaged byte by byte.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streambus.log.producer_state import (
    NUM_BATCHES_TO_RETAIN,
    BatchMetadata,
    DuplicateBatch,
    InvalidProducerEpochError,
    OutOfOrderSequenceError,
    ProducerStateEntry,
    ProducerStateManager,
    list_snapshot_offsets,
    snapshot_file_name,
)
from streambus.protocol.records import (
    BatchHeader,
    ControlRecordType,
    build_control_batch,
    make_batch,
    read_batch_header,
)

INT32_MAX = 2**31 - 1


def _batches(*items: BatchMetadata) -> deque[BatchMetadata]:
    return deque(items, maxlen=NUM_BATCHES_TO_RETAIN)


def producer_batch(
    producer_id: int,
    producer_epoch: int,
    base_sequence: int,
    record_count: int = 1,
    *,
    timestamp_ms: int = 1_000,
    is_transactional: bool = False,
) -> BatchHeader:
    batch = make_batch(
        [b"v"] * record_count,
        timestamp_ms=timestamp_ms,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
        is_transactional=is_transactional,
    )
    return read_batch_header(batch)


def marker(
    producer_id: int, producer_epoch: int, control_type: int = ControlRecordType.COMMIT
) -> BatchHeader:
    return read_batch_header(
        build_control_batch(control_type, producer_id, producer_epoch, 3, timestamp_ms=2_000)
    )


class FakeLog:
    """The partition log's side of the protocol: check, assign offsets, write, update."""

    def __init__(self, state: ProducerStateManager | None = None) -> None:
        self.state = state or ProducerStateManager()
        self.log_end_offset = 0
        self.appended: list[BatchHeader] = []

    def append(self, *headers: BatchHeader) -> DuplicateBatch | None:
        duplicate = self.state.check_batches(headers)
        if duplicate is not None:
            return duplicate
        for header in headers:
            header.base_offset = self.log_end_offset
            self.log_end_offset = header.next_offset
            self.appended.append(header)
            self.state.update(
                header,
                header.base_offset,
                header.last_offset,
                header.max_timestamp,
                coordinator_epoch=3 if header.is_control else None,
            )
        return None


# ---------------------------------------------------------------------------------------------
# Sequences


@pytest.mark.parametrize("base_sequence", [0, 17, INT32_MAX])
def test_unknown_producer_is_accepted_at_any_sequence(base_sequence: int) -> None:
    """KIP-360: no UNKNOWN_PRODUCER_ID for a producer id this partition has not seen."""
    log = FakeLog()

    assert log.append(producer_batch(7, 0, base_sequence, 2)) is None

    assert log.state.entry(7) == ProducerStateEntry(
        7,
        0,
        batches=_batches(
            BatchMetadata(base_sequence, (base_sequence + 1) % 2**31, 0, 1, 1_000)
        ),
        last_timestamp=1_000,
    )


def test_in_sequence_batches_are_appended() -> None:
    log = FakeLog()

    for base_sequence in (0, 3, 4, 9):
        count = {0: 3, 3: 1, 4: 5, 9: 1}[base_sequence]
        assert log.append(producer_batch(1, 0, base_sequence, count)) is None

    assert log.log_end_offset == 10
    assert log.state.entry(1).last_sequence == 9


@pytest.mark.parametrize("age", range(1, NUM_BATCHES_TO_RETAIN + 1))
def test_retry_of_each_of_the_last_five_batches_returns_its_original_offsets(age: int) -> None:
    log = FakeLog()
    for index in range(8):
        log.append(producer_batch(1, 0, index * 2, 2, timestamp_ms=100 + index))
    original_index = 8 - age

    duplicate = log.append(producer_batch(1, 0, original_index * 2, 2, timestamp_ms=999))

    assert duplicate == DuplicateBatch(
        first_offset=original_index * 2,
        last_offset=original_index * 2 + 1,
        timestamp=100 + original_index,
    )
    assert log.log_end_offset == 16  # nothing appended


def test_retry_of_the_sixth_oldest_batch_is_out_of_order() -> None:
    log = FakeLog()
    for index in range(NUM_BATCHES_TO_RETAIN + 1):
        log.append(producer_batch(1, 0, index))

    with pytest.raises(OutOfOrderSequenceError) as raised:
        log.append(producer_batch(1, 0, 0))

    assert raised.value.error_code == 45


def test_duplicate_must_match_the_whole_sequence_range() -> None:
    log = FakeLog()
    log.append(producer_batch(1, 0, 0, 3))

    with pytest.raises(OutOfOrderSequenceError):
        log.append(producer_batch(1, 0, 0, 2))


def test_gap_in_sequence_is_out_of_order_and_changes_nothing() -> None:
    log = FakeLog()
    log.append(producer_batch(1, 0, 0, 2))
    before = log.state.encode_snapshot()

    with pytest.raises(OutOfOrderSequenceError) as raised:
        log.append(producer_batch(1, 0, 3))

    assert raised.value.error_code == 45
    assert log.state.encode_snapshot() == before
    assert log.log_end_offset == 2


def test_sequence_wraps_from_int32_max_to_zero() -> None:
    log = FakeLog()
    log.append(producer_batch(1, 0, INT32_MAX - 1, 2))  # last sequence INT32_MAX

    assert log.append(producer_batch(1, 0, 0, 1)) is None
    assert log.append(producer_batch(1, 0, 1, 1)) is None


def test_batch_spanning_the_wrap_is_continued_and_detected_as_duplicate() -> None:
    log = FakeLog()
    log.append(producer_batch(1, 0, INT32_MAX - 1, 3))  # sequences MAX-1, MAX, 0

    assert log.state.entry(1).last_sequence == 0
    assert log.append(producer_batch(1, 0, INT32_MAX - 1, 3)) == DuplicateBatch(0, 2, 1_000)
    assert log.append(producer_batch(1, 0, 1)) is None


def test_batches_without_producer_id_are_not_checked_or_recorded() -> None:
    log = FakeLog()
    plain = read_batch_header(make_batch([b"a", b"b"]))

    assert log.append(plain) is None
    assert log.append(read_batch_header(make_batch([b"a", b"b"]))) is None
    assert len(log.state) == 0


def test_producers_are_independent() -> None:
    log = FakeLog()
    log.append(producer_batch(1, 0, 0))
    log.append(producer_batch(2, 5, 40))

    assert log.append(producer_batch(1, 0, 1)) is None
    with pytest.raises(OutOfOrderSequenceError):
        log.append(producer_batch(2, 5, 40 + 2))


# ---------------------------------------------------------------------------------------------
# Epochs


def test_older_epoch_is_fenced() -> None:
    log = FakeLog()
    log.append(producer_batch(1, 3, 0))

    with pytest.raises(InvalidProducerEpochError) as raised:
        log.append(producer_batch(1, 2, 1))

    assert raised.value.error_code == 47


def test_newer_epoch_must_restart_at_sequence_zero() -> None:
    log = FakeLog()
    log.append(producer_batch(1, 0, 0, 5))

    with pytest.raises(OutOfOrderSequenceError):
        log.append(producer_batch(1, 1, 5))
    assert log.append(producer_batch(1, 1, 0)) is None


def test_epoch_bump_forgets_old_epoch_batches() -> None:
    """KIP-360 bump: after epoch 1 starts, a late retry from epoch 0 is fenced, not a duplicate."""
    log = FakeLog()
    log.append(producer_batch(1, 0, 0))
    log.append(producer_batch(1, 1, 0))

    assert log.state.entry(1).batches == _batches(BatchMetadata(0, 0, 1, 1, 1_000))
    with pytest.raises(InvalidProducerEpochError):
        log.append(producer_batch(1, 0, 0))


# ---------------------------------------------------------------------------------------------
# Several batches of one producer in one append


def test_check_batches_sees_earlier_batches_of_the_same_append() -> None:
    log = FakeLog()
    log.append(producer_batch(1, 0, 0))
    second, third = producer_batch(1, 0, 1, 2), producer_batch(1, 0, 3)

    # Checked one by one against the stored state, the third batch looks out of order...
    with pytest.raises(OutOfOrderSequenceError):
        log.state.check(third)
    # ...but as one append it follows the second.
    assert log.append(second, third) is None
    assert log.state.entry(1).last_sequence == 3


def test_check_batches_refuses_a_gap_inside_one_append() -> None:
    log = FakeLog()

    with pytest.raises(OutOfOrderSequenceError):
        log.append(producer_batch(1, 0, 0), producer_batch(1, 0, 2))
    assert len(log.state) == 0


def test_check_batches_returns_the_duplicate_of_a_retried_request() -> None:
    log = FakeLog()
    log.append(producer_batch(1, 0, 0), read_batch_header(make_batch([b"x"])))

    duplicate = log.append(producer_batch(1, 0, 0), read_batch_header(make_batch([b"x"])))

    assert duplicate == DuplicateBatch(0, 0, 1_000)


# ---------------------------------------------------------------------------------------------
# Transactions


def test_transactional_batches_open_a_transaction_that_a_marker_closes() -> None:
    log = FakeLog()
    log.append(producer_batch(1, 0, 0))  # offset 0, not transactional
    log.append(producer_batch(4, 2, 0, 2, is_transactional=True))  # offsets 1-2
    log.append(producer_batch(4, 2, 2, is_transactional=True))  # offset 3

    assert log.state.entry(4).current_txn_first_offset == 1
    assert log.state.first_unstable_offset() == 1

    log.append(marker(4, 2))

    entry = log.state.entry(4)
    assert (entry.current_txn_first_offset, entry.coordinator_epoch) == (None, 3)
    assert log.state.first_unstable_offset() is None
    # Sequences continue across transactions of one epoch.
    assert log.append(producer_batch(4, 2, 3, is_transactional=True)) is None


def test_marker_from_an_older_epoch_is_fenced() -> None:
    log = FakeLog()
    log.append(producer_batch(4, 2, 0, is_transactional=True))

    with pytest.raises(InvalidProducerEpochError):
        log.append(marker(4, 1, ControlRecordType.ABORT))


def test_marker_with_bumped_epoch_restarts_sequences() -> None:
    log = FakeLog()
    log.append(producer_batch(4, 2, 0, 3, is_transactional=True))
    log.append(marker(4, 3, ControlRecordType.ABORT))

    with pytest.raises(OutOfOrderSequenceError):
        log.append(producer_batch(4, 3, 3, is_transactional=True))
    assert log.append(producer_batch(4, 3, 0, is_transactional=True)) is None


# ---------------------------------------------------------------------------------------------
# Expiration and truncation


def test_remove_expired_forgets_idle_producers_but_not_open_transactions() -> None:
    log = FakeLog()
    log.append(producer_batch(1, 0, 0, timestamp_ms=1_000))
    log.append(producer_batch(2, 0, 0, timestamp_ms=5_000))
    log.append(producer_batch(3, 0, 0, timestamp_ms=1_000, is_transactional=True))

    removed = log.state.remove_expired(now_ms=11_000, expiration_ms=10_000)

    assert removed == [1]
    assert log.state.producer_ids() == [2, 3]
    # An expired producer is unknown again, so any sequence is accepted.
    assert log.append(producer_batch(1, 0, 50)) is None


def test_truncate_to_drops_batches_at_or_after_the_offset() -> None:
    log = FakeLog()
    log.append(producer_batch(1, 0, 0, 2))  # 0-1
    log.append(producer_batch(2, 0, 0))  # 2
    log.append(producer_batch(1, 0, 2, 2))  # 3-4
    log.append(producer_batch(3, 0, 0, is_transactional=True))  # 5

    log.state.truncate_to(3)

    assert log.state.producer_ids() == [1, 2]
    assert log.state.entry(1).batches == _batches(BatchMetadata(0, 1, 0, 1, 1_000))
    assert log.state.first_unstable_offset() is None


# ---------------------------------------------------------------------------------------------
# Snapshots


def populated_log() -> FakeLog:
    log = FakeLog()
    for index in range(7):
        log.append(producer_batch(1, 0, index * 2, 2, timestamp_ms=10 + index))
    log.append(producer_batch(2, 4, 100, 3, timestamp_ms=50))
    log.append(producer_batch(3, 1, 0, 1, is_transactional=True))
    log.append(producer_batch(5, 0, 0, 1, is_transactional=True))
    log.append(marker(5, 0))
    return log


def entries(state: ProducerStateManager) -> dict[int, ProducerStateEntry | None]:
    return {producer_id: state.entry(producer_id) for producer_id in state.producer_ids()}


def test_snapshot_round_trip_restores_every_entry(tmp_path: Path) -> None:
    log = populated_log()

    path = log.state.write_snapshot(tmp_path, log.log_end_offset)
    restored = ProducerStateManager()
    loaded_offset = restored.load_latest_snapshot(tmp_path, max_offset=log.log_end_offset)

    assert path.name == "%020d.snapshot" % log.log_end_offset
    assert loaded_offset == log.log_end_offset
    assert entries(restored) == entries(log.state)
    assert list(tmp_path.iterdir()) == [path]  # the temp file was renamed away


def test_retries_are_still_duplicates_after_a_restart(tmp_path: Path) -> None:
    log = populated_log()
    log.state.write_snapshot(tmp_path, log.log_end_offset)
    restarted = FakeLog()
    restarted.state.load_latest_snapshot(tmp_path, log.log_end_offset)
    restarted.log_end_offset = log.log_end_offset

    for index in range(2, 7):
        duplicate = restarted.append(producer_batch(1, 0, index * 2, 2))
        assert duplicate == DuplicateBatch(index * 2, index * 2 + 1, 10 + index)


def test_load_latest_snapshot_picks_the_newest_at_or_below_max_offset(tmp_path: Path) -> None:
    state = ProducerStateManager()
    for offset in (10, 20, 30):
        state.write_snapshot(tmp_path, offset)

    assert state.load_latest_snapshot(tmp_path, max_offset=25) == 20
    assert state.load_latest_snapshot(tmp_path, max_offset=30) == 30
    assert state.load_latest_snapshot(tmp_path, max_offset=9) is None


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "empty", "bad_version", "trailing"])
def test_corrupt_snapshot_is_deleted_and_an_older_one_used(tmp_path: Path, damage: str) -> None:
    old = populated_log()
    old.state.write_snapshot(tmp_path, 5)
    newer = populated_log()
    newer.append(producer_batch(9, 0, 0))
    path = newer.state.write_snapshot(tmp_path, 12)
    data = bytearray(path.read_bytes())
    if damage == "flip_byte":
        data[len(data) // 2] ^= 0x01
    elif damage == "truncate":
        data = data[:-3]
    elif damage == "empty":
        data = bytearray()
    elif damage == "bad_version":
        data[1] = 9
    else:
        data += b"\x00"
    path.write_bytes(bytes(data))

    state = ProducerStateManager()
    loaded_offset = state.load_latest_snapshot(tmp_path, max_offset=100)

    assert loaded_offset == 5
    assert entries(state) == entries(old.state)
    assert list_snapshot_offsets(tmp_path) == [5]


def test_load_without_usable_snapshot_empties_the_state(tmp_path: Path) -> None:
    log = populated_log()
    (tmp_path / snapshot_file_name(3)).write_bytes(b"garbage")
    (tmp_path / (snapshot_file_name(4) + ".tmp")).write_bytes(b"half written")

    assert log.state.load_latest_snapshot(tmp_path, max_offset=100) is None
    assert len(log.state) == 0
    assert list(tmp_path.iterdir()) == []


def test_delete_snapshots_after_and_before(tmp_path: Path) -> None:
    state = ProducerStateManager()
    for offset in (0, 10, 20, 30):
        state.write_snapshot(tmp_path, offset)
    (tmp_path / "00000000000000000010.log").write_bytes(b"")  # not a snapshot: left alone

    assert state.delete_snapshots_after(tmp_path, 20) == [30]
    assert state.delete_snapshots_before(tmp_path, 10) == [0]
    assert list_snapshot_offsets(tmp_path) == [10, 20]
    assert state.delete_snapshots_after(tmp_path, -1) == [10, 20]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["00000000000000000010.log"]


def test_snapshot_plus_replay_equals_live_state(tmp_path: Path) -> None:
    """Log recovery: load the snapshot, then rebuild from the batches appended after it."""
    log = populated_log()
    snapshot_offset = log.log_end_offset
    log.state.write_snapshot(tmp_path, snapshot_offset)
    log.append(producer_batch(1, 0, 14, 2, timestamp_ms=70))
    log.append(producer_batch(3, 1, 1, is_transactional=True))
    log.append(marker(3, 1, ControlRecordType.ABORT))
    log.append(producer_batch(6, 0, 8))

    recovered = ProducerStateManager()
    offset = recovered.load_latest_snapshot(tmp_path, max_offset=log.log_end_offset)
    recovered.rebuild_from(h for h in log.appended if h.base_offset >= offset)

    # The marker's coordinator epoch lives in its record, not the header, so replay from
    # headers alone cannot restore it.
    expected = entries(log.state)
    expected[3].coordinator_epoch = -1
    assert entries(recovered) == expected


def test_rebuild_from_the_whole_log_equals_live_state() -> None:
    log = populated_log()

    rebuilt = ProducerStateManager()
    rebuilt.rebuild_from(log.appended)

    expected = entries(log.state)
    expected[5].coordinator_epoch = -1  # see test_snapshot_plus_replay_equals_live_state
    assert entries(rebuilt) == expected


batch_metadata = st.builds(
    BatchMetadata,
    st.integers(0, INT32_MAX),
    st.integers(0, INT32_MAX),
    st.integers(0, 2**62),
    st.integers(0, 2**62),
    st.integers(-1, 2**50),
)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.integers(0, 2**62),
        st.tuples(
            st.integers(-1, 2**15 - 1),
            st.integers(-1, INT32_MAX),
            st.one_of(st.none(), st.integers(0, 2**62)),
            st.integers(-1, 2**50),
            st.lists(batch_metadata, max_size=NUM_BATCHES_TO_RETAIN),
        ),
        max_size=20,
    )
)
def test_snapshot_encoding_round_trips(
    producers: dict[int, tuple[int, int, int | None, int, list[BatchMetadata]]],
) -> None:
    state = ProducerStateManager()
    state._producers = {
        producer_id: ProducerStateEntry(
            producer_id, epoch, _batches(*batches), coordinator_epoch, txn_first_offset, timestamp
        )
        for producer_id, (epoch, coordinator_epoch, txn_first_offset, timestamp, batches) in (
            producers.items()
        )
    }

    restored = ProducerStateManager()
    restored.decode_snapshot(state.encode_snapshot())

    assert entries(restored) == entries(state)
