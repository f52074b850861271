"""Retention and DeleteRecords: exactly the expected segments go, the log start moves past them.

Method: a log with tiny segments (one batch each, so segment i holds offsets [10*i, 10*i+10)),
record timestamps chosen per segment and a manual clock; run one retention pass and compare
the surviving segments' base offsets and the log start offset with what Kafka would keep.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from logtest_support import ManualClock, append, batch, open_log
from streambus.log.config import LogConfig
from streambus.log.errors import OffsetOutOfRangeError
from streambus.log.lifecycle import LogLifecycle
from streambus.log.partition_log import PartitionLog
from streambus.log.retention import (
    DeleteRecordsError,
    apply_retention,
    deletable_segment_count,
    delete_records,
)
from streambus.protocol.error_codes import ErrorCode

NOW_MS = 1_700_000_000_000
HOUR_MS = 3_600_000
RECORDS_PER_BATCH = 10


def _config(**changes: object) -> LogConfig:
    # One 10-record batch of 10-byte values is ~150 bytes: 200-byte segments hold one batch.
    return dataclasses.replace(LogConfig(segment_bytes=200), **changes)


def _log(tmp_path: Path, clock: ManualClock, ages_h: list[int], **changes: object) -> PartitionLog:
    """A log whose segment i holds one batch with timestamps ``ages_h[i]`` hours before now."""
    log = open_log(tmp_path / "events-0", clock, _config(**changes))
    for age_h in ages_h:
        append(log, batch([b"x" * 10] * RECORDS_PER_BATCH, timestamp_ms=NOW_MS - age_h * HOUR_MS))
    log.high_watermark = log.log_end_offset
    assert len(log.segments) == len(ages_h)
    return log


def _bases(log: PartitionLog) -> list[int]:
    return [segment.base_offset for segment in log.segments]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW_MS)


def test_time_retention_deletes_exactly_the_expired_prefix(tmp_path: Path,
                                                           clock: ManualClock) -> None:
    """Segments whose newest record is older than retention.ms go, oldest first; a younger
    segment stops the prefix even if an older one follows it (Kafka deletes a prefix)."""
    log = _log(tmp_path, clock, [50, 40, 30, 2, 40, 1], retention_ms=24 * HOUR_MS)
    result = apply_retention(log, clock())
    assert (result.deleted_segment_count, result.reason) == (3, "retention.ms")
    assert _bases(log) == [30, 40, 50]
    assert log.log_start_offset == result.log_start_offset == 30


def test_time_retention_never_deletes_the_active_segment(tmp_path: Path,
                                                         clock: ManualClock) -> None:
    """Even when every segment has expired, the active one stays (so the log end survives)."""
    log = _log(tmp_path, clock, [50, 40, 30], retention_ms=HOUR_MS)
    apply_retention(log, clock())
    assert _bases(log) == [20]
    assert log.log_start_offset == 20 and log.log_end_offset == 30


def test_expiry_follows_the_clock(tmp_path: Path, clock: ManualClock) -> None:
    """Nothing has expired until the clock passes retention.ms after a segment's newest record."""
    log = _log(tmp_path, clock, [0, 0, 0], retention_ms=HOUR_MS)
    assert apply_retention(log, clock()).deleted_segment_count == 0
    clock.advance(HOUR_MS)
    assert apply_retention(log, clock()).deleted_segment_count == 0  # not *more* than
    clock.advance(1)
    assert apply_retention(log, clock()).deleted_segment_count == 2
    assert _bases(log) == [20]


def test_retention_ms_minus_one_keeps_everything(tmp_path: Path, clock: ManualClock) -> None:
    log = _log(tmp_path, clock, [1000, 1000, 1000], retention_ms=-1)
    assert apply_retention(log, clock()).deleted_segment_count == 0


def test_size_retention_keeps_the_log_at_or_above_the_limit(tmp_path: Path,
                                                            clock: ManualClock) -> None:
    """Kafka deletes a segment only if the log is still >= retention.bytes without it."""
    log = _log(tmp_path, clock, [0] * 6)
    segment_bytes = log.segments[0].size_bytes
    log.update_config(_config(retention_bytes=3 * segment_bytes + 1))
    result = apply_retention(log, clock())
    assert (result.deleted_segment_count, result.reason) == (2, "retention.bytes")
    assert _bases(log) == [20, 30, 40, 50]
    assert log.size_bytes == 4 * segment_bytes
    log.update_config(_config(retention_bytes=3 * segment_bytes))
    assert apply_retention(log, clock()).deleted_segment_count == 1
    assert log.size_bytes == 3 * segment_bytes


def test_size_retention_zero_keeps_only_the_active_segment(tmp_path: Path,
                                                           clock: ManualClock) -> None:
    log = _log(tmp_path, clock, [0] * 4, retention_bytes=0)
    apply_retention(log, clock())
    assert _bases(log) == [30]


def test_compact_only_logs_are_not_deleted_by_time_or_size(tmp_path: Path,
                                                           clock: ManualClock) -> None:
    log = _log(tmp_path, clock, [50, 40, 30], retention_ms=HOUR_MS, retention_bytes=0,
               cleanup_policy=frozenset({"compact"}))
    assert deletable_segment_count(log, clock()) == (0, "")
    log.update_config(_config(retention_ms=HOUR_MS, cleanup_policy=frozenset({"compact",
                                                                              "delete"})))
    assert deletable_segment_count(log, clock()) == (2, "retention.ms")


def test_segments_above_the_high_watermark_are_kept(tmp_path: Path, clock: ManualClock) -> None:
    """Uncommitted data is never deleted: a segment goes only once the next one starts at or
    below the high watermark."""
    log = _log(tmp_path, clock, [50, 40, 30, 20], retention_ms=HOUR_MS)
    log.high_watermark = 15
    apply_retention(log, clock())
    assert _bases(log) == [10, 20, 30]


def test_delete_records_moves_the_log_start_inside_a_segment(tmp_path: Path,
                                                             clock: ManualClock) -> None:
    """DeleteRecords deletes the segments wholly below the new start; a read below it fails
    with OFFSET_OUT_OF_RANGE, as a consumer there would see."""
    log = _log(tmp_path, clock, [0] * 4)
    assert delete_records(log, 25) == 25
    assert _bases(log) == [20, 30]
    with pytest.raises(OffsetOutOfRangeError):
        log.read(24, 1 << 20)
    assert log.read(25, 1 << 20).log_start_offset == 25
    # A smaller offset changes nothing; -1 means the high watermark.
    assert delete_records(log, 5) == 25
    assert delete_records(log, -1) == 40
    assert _bases(log) == [30]


@pytest.mark.parametrize("offset", [41, -2], ids=["above-high-watermark", "negative"])
def test_delete_records_out_of_range(tmp_path: Path, clock: ManualClock, offset: int) -> None:
    log = _log(tmp_path, clock, [0] * 4)
    with pytest.raises(DeleteRecordsError) as raised:
        delete_records(log, offset)
    assert raised.value.error_code == ErrorCode.OFFSET_OUT_OF_RANGE
    assert log.log_start_offset == 0


def test_delete_records_on_a_compact_only_topic_is_a_policy_violation(
        tmp_path: Path, clock: ManualClock) -> None:
    log = _log(tmp_path, clock, [0] * 2, cleanup_policy=frozenset({"compact"}))
    with pytest.raises(DeleteRecordsError) as raised:
        delete_records(log, 5)
    assert raised.value.error_code == ErrorCode.POLICY_VIOLATION


def test_segments_below_a_restored_log_start_are_deleted(tmp_path: Path,
                                                         clock: ManualClock) -> None:
    """After a restart the checkpointed log start may lie past whole segments; retention
    removes them whatever the policy (Kafka's deleteLogStartOffsetBreachedSegments)."""
    log = _log(tmp_path, clock, [0] * 4, cleanup_policy=frozenset({"compact"}))
    log.close(clean=True)
    log = PartitionLog.open(tmp_path / "events-0", _config(cleanup_policy=frozenset({"compact"})),
                            clock_ms=clock, clean_shutdown=True, log_start_offset=25)
    log.high_watermark = log.log_end_offset
    assert _bases(log) == [0, 10, 20, 30]
    result = apply_retention(log, clock())
    assert (result.deleted_segment_count, result.reason) == (2, "log-start-offset")
    assert _bases(log) == [20, 30] and log.log_start_offset == 25


def test_lifecycle_pass_checkpoints_after_deleting(tmp_path: Path, clock: ManualClock) -> None:
    """The background pass visits every partition and persists the new log starts at once."""
    logs = [_log(tmp_path / str(i), clock, [50, 40, 1], retention_ms=HOUR_MS) for i in range(2)]
    checkpoints = []
    lifecycle = LogLifecycle(
        data_dir=tmp_path, clock_ms=clock, partitions=lambda: [(log, {}) for log in logs],
        broker_properties=lambda: {}, retention_check_interval_ms=1000,
        checkpoint=lambda: checkpoints.append(clock()))
    results = lifecycle.run_retention_once()
    assert [r.deleted_segment_count for r in results] == [2, 2]
    assert checkpoints == [clock()]
    assert lifecycle.run_retention_once() == [] and len(checkpoints) == 1
