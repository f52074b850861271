"""Record batches as the log cleaner sees them: record spans, filtering, delete horizons.

This module owns the byte-level half of compaction: finding each record's key, offset and
tombstone flag inside a v2 batch without building record objects, and writing a batch back
with only the records the cleaner keeps.  It is pure (no I/O) and never decides *which*
records to keep (``cleaner.py`` does).

A rewritten batch keeps everything that identifies it: ``base_offset``,
``last_offset_delta`` (so the batch's last offset, and the producer's sequence bookkeeping,
survive even when its last record is removed), ``partition_leader_epoch``, the producer id,
epoch and base sequence, the codec and the transactional/control bits.  The kept records are
copied byte for byte; only ``records_count``, the length, the CRC and, when it moves, the base
timestamp change.  A batch may end up with zero records: Kafka keeps such an empty batch when
it is a producer's last, so idempotence state survives compaction, and consumers skip it.

Delete horizon (KIP-534): attribute bit 6 (0x40) says ``base_timestamp`` holds the time after
which the batch's tombstones and abort markers may be removed.  The first cleaning that keeps a
tombstone sets it to ``now + delete.retention.ms``; record timestamp deltas are re-encoded
against the new base so every record's absolute timestamp is unchanged.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterator, NamedTuple

from crc32c import crc32c

from streambus.protocol.records.batch import (
    BATCH_HEADER_SIZE,
    COMPRESSION_MASK,
    LOG_OVERHEAD,
    MAGIC_V2,
    BatchHeader,
    CorruptRecordError,
)
from streambus.protocol.records.compression import CompressionType, compress, decompress

__all__ = [
    "DELETE_HORIZON_MASK",
    "RecordSpan",
    "RecordsSection",
    "delete_horizon_ms",
    "read_records_section",
    "records_data",
    "iter_record_spans",
    "build_compacted_batch",
    "batch_crc_is_valid",
]

#: Attribute bit 6: ``base_timestamp`` is the batch's delete horizon (KIP-534).
DELETE_HORIZON_MASK = 0x40
#: Bound on a batch's decompressed records section, as ``record.DEFAULT_MAX_OUTPUT_BYTES``.
_MAX_OUTPUT_BYTES = 64 * 1024 * 1024

_HEADER = struct.Struct(">qiibIhiqqqhii")
_CRC = struct.Struct(">I")
_CRC_OFFSET = 17
_ATTRIBUTES_OFFSET = 21


class RecordSpan(NamedTuple):
    """One record of a batch, located in the (decompressed) records section."""

    start: int
    """Position of the record's length varint in the section."""
    end: int
    """Position after the record."""
    offset_delta: int
    timestamp_delta: int
    key: bytes | None
    is_tombstone: bool
    """The value is null: a delete marker for ``key``."""


@dataclass(slots=True)
class RecordsSection:
    """The decompressed records of one batch and where each record lies in them."""

    data: bytes | memoryview
    spans: list[RecordSpan]


def delete_horizon_ms(header: BatchHeader) -> int | None:
    """The batch's delete horizon, or None when it has none yet."""
    return header.base_timestamp if header.attributes & DELETE_HORIZON_MASK else None


def batch_crc_is_valid(batch: bytes | memoryview, header: BatchHeader) -> bool:
    """Whether the batch's CRC-32C matches (``batch`` holds exactly this batch)."""
    return crc32c(memoryview(batch)[_ATTRIBUTES_OFFSET: header.size_bytes]) == header.crc


def _varint(data: bytes | memoryview, position: int, end: int) -> tuple[int, int]:
    """Zigzag varint/varlong at ``position``; returns (value, next position)."""
    unsigned = 0
    shift = 0
    while True:
        if position >= end or shift > 63:
            raise CorruptRecordError("record varint is truncated or too long")
        byte = data[position]
        position += 1
        unsigned |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (unsigned >> 1) ^ -(unsigned & 1), position
        shift += 7


def records_data(batch: bytes | memoryview, header: BatchHeader) -> bytes | memoryview:
    """The batch's records section, decompressed (``batch`` holds exactly this batch).

    Raises:
        CorruptRecordError: decompression failed or exceeded its bound.
    """
    view = memoryview(batch)[BATCH_HEADER_SIZE: header.size_bytes]
    codec = header.attributes & COMPRESSION_MASK
    if codec == CompressionType.NONE:
        return bytes(view)
    return decompress(codec, view, max_output_bytes=_MAX_OUTPUT_BYTES)


def iter_record_spans(data: bytes | memoryview, count: int) -> Iterator[RecordSpan]:
    """Locate ``count`` records in a records section, lazily, so a caller can pause between
    records of a large batch.

    Only what compaction needs is decoded: the length, timestamp and offset deltas, the key
    and whether the value is null.  Values and headers are skipped by the record length.
    One-byte varints (almost every length and delta) are decoded inline.

    Raises:
        CorruptRecordError: the section does not hold ``count`` well-formed records.
    """
    end = len(data)
    position = 0
    for _ in range(count):
        start = position
        if position >= end:
            raise CorruptRecordError("records section is truncated")
        byte = data[position]
        if byte < 0x80:
            length, position = (byte >> 1) ^ -(byte & 1), position + 1
        else:
            length, position = _varint(data, position, end)
        record_end = position + length
        if length < 2 or record_end > end:
            raise CorruptRecordError(f"record length {length} is invalid")
        position += 1  # attributes
        byte = data[position]
        if byte < 0x80:
            timestamp_delta, position = (byte >> 1) ^ -(byte & 1), position + 1
        else:
            timestamp_delta, position = _varint(data, position, record_end)
        offset_delta, position = _varint(data, position, record_end)
        key_length, position = _varint(data, position, record_end)
        if key_length < 0:
            key = None
        else:
            if position + key_length > record_end:
                raise CorruptRecordError(f"record key length {key_length} is invalid")
            key = bytes(data[position: position + key_length])
            position += key_length
        if position >= record_end:
            raise CorruptRecordError("record value length is missing")
        # A null value is the zigzag varint -1: the single byte 0x01.
        yield RecordSpan(start, record_end, offset_delta, timestamp_delta, key,
                         data[position] == 0x01)
        position = record_end
    if position != end:
        raise CorruptRecordError(f"{end - position} bytes left after {count} records")


def read_records_section(batch: bytes | memoryview, header: BatchHeader) -> RecordsSection:
    """Every record span of a batch at once (``batch`` holds exactly this batch).

    Raises:
        CorruptRecordError: as :func:`records_data` and :func:`iter_record_spans`.
    """
    data = records_data(batch, header)
    return RecordsSection(data, list(iter_record_spans(data, header.records_count)))


def _encode_varint(value: int, out: bytearray) -> None:
    unsigned = ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF
    while unsigned >= 0x80:
        out.append((unsigned & 0x7F) | 0x80)
        unsigned >>= 7
    out.append(unsigned)


def _rebase_record(data: bytes | memoryview, span: RecordSpan, shift_ms: int,
                   out: bytearray) -> None:
    """Copy one record with its timestamp delta moved by ``shift_ms``."""
    _, position = _varint(data, span.start, span.end)  # length
    attributes = data[position]
    _, rest = _varint(data, position + 1, span.end)  # old timestamp delta
    body = bytearray((attributes,))
    _encode_varint(span.timestamp_delta + shift_ms, body)
    body += data[rest: span.end]
    _encode_varint(len(body), out)
    out += body


def build_compacted_batch(
    batch: bytes | memoryview,
    header: BatchHeader,
    section: RecordsSection,
    kept: list[RecordSpan],
    *,
    new_delete_horizon_ms: int | None = None,
) -> bytes:
    """The batch with only the ``kept`` records (in order), optionally given a delete horizon.

    Args:
        batch: exactly the original batch's bytes.
        section: :func:`read_records_section` of it.
        kept: the spans to keep, a subsequence of ``section.spans``; may be empty.
        new_delete_horizon_ms: set the delete horizon (bit 6 and ``base_timestamp``); the kept
            records' timestamp deltas are re-encoded so absolute timestamps do not change.

    Returns:
        The new batch, with a fresh CRC.
    """
    assert header.magic == MAGIC_V2
    attributes = header.attributes
    base_timestamp = header.base_timestamp
    payload = bytearray()
    if new_delete_horizon_ms is not None:
        attributes |= DELETE_HORIZON_MASK
        shift_ms = base_timestamp - new_delete_horizon_ms
        base_timestamp = new_delete_horizon_ms
        for span in kept:
            _rebase_record(section.data, span, shift_ms, payload)
    else:
        data = section.data
        for span in kept:
            payload += data[span.start: span.end]
    codec = attributes & COMPRESSION_MASK
    if not kept:
        attributes &= ~COMPRESSION_MASK  # an empty batch is written uncompressed, as Kafka's
    elif codec != CompressionType.NONE:
        payload = bytearray(compress(codec, payload))
    max_timestamp = header.max_timestamp
    if kept and not header.is_log_append_time:
        old_base = header.base_timestamp
        max_timestamp = max(old_base + span.timestamp_delta for span in kept)
    out = bytearray(BATCH_HEADER_SIZE)
    _HEADER.pack_into(
        out, 0,
        header.base_offset,
        BATCH_HEADER_SIZE - LOG_OVERHEAD + len(payload),
        header.partition_leader_epoch,
        MAGIC_V2,
        0,
        attributes,
        header.last_offset_delta,
        base_timestamp,
        max_timestamp,
        header.producer_id,
        header.producer_epoch,
        header.base_sequence,
        len(kept),
    )
    out += payload
    _CRC.pack_into(out, _CRC_OFFSET, crc32c(memoryview(out)[_ATTRIBUTES_OFFSET:]))
    return bytes(out)
