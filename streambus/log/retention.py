"""Retention: delete whole segments by age or total size, and DeleteRecords.

This module owns deciding which segments of a partition log have expired and moving the log
start offset past them, as Kafka's ``UnifiedLog.deleteOldSegments`` does.  It never compacts
(``cleaner.py`` does) and never walks the data directory; the segment files are removed by
:meth:`PartitionLog.delete_records_before`.

Rules, applied to a prefix of the segment list (oldest first):

* Segments wholly below the log start offset are always deleted (``DeleteRecords`` moved it,
  or it was restored from the checkpoint after a crash).
* Only with ``delete`` in ``cleanup.policy``:

  - ``retention.ms`` >= 0: a segment whose largest record timestamp is more than
    ``retention.ms`` older than now has expired.  A segment without timestamps falls back
    to the time it was created or opened (Kafka falls back to the file's mtime).
  - ``retention.bytes`` >= 0: while the log is larger than ``retention.bytes``, the oldest
    segments go, as long as the log stays at or above the limit after each deletion
    (Kafka's ``diff - segment.size >= 0``).

* The active segment is never deleted, and neither is a segment holding offsets at or above
  the high watermark (uncommitted data must stay until it commits or is truncated).

Deleting advances the log start offset to the first remaining segment's base offset;
consumers below it get OFFSET_OUT_OF_RANGE and reset as their ``auto.offset.reset`` says.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from streambus.log.errors import LogError
from streambus.log.partition_log import PartitionLog
from streambus.protocol.error_codes import ErrorCode

__all__ = [
    "DeleteRecordsError",
    "RetentionResult",
    "deletable_segment_count",
    "apply_retention",
    "delete_records",
    "HIGH_WATERMARK_OFFSET",
]

logger = logging.getLogger(__name__)

#: DeleteRecords' offset meaning "up to the high watermark" (Kafka's
#: ``DeleteRecordsRequest.HIGH_WATERMARK``).
HIGH_WATERMARK_OFFSET = -1


class DeleteRecordsError(LogError):
    """A DeleteRecords request for one partition was refused; ``error_code`` says why."""

    def __init__(self, error_code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """What one retention pass did to one log."""

    deleted_segment_count: int
    deleted_bytes: int
    log_start_offset: int
    reason: str
    """``log-start-offset``, ``retention.ms``, ``retention.bytes`` or ``""`` (nothing)."""


def _segment_time_ms(segment_largest_timestamp: int, created_ms: int) -> int:
    return segment_largest_timestamp if segment_largest_timestamp >= 0 else created_ms


def deletable_segment_count(log: PartitionLog, now_ms: int) -> tuple[int, str]:
    """How many of the oldest segments retention may delete now, and the rule that decided.

    Pure with respect to the files: reads only the segments' in-memory state.
    """
    segments = log.segments
    config = log.config
    # Never the active segment, and never one holding offsets at or above the high watermark.
    limit = len(segments) - 1
    while limit > 0 and segments[limit].base_offset > log.high_watermark:
        limit -= 1
    count, reason = 0, ""
    while count < limit and segments[count + 1].base_offset <= log.log_start_offset:
        count, reason = count + 1, "log-start-offset"
    if "delete" not in config.cleanup_policy:
        return count, reason
    if config.retention_ms >= 0:
        expired = 0
        while expired < limit and now_ms - _segment_time_ms(
            segments[expired].largest_timestamp, segments[expired].created_ms
        ) > config.retention_ms:
            expired += 1
        if expired > count:
            count, reason = expired, "retention.ms"
    if config.retention_bytes >= 0:
        excess_bytes = sum(s.size_bytes for s in segments[count:]) - config.retention_bytes
        while count < limit and excess_bytes - segments[count].size_bytes >= 0:
            excess_bytes -= segments[count].size_bytes
            count, reason = count + 1, "retention.bytes"
    return count, reason


def apply_retention(log: PartitionLog, now_ms: int) -> RetentionResult:
    """Delete the segments :func:`deletable_segment_count` allows and advance the log start.

    Raises:
        LogError: the log is closed or its disk failed.
    """
    count, reason = deletable_segment_count(log, now_ms)
    if count == 0:
        return RetentionResult(0, 0, log.log_start_offset, "")
    segments = log.segments
    deleted_bytes = sum(segment.size_bytes for segment in segments[:count])
    log_start_offset = log.delete_records_before(segments[count].base_offset)
    logger.info("%s-%d: deleted %d segment(s), %d bytes, by %s; log start offset is now %d",
                log.topic, log.partition, count, deleted_bytes, reason, log_start_offset)
    return RetentionResult(count, deleted_bytes, log_start_offset, reason)


def delete_records(log: PartitionLog, offset: int) -> int:
    """DeleteRecords for one partition: move its log start offset to ``offset``.

    Args:
        offset: the new log start offset, or -1 for the high watermark.  An offset at or
            below the current log start changes nothing.

    Returns:
        The log start offset afterwards (the response's ``low_watermark``).

    Raises:
        DeleteRecordsError: POLICY_VIOLATION when the topic's ``cleanup.policy`` lacks
            ``delete`` (Kafka refuses to delete from a compact-only topic), or
            OFFSET_OUT_OF_RANGE for an offset above the high watermark or below -1.
    """
    if "delete" not in log.config.cleanup_policy:
        raise DeleteRecordsError(
            ErrorCode.POLICY_VIOLATION,
            f"Records of partition {log.topic}-{log.partition} can be deleted only if the "
            "topic has a cleanup.policy that includes delete")
    if offset == HIGH_WATERMARK_OFFSET:
        offset = log.high_watermark
    if offset < 0 or offset > log.high_watermark:
        raise DeleteRecordsError(
            ErrorCode.OFFSET_OUT_OF_RANGE,
            f"cannot delete records of {log.topic}-{log.partition} before {offset}: the high "
            f"watermark is {log.high_watermark}")
    return log.delete_records_before(offset)
