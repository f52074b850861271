"""Offset and time indexes: entry encoding, lookup semantics, persistence and sanity checks.

Method: write entries through the index classes into a temporary file, reopen the file to
check what was persisted byte for byte, and damage files by hand (zeroing, tearing, pointing
past the log) to check that the sanity check raises CorruptIndexError.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from streambus.log.errors import CorruptIndexError
from streambus.log.offset_index import OffsetIndex
from streambus.log.time_index import TimeIndex

BASE = 1_000


def offset_index(tmp_path: Path, max_bytes: int = 1024) -> OffsetIndex:
    return OffsetIndex(tmp_path / "00000000000000001000.index", BASE, max_bytes)


def time_index(tmp_path: Path, max_bytes: int = 1024) -> TimeIndex:
    return TimeIndex(tmp_path / "00000000000000001000.timeindex", BASE, max_bytes)


def test_offset_index_entries_are_relative_offset_and_position_big_endian(tmp_path: Path) -> None:
    index = offset_index(tmp_path)
    index.append(1_005, 4_096)
    index.close()
    assert (tmp_path / "00000000000000001000.index").read_bytes() == struct.pack(">II", 5, 4_096)


def test_offset_index_lookup_returns_greatest_entry_not_above_target(tmp_path: Path) -> None:
    index = offset_index(tmp_path)
    for offset, position in [(1_010, 100), (1_020, 200), (1_030, 300)]:
        index.append(offset, position)
    assert index.lookup(1_000) == (BASE, 0)  # below every entry: scan from the start
    assert index.lookup(1_010) == (1_010, 100)
    assert index.lookup(1_019) == (1_010, 100)
    assert index.lookup(1_020) == (1_020, 200)
    assert index.lookup(10**9) == (1_030, 300)


def test_empty_offset_index_lookup_points_at_segment_start(tmp_path: Path) -> None:
    assert offset_index(tmp_path).lookup(5_000) == (BASE, 0)


def test_offset_index_rejects_non_increasing_entries(tmp_path: Path) -> None:
    index = offset_index(tmp_path)
    index.append(1_010, 100)
    with pytest.raises(ValueError):
        index.append(1_010, 200)
    with pytest.raises(ValueError):
        index.append(1_011, 100)
    with pytest.raises(ValueError):
        index.append(999, 300)


def test_offset_index_survives_reopen_and_truncation(tmp_path: Path) -> None:
    index = offset_index(tmp_path)
    for step in range(1, 6):
        index.append(BASE + 10 * step, 100 * step)
    index.truncate_to(1_030)
    index.close()
    reopened = offset_index(tmp_path)
    assert [reopened.entry(i) for i in range(reopened.entries_count)] == [(1_010, 100), (1_020, 200)]
    reopened.sanity_check(log_size_bytes=201)


def test_offset_index_is_full_at_max_size(tmp_path: Path) -> None:
    index = offset_index(tmp_path, max_bytes=20)  # rounds down to 2 entries
    index.append(1_001, 1)
    assert not index.is_full
    index.append(1_002, 2)
    assert index.is_full


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(bytes(8 * 4), id="zeroed"),
        pytest.param(struct.pack(">II", 1, 10) + b"\x00\x01\x02", id="torn_entry"),
        pytest.param(struct.pack(">IIII", 1, 10, 2, 5_000), id="position_past_log"),
        pytest.param(struct.pack(">IIII", 2, 10, 1, 20), id="offsets_decreasing"),
    ],
)
def test_offset_index_sanity_check_rejects_damaged_files(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "00000000000000001000.index").write_bytes(content)
    with pytest.raises(CorruptIndexError):
        offset_index(tmp_path).sanity_check(log_size_bytes=1_000)


def test_time_index_only_appends_growing_timestamps(tmp_path: Path) -> None:
    index = time_index(tmp_path)
    assert index.maybe_append(500, 1_001)
    assert not index.maybe_append(500, 1_002)
    assert not index.maybe_append(400, 1_003)
    assert index.maybe_append(600, 1_004)
    assert [index.entry(i) for i in range(index.entries_count)] == [(500, 1_001), (600, 1_004)]
    index.close()
    assert (tmp_path / "00000000000000001000.timeindex").read_bytes() == struct.pack(
        ">qIqI", 500, 1, 600, 4
    )


def test_time_index_lookup_starts_after_entries_strictly_below_target(tmp_path: Path) -> None:
    index = time_index(tmp_path)
    index.maybe_append(500, 1_010)
    index.maybe_append(600, 1_020)
    assert index.lookup(100) == BASE
    # A batch before 1_010 may also carry timestamp 500, so equal timestamps search earlier.
    assert index.lookup(500) == BASE
    assert index.lookup(501) == 1_010
    assert index.lookup(601) == 1_020


def test_time_index_sanity_check_rejects_zeroed_and_out_of_range_entries(tmp_path: Path) -> None:
    path = tmp_path / "00000000000000001000.timeindex"
    path.write_bytes(bytes(12 * 3))
    with pytest.raises(CorruptIndexError):
        time_index(tmp_path).sanity_check(next_offset=2_000)
    path.write_bytes(struct.pack(">qI", 500, 50))
    with pytest.raises(CorruptIndexError):
        time_index(tmp_path).sanity_check(next_offset=1_050)
    time_index(tmp_path).sanity_check(next_offset=1_051)
