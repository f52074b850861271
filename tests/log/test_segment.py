"""LogSegment: writing batches, finding them by offset and timestamp, recovery and truncation.

Method: append batches with offsets already assigned (as the partition log hands them over)
to a segment with a small index interval, then read through the public methods and compare
the returned bytes and offsets with what was written.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from logtest_support import record_values
from streambus.log.segment import LogSegment
from streambus.protocol.records.batch import validate_batches
from streambus.protocol.records.record import make_batch


def open_segment(directory: Path, base_offset: int = 0, interval: int = 64) -> LogSegment:
    segment = LogSegment.open(
        directory, base_offset, index_interval_bytes=interval,
        segment_index_bytes=1024 * 1024, created_ms=0,
    )
    segment.load()
    return segment


def write(segment: LogSegment, base_offset: int, values: list[bytes], timestamp_ms: int = 0) -> bytes:
    records = make_batch(values, timestamp_ms=timestamp_ms, base_offset=base_offset)
    segment.append(records, validate_batches(records))
    return records


def test_read_returns_whole_batches_and_their_base_offset(tmp_path: Path) -> None:
    segment = open_segment(tmp_path)
    first = write(segment, 0, [b"a", b"b"])
    second = write(segment, 2, [b"c"])
    result = segment.read(1, 10_000)
    assert result is not None
    assert (result.records, result.base_offset, result.next_offset, result.reached_end) == (
        first + second, 0, 3, True,
    )


def test_read_from_gap_returns_next_batch(tmp_path: Path) -> None:
    segment = open_segment(tmp_path)
    write(segment, 0, [b"a"])
    later = write(segment, 10, [b"b"])  # offsets 1..9 were compacted away
    result = segment.read(5, 10_000)
    assert result is not None and (result.records, result.base_offset) == (later, 10)


def test_read_past_last_batch_returns_none(tmp_path: Path) -> None:
    segment = open_segment(tmp_path)
    write(segment, 0, [b"a"])
    assert segment.read(1, 10_000) is None


def test_read_respects_max_position(tmp_path: Path) -> None:
    segment = open_segment(tmp_path)
    first = write(segment, 0, [b"a"])
    write(segment, 1, [b"b"])
    result = segment.read(0, 10_000, max_position=len(first))
    assert result is not None and result.records == first and result.reached_end


def test_read_stopped_by_max_bytes_does_not_claim_the_end(tmp_path: Path) -> None:
    segment = open_segment(tmp_path)
    first = write(segment, 0, [b"a" * 50])
    write(segment, 1, [b"b" * 50])
    result = segment.read(0, len(first) + 10)
    assert result is not None and result.records == first and not result.reached_end


def test_every_offset_is_found_through_the_sparse_index(tmp_path: Path) -> None:
    segment = open_segment(tmp_path, interval=100)
    for offset in range(200):
        write(segment, offset, [b"value-%03d" % offset])
    assert segment.offset_index.entries_count > 10
    for offset in range(200):
        result = segment.read(offset, 1)
        assert result is not None
        assert record_values(result.records) == [(offset, b"value-%03d" % offset)]


def test_find_batch_by_timestamp_returns_first_batch_reaching_the_target(tmp_path: Path) -> None:
    segment = open_segment(tmp_path, interval=50)
    for offset in range(50):
        write(segment, offset, [b"x"], timestamp_ms=1_000 + 10 * offset)
    for target, expected in [(0, 0), (1_000, 0), (1_001, 1), (1_250, 25), (1_490, 49)]:
        header = segment.find_batch_by_timestamp(target)
        assert header is not None and header.base_offset == expected
    assert segment.find_batch_by_timestamp(1_491) is None
    assert (segment.largest_timestamp, segment.offset_of_largest_timestamp) == (1_490, 49)


def test_recover_rebuilds_identical_indexes(tmp_path: Path) -> None:
    segment = open_segment(tmp_path, interval=50)
    for offset in range(100):
        write(segment, offset, [b"x" * (offset % 7)], timestamp_ms=offset * 3)
    segment.flush()
    index_bytes = segment.offset_index.path.read_bytes()
    time_index_bytes = segment.time_index.path.read_bytes()
    assert segment.recover() == 0
    segment.flush()  # index entries are written behind, on flush or close
    assert segment.offset_index.path.read_bytes() == index_bytes
    assert segment.time_index.path.read_bytes() == time_index_bytes
    assert (segment.next_offset, segment.largest_timestamp) == (100, 297)


def test_recover_truncates_a_torn_tail(tmp_path: Path) -> None:
    segment = open_segment(tmp_path)
    kept = write(segment, 0, [b"a"])
    torn = write(segment, 1, [b"b"])
    segment.close()
    log_path = tmp_path / "00000000000000000000.log"
    with open(log_path, "r+b") as file:
        file.truncate(len(kept) + len(torn) - 3)
    reopened = LogSegment.open(tmp_path, 0, index_interval_bytes=64, segment_index_bytes=4096, created_ms=0)
    assert reopened.recover() == len(torn) - 3
    assert reopened.next_offset == 1 and reopened.size_bytes == len(kept)


@pytest.mark.parametrize("corrupt", [False, True], ids=["valid", "corrupt"])
def test_recover_checks_batches_larger_than_its_read_window(tmp_path: Path, corrupt: bool) -> None:
    segment = open_segment(tmp_path)
    small = write(segment, 0, [b"a"])
    large = write(segment, 1, [bytes(range(256)) * 6_000])  # ~1.5 MiB, over the 1 MiB window
    segment.close()
    if corrupt:
        log_path = tmp_path / "00000000000000000000.log"
        data = bytearray(log_path.read_bytes())
        data[len(small) + len(large) - 10] ^= 0xFF
        log_path.write_bytes(data)
    reopened = LogSegment.open(tmp_path, 0, index_interval_bytes=64, segment_index_bytes=4096, created_ms=0)
    reopened.recover()
    assert reopened.next_offset == (1 if corrupt else 2)


def test_truncate_to_keeps_indexes_consistent_for_later_appends(tmp_path: Path) -> None:
    segment = open_segment(tmp_path, interval=40)
    for offset in range(40):
        write(segment, offset, [b"v%02d" % offset], timestamp_ms=offset)
    removed = segment.truncate_to(25)
    assert removed > 0 and segment.next_offset == 25
    assert segment.largest_timestamp == 24
    for offset in range(25, 30):
        write(segment, offset, [b"w%02d" % offset], timestamp_ms=offset)
    segment.close()
    reopened = open_segment(tmp_path, interval=40)  # load() re-runs the sanity checks
    result = reopened.read(0, 1_000_000)
    assert result is not None
    assert record_values(result.records) == [(o, b"v%02d" % o) for o in range(25)] + [
        (o, b"w%02d" % o) for o in range(25, 30)
    ]
