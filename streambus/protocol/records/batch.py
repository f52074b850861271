"""Record batch v2 (magic 2) headers: parse, validate and rewrite without touching records.

This module owns the byte layout of a batch header and every operation the broker's hot path
performs on it.  It never decompresses or iterates records (see ``record.py`` for that): a
Produce request's batches are validated, given offsets and appended as bytes.

Layout (all big-endian), as in Kafka's ``DefaultRecordBatch``::

    offset  size  field
         0     8  base_offset
         8     4  batch_length            bytes after this field (total size - 12)
        12     4  partition_leader_epoch
        16     1  magic                   must be 2
        17     4  crc                     CRC-32C (Castagnoli) of bytes [21, end)
        21     2  attributes              bits 0-2 codec, 3 timestamp type, 4 transactional,
                                          5 control, 6 delete horizon set (KIP-534)
        23     4  last_offset_delta
        27     8  base_timestamp
        35     8  max_timestamp
        43     8  producer_id
        51     2  producer_epoch
        53     4  base_sequence
        57     4  records_count
        61     -  records (possibly compressed)

Because the CRC starts at ``attributes``, rewriting ``base_offset`` and
``partition_leader_epoch`` never invalidates it; rewriting ``max_timestamp`` or
``attributes`` (LogAppendTime) needs the CRC recomputed, but still no decompression.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterator

from crc32c import crc32c

__all__ = [
    "BATCH_HEADER_SIZE",
    "LOG_OVERHEAD",
    "MAGIC_V2",
    "NO_PRODUCER_ID",
    "NO_PRODUCER_EPOCH",
    "NO_SEQUENCE",
    "NO_PARTITION_LEADER_EPOCH",
    "COMPRESSION_MASK",
    "TIMESTAMP_TYPE_MASK",
    "TRANSACTIONAL_MASK",
    "CONTROL_MASK",
    "BatchHeader",
    "InvalidRecordError",
    "CorruptRecordError",
    "read_batch_header",
    "validate_batches",
    "scan_valid_prefix",
    "iter_batch_headers",
    "rewrite_base_offset",
    "rewrite_partition_leader_epoch",
    "set_log_append_time",
    "compute_crc",
]

#: Offset (8) + batch length (4): the part of every batch that ``batch_length`` excludes.
LOG_OVERHEAD = 12
#: Everything up to and including ``records_count``.
BATCH_HEADER_SIZE = 61
MAGIC_V2 = 2

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
NO_PARTITION_LEADER_EPOCH = -1

COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_MASK = 0x08
TRANSACTIONAL_MASK = 0x10
CONTROL_MASK = 0x20

_MAGIC_OFFSET = 16
_CRC_OFFSET = 17
_ATTRIBUTES_OFFSET = 21
_MAX_TIMESTAMP_OFFSET = 35
_PARTITION_LEADER_EPOCH_OFFSET = 12

_PREFIX = struct.Struct(">qi")  # base_offset, batch_length
_HEADER = struct.Struct(">qiibIhiqqqhii")
_INT64 = struct.Struct(">q")
_INT32 = struct.Struct(">i")
_UINT32 = struct.Struct(">I")
_INT16 = struct.Struct(">h")


class InvalidRecordError(ValueError):
    """A batch is well-formed bytes but breaks a rule (wrong magic, bad counts): INVALID_RECORD."""


class CorruptRecordError(ValueError):
    """A batch's bytes are damaged (CRC mismatch, truncated, impossible length): CORRUPT_MESSAGE."""


@dataclass(slots=True)
class BatchHeader:
    """The fixed 61-byte header of one v2 batch, plus where the batch sits in its buffer."""

    position: int
    """Byte position of the batch (its ``base_offset`` field) in the buffer it was read from."""
    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size_bytes(self) -> int:
        """Total size of the batch including the 12-byte log overhead."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def is_log_append_time(self) -> bool:
        return bool(self.attributes & TIMESTAMP_TYPE_MASK)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_MASK)

    @property
    def has_producer_id(self) -> bool:
        return self.producer_id >= 0

    @property
    def last_sequence(self) -> int:
        """Sequence of the batch's last record; sequences wrap at 2**31 (KIP-98)."""
        if self.base_sequence < 0:
            return NO_SEQUENCE
        return (self.base_sequence + self.last_offset_delta) % 2147483648


def read_batch_header(buf: bytes | bytearray | memoryview, position: int = 0) -> BatchHeader:
    """Parse the header of the batch at ``position``; no validation beyond having 61 bytes.

    Raises:
        CorruptRecordError: fewer than 61 bytes remain.
    """
    if len(buf) - position < BATCH_HEADER_SIZE:
        raise CorruptRecordError("record batch header is truncated")
    return BatchHeader(position, *_HEADER.unpack_from(buf, position))


def compute_crc(buf: bytes | bytearray | memoryview, position: int, size_bytes: int) -> int:
    """CRC-32C of the batch at ``position`` over its CRC scope (attributes to end)."""
    view = memoryview(buf)
    return crc32c(view[position + _ATTRIBUTES_OFFSET : position + size_bytes])


def validate_batches(
    buf: bytes | bytearray | memoryview, *, verify_crc: bool = True
) -> list[BatchHeader]:
    """Validate every batch in a Produce request's ``records`` field.

    Checks that batches tile the buffer exactly, that each is magic 2, that its record count
    agrees with ``last_offset_delta``, and (by default) its CRC.  Records are not decoded.

    Returns:
        The batch headers in order; empty input yields an empty list.

    Raises:
        CorruptRecordError: truncated data, a length that overruns the buffer, a CRC mismatch.
        InvalidRecordError: magic other than 2, or inconsistent counts.
    """
    headers: list[BatchHeader] = []
    view = memoryview(buf)
    total = len(view)
    position = 0
    while position < total:
        if total - position < BATCH_HEADER_SIZE:
            raise CorruptRecordError("record batch is truncated")
        header = BatchHeader(position, *_HEADER.unpack_from(view, position))
        size_bytes = header.batch_length + LOG_OVERHEAD
        if header.batch_length < BATCH_HEADER_SIZE - LOG_OVERHEAD or position + size_bytes > total:
            raise CorruptRecordError(f"record batch length {header.batch_length} is invalid")
        if header.magic != MAGIC_V2:
            raise InvalidRecordError(f"record batch magic {header.magic} is not supported")
        if header.records_count < 0 or header.last_offset_delta < 0:
            raise InvalidRecordError("record batch has negative counts")
        # Kafka requires lastOffsetDelta == count - 1 for a batch freshly written by a
        # producer (compaction is the only thing that may leave gaps, and it runs broker-side).
        if header.records_count != header.last_offset_delta + 1:
            raise InvalidRecordError("record count does not match last_offset_delta")
        if verify_crc:
            crc = crc32c(view[position + _ATTRIBUTES_OFFSET : position + size_bytes])
            if crc != header.crc:
                raise CorruptRecordError("record batch CRC mismatch")
        headers.append(header)
        position += size_bytes
    return headers


def iter_batch_headers(
    buf: bytes | bytearray | memoryview, position: int = 0
) -> Iterator[BatchHeader]:
    """Yield headers of consecutive complete batches from ``position``; stop at a partial one.

    Trusts the data (it is for reading our own log); use :func:`scan_valid_prefix` for recovery.
    """
    total = len(buf)
    while total - position >= BATCH_HEADER_SIZE:
        header = BatchHeader(position, *_HEADER.unpack_from(buf, position))
        size_bytes = header.batch_length + LOG_OVERHEAD
        if header.batch_length <= 0 or position + size_bytes > total:
            return
        yield header
        position += size_bytes


def scan_valid_prefix(
    buf: bytes | bytearray | memoryview, position: int = 0, *, expected_offset: int | None = None
) -> tuple[int, list[BatchHeader]]:
    """Walk batches from ``position`` and stop at the first torn, corrupt or out-of-order one.

    Used by log recovery after an unclean shutdown: everything past the returned position is
    truncated.  Offsets must strictly increase (and start at or after ``expected_offset``).

    Returns:
        (end position of the last valid batch, headers of the valid batches).
    """
    view = memoryview(buf)
    total = len(view)
    headers: list[BatchHeader] = []
    while total - position >= BATCH_HEADER_SIZE:
        header = BatchHeader(position, *_HEADER.unpack_from(view, position))
        size_bytes = header.batch_length + LOG_OVERHEAD
        if (
            header.batch_length < BATCH_HEADER_SIZE - LOG_OVERHEAD
            or position + size_bytes > total
            or header.magic != MAGIC_V2
            or header.last_offset_delta < 0
            or (expected_offset is not None and header.base_offset < expected_offset)
        ):
            break
        if crc32c(view[position + _ATTRIBUTES_OFFSET : position + size_bytes]) != header.crc:
            break
        headers.append(header)
        expected_offset = header.base_offset + header.last_offset_delta + 1
        position += size_bytes
    return position, headers


def rewrite_base_offset(buf: bytearray | memoryview, position: int, base_offset: int) -> None:
    """Set a batch's ``base_offset`` in place; the CRC does not cover it."""
    _INT64.pack_into(buf, position, base_offset)


def rewrite_partition_leader_epoch(
    buf: bytearray | memoryview, position: int, partition_leader_epoch: int
) -> None:
    """Set a batch's ``partition_leader_epoch`` in place; the CRC does not cover it."""
    _INT32.pack_into(buf, position + _PARTITION_LEADER_EPOCH_OFFSET, partition_leader_epoch)


def set_log_append_time(
    buf: bytearray | memoryview, header: BatchHeader, timestamp_ms: int
) -> None:
    """Stamp a batch with LogAppendTime as Kafka does: set the timestamp-type bit and
    ``max_timestamp``, then recompute the CRC.  Record timestamp deltas are left alone because
    consumers take every record's timestamp from ``max_timestamp`` for such batches.
    """
    position = header.position
    attributes = header.attributes | TIMESTAMP_TYPE_MASK
    _INT16.pack_into(buf, position + _ATTRIBUTES_OFFSET, attributes)
    _INT64.pack_into(buf, position + _MAX_TIMESTAMP_OFFSET, timestamp_ms)
    crc = compute_crc(buf, position, header.size_bytes)
    _UINT32.pack_into(buf, position + _CRC_OFFSET, crc)
    header.attributes = attributes
    header.max_timestamp = timestamp_ms
    header.crc = crc
