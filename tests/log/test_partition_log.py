"""PartitionLog: offsets, appends, reads across segments, roll policy and truncation.

Method: open a log in a temporary ``<topic>-<partition>`` directory with a manual clock and
small segment/index sizes so a few batches exercise rolls and indexes, append batches built
with ``record.make_batch``, and compare what Fetch-style reads decode to what was appended.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from logtest_support import ManualClock, append, batch, decode, open_log, record_values
from streambus.log.config import LogConfig
from streambus.log.errors import (
    InconsistentTopicIdError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    UnexpectedAppendOffsetError,
)
from streambus.log.partition_log import AppendResult, PartitionLog, ReadResult
from streambus.protocol.records.batch import read_batch_header, validate_batches

SMALL = LogConfig(segment_bytes=400, index_interval_bytes=64)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "orders.eu-west-3"


def test_empty_directory_gives_empty_log_at_offset_zero(directory: Path, clock: ManualClock) -> None:
    log = open_log(directory, clock)
    assert (log.topic, log.partition) == ("orders.eu-west", 3)
    assert (log.log_start_offset, log.log_end_offset, log.high_watermark) == (0, 0, 0)
    assert log.read(0, 1000) == ReadResult(b"", 0, 0, 0)
    assert [segment.base_offset for segment in log.segments] == [0]


def test_append_assigns_consecutive_offsets_and_leader_epoch(directory: Path, clock: ManualClock) -> None:
    log = open_log(directory, clock)
    first = append(log, batch([b"a", b"b"]), leader_epoch=7)
    second = append(log, batch([b"c"]), batch([b"d", b"e"]), leader_epoch=7)
    assert first == AppendResult(0, 1, -1, 0, False)
    assert second == AppendResult(2, 4, -1, 0, False)
    assert log.log_end_offset == 5
    records = log.read(0, 10_000).records
    assert record_values(records) == [(0, b"a"), (1, b"b"), (2, b"c"), (3, b"d"), (4, b"e")]
    assert [h.partition_leader_epoch for h in validate_batches(records)] == [7, 7, 7]


def test_log_append_time_stamps_batches_with_the_clock(directory: Path, clock: ManualClock) -> None:
    log = open_log(directory, clock, LogConfig(message_timestamp_type="LogAppendTime"))
    result = append(log, batch([b"a", b"b"], timestamp_ms=5))
    assert result.log_append_time_ms == clock.now_ms
    assert [r.timestamp for r in decode(log.read(0, 10_000).records)] == [clock.now_ms] * 2


def test_read_starting_inside_a_batch_returns_the_whole_batch(directory: Path, clock: ManualClock) -> None:
    log = open_log(directory, clock)
    append(log, batch([b"a", b"b", b"c"]))
    append(log, batch([b"d"]))
    assert record_values(log.read(1, 10_000).records)[0] == (0, b"a")
    assert record_values(log.read(3, 10_000).records) == [(3, b"d")]


def test_read_at_log_end_is_empty_and_beyond_it_is_out_of_range(directory: Path, clock: ManualClock) -> None:
    log = open_log(directory, clock)
    append(log, batch([b"a"]))
    assert log.read(1, 10_000).records == b""
    with pytest.raises(OffsetOutOfRangeError):
        log.read(2, 10_000)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(-1, 10_000)


def test_max_bytes_returns_whole_batches_and_at_least_one(directory: Path, clock: ManualClock) -> None:
    log = open_log(directory, clock)
    for value in (b"a" * 100, b"b" * 100, b"c" * 100):
        append(log, batch([value]))
    batch_size = len(log.read(0, 10_000).records) // 3
    assert record_values(log.read(0, batch_size * 2 + 10).records) == [(0, b"a" * 100), (1, b"b" * 100)]
    # KIP-74: a budget smaller than the first batch still returns that batch whole.
    assert record_values(log.read(0, 1).records) == [(0, b"a" * 100)]
    assert log.read(0, 1, min_one_batch=False).records == b""


def test_max_offset_bounds_the_read_exclusively(directory: Path, clock: ManualClock) -> None:
    log = open_log(directory, clock)
    append(log, batch([b"a", b"b"]))
    append(log, batch([b"c", b"d"]))
    assert [offset for offset, _ in record_values(log.read(0, 10_000, max_offset=2).records)] == [0, 1]
    # A batch straddling the bound is withheld: its last record is not yet committed.
    assert log.read(0, 10_000, max_offset=1).records == b""
    assert log.read(2, 10_000, max_offset=2).records == b""


def test_reads_continue_across_segments_after_roll(directory: Path, clock: ManualClock) -> None:
    log = open_log(directory, clock, SMALL)
    expected = []
    for index in range(30):
        value = b"value-%03d" % index
        append(log, batch([value]))
        expected.append((index, value))
    assert len(log.segments) > 3
    bases = [segment.base_offset for segment in log.segments]
    assert bases == sorted(bases) and bases[0] == 0
    assert record_values(log.read(0, 1_000_000).records) == expected
    for start in range(30):
        assert record_values(log.read(start, 1_000_000).records) == expected[start:]


def test_segment_bytes_rolls_before_the_segment_would_overflow(directory: Path, clock: ManualClock) -> None:
    log = open_log(directory, clock, SMALL)
    for index in range(30):
        append(log, batch([b"value-%03d" % index]))
    # Every segment but the active one stays within segment_bytes.
    assert all(segment.size_bytes <= SMALL.segment_bytes for segment in log.segments)


def test_segment_ms_rolls_on_the_injected_clock_for_log_append_time(directory: Path, clock: ManualClock) -> None:
    config = LogConfig(segment_ms=60_000, message_timestamp_type="LogAppendTime")
    log = open_log(directory, clock, config)
    append(log, batch([b"a"]))
    clock.advance(60_000)
    append(log, batch([b"b"]))
    assert len(log.segments) == 1  # exactly segment_ms later: not yet (Kafka rolls when >)
    clock.advance(1)
    append(log, batch([b"c"]))
    assert [segment.base_offset for segment in log.segments] == [0, 2]


def test_segment_ms_rolls_on_message_time_for_create_time(directory: Path, clock: ManualClock) -> None:
    log = open_log(directory, clock, LogConfig(segment_ms=1_000))
    append(log, batch([b"a"], timestamp_ms=10_000))
    append(log, batch([b"b"], timestamp_ms=10_900))
    append(log, batch([b"c"], timestamp_ms=11_001))
    assert [segment.base_offset for segment in log.segments] == [0, 2]


def test_batch_larger_than_max_message_bytes_is_rejected(directory: Path, clock: ManualClock) -> None:
    log = open_log(directory, clock, LogConfig(max_message_bytes=100))
    with pytest.raises(RecordTooLargeError):
        append(log, batch([b"x" * 200]))
    assert log.log_end_offset == 0


def test_offset_for_timestamp_finds_the_exact_record_inside_a_batch(directory: Path, clock: ManualClock) -> None:
    log = open_log(directory, clock, SMALL)
    timestamp = 1_000
    for _ in range(10):
        append(log, batch([b"a", b"b", b"c"], timestamps_ms=[timestamp, timestamp + 5, timestamp + 10]))
        timestamp += 100
    # Offsets 3k..3k+2 carry 1000 + 100k + {0, 5, 10}.
    assert log.offset_for_timestamp(0) == (0, 1_000)
    assert log.offset_for_timestamp(1_000) == (0, 1_000)
    assert log.offset_for_timestamp(1_001) == (1, 1_005)
    assert log.offset_for_timestamp(1_406) == (14, 1_410)
    assert log.offset_for_timestamp(1_411) == (15, 1_500)
    assert log.offset_for_timestamp(1_910) == (29, 1_910)
    assert log.offset_for_timestamp(1_911) is None


def test_offset_for_timestamp_skips_records_below_log_start(directory: Path, clock: ManualClock) -> None:
    log = open_log(directory, clock)
    append(log, batch([b"a", b"b", b"c"], timestamps_ms=[10, 20, 30]))
    log.high_watermark = log.log_end_offset
    log.delete_records_before(2)
    assert log.offset_for_timestamp(0) == (2, 30)


def test_max_timestamp_offset_is_the_first_record_with_the_largest_timestamp(directory: Path, clock: ManualClock) -> None:
    log = open_log(directory, clock, SMALL)
    assert log.max_timestamp_offset() is None
    append(log, batch([b"a", b"b"], timestamps_ms=[10, 20]))
    append(log, batch([b"c", b"d", b"e"], timestamps_ms=[50, 90, 90]))
    append(log, batch([b"f"], timestamps_ms=[40]))
    assert log.max_timestamp_offset() == (3, 90)


def test_follower_append_keeps_leader_offsets(directory: Path, clock: ManualClock) -> None:
    log = open_log(directory, clock)
    records = batch([b"a", b"b"], base_offset=10)
    log.truncate_fully_and_start_at(10)
    log.append_as_follower(records, validate_batches(records))
    assert log.log_end_offset == 12
    with pytest.raises(UnexpectedAppendOffsetError):
        log.append_as_follower(records, validate_batches(records))


def test_truncate_to_removes_later_batches_and_segments(directory: Path, clock: ManualClock) -> None:
    log = open_log(directory, clock, SMALL)
    for index in range(30):
        append(log, batch([b"value-%03d" % index]))
    log.truncate_to(12)
    assert log.log_end_offset == 12
    assert log.segments[-1].next_offset == 12
    assert [offset for offset, _ in record_values(log.read(0, 1_000_000).records)] == list(range(12))
    assert append(log, batch([b"again"])).base_offset == 12


def test_truncate_into_a_batch_removes_the_whole_batch(directory: Path, clock: ManualClock) -> None:
    log = open_log(directory, clock)
    append(log, batch([b"a", b"b"]))
    append(log, batch([b"c", b"d"]))
    log.truncate_to(3)
    assert log.log_end_offset == 2


def test_delete_records_before_advances_log_start_and_drops_whole_segments(directory: Path, clock: ManualClock) -> None:
    log = open_log(directory, clock, SMALL)
    for index in range(30):
        append(log, batch([b"value-%03d" % index]))
    log.high_watermark = 20
    assert log.delete_records_before(15) == 15
    assert log.segments[0].base_offset <= 15 < log.segments[0].next_offset
    with pytest.raises(OffsetOutOfRangeError):
        log.read(14, 1000)
    assert record_values(log.read(15, 1_000_000).records)[-1] == (29, b"value-029")
    with pytest.raises(OffsetOutOfRangeError):
        log.delete_records_before(21)  # above the high watermark


def test_clean_close_and_reopen_keeps_everything(directory: Path, clock: ManualClock) -> None:
    log = open_log(directory, clock, SMALL)
    for index in range(30):
        append(log, batch([b"value-%03d" % index], timestamp_ms=index))
    before = log.read(0, 1_000_000).records
    segments = [(s.base_offset, s.next_offset, s.size_bytes) for s in log.segments]
    log.close(clean=True)
    reopened = open_log(directory, clock, SMALL)
    assert reopened.read(0, 1_000_000).records == before
    assert [(s.base_offset, s.next_offset, s.size_bytes) for s in reopened.segments] == segments
    assert reopened.recovery_point == 30
    assert reopened.max_timestamp_offset() == (29, 29)
    assert append(reopened, batch([b"next"])).base_offset == 30


def test_partition_metadata_detects_a_recreated_topic(directory: Path, clock: ManualClock) -> None:
    topic_id = uuid.uuid4()
    log = PartitionLog.open(directory, LogConfig(), clock_ms=clock, clean_shutdown=True, topic_id=topic_id)
    log.close(clean=True)
    text = (directory / "partition.metadata").read_text()
    assert text.startswith("version: 0\ntopic_id: ")
    reopened = PartitionLog.open(directory, LogConfig(), clock_ms=clock, clean_shutdown=True)
    assert reopened.topic_id == topic_id
    reopened.close(clean=True)
    with pytest.raises(InconsistentTopicIdError):
        PartitionLog.open(directory, LogConfig(), clock_ms=clock, clean_shutdown=True, topic_id=uuid.uuid4())


def test_high_watermark_must_stay_within_the_log(directory: Path, clock: ManualClock) -> None:
    log = open_log(directory, clock)
    append(log, batch([b"a", b"b"]))
    log.high_watermark = 1
    assert log.read(0, 1000).high_watermark == 1
    with pytest.raises(ValueError):
        log.high_watermark = 3


def test_appended_bytes_are_on_disk_before_append_returns(directory: Path, clock: ManualClock) -> None:
    """A second, independent reader sees the batch without any flush or close."""
    log = open_log(directory, clock)
    append(log, batch([b"durable"]))
    data = (directory / "00000000000000000000.log").read_bytes()
    assert read_batch_header(data).base_offset == 0
    assert record_values(data) == [(0, b"durable")]
