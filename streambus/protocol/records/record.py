"""Records inside a v2 batch: decode them, build batches from them, and recompress batches.

This module owns the per-record varint layout and the assembly of whole batches (header,
records, compression, CRC).  It is the slow path: the broker's Produce and Fetch paths treat
batches as opaque bytes (``batch.py``) and come here only when they must look inside, for
recompression to a topic's ``compression.type``, control records, compaction or tests.  It
never performs I/O.

Record layout (KIP-98; "varint" is zigzag-encoded as in protobuf, "varlong" likewise, 64-bit)::

    field             type
    length            varint    bytes of the record after this field
    attributes        int8      unused, always 0
    timestamp_delta   varlong   timestamp - batch base_timestamp
    offset_delta      varint    offset - batch base_offset
    key_length        varint    -1 means a null key
    key               bytes
    value_length      varint    -1 means a null value
    value             bytes
    headers_count     varint
    headers           header_key_length varint (>= 0), header_key utf-8,
                      header_value_length varint (-1 null), header_value bytes

The records section (batch bytes 61 onwards) is the concatenation of ``records_count`` records,
compressed as one unit when the batch attributes name a codec (``compression.py``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Iterator, Sequence

from crc32c import crc32c

from streambus.protocol.records.batch import (
    BATCH_HEADER_SIZE,
    COMPRESSION_MASK,
    CONTROL_MASK,
    LOG_OVERHEAD,
    MAGIC_V2,
    NO_PARTITION_LEADER_EPOCH,
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    NO_SEQUENCE,
    TIMESTAMP_TYPE_MASK,
    TRANSACTIONAL_MASK,
    BatchHeader,
    CorruptRecordError,
    read_batch_header,
)
from streambus.protocol.records.compression import CompressionType, compress, decompress

__all__ = [
    "DEFAULT_MAX_OUTPUT_BYTES",
    "NO_TIMESTAMP",
    "Header",
    "Record",
    "TimestampType",
    "build_batch",
    "decode_records",
    "iter_records",
    "make_batch",
    "recompress_batch",
]

#: Default bound on a batch's decompressed records section.  Kafka's own reader has no such
#: bound; 64 MiB is far above ``message.max.bytes`` (1 MiB by default) times any sane ratio.
DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024 * 1024
#: Kafka's ``RecordBatch.NO_TIMESTAMP``.
NO_TIMESTAMP = -1

Header = tuple[str, bytes | None]


class TimestampType(IntEnum):
    """Bit 3 of a batch's attributes."""

    CREATE_TIME = 0
    LOG_APPEND_TIME = 1


@dataclass(slots=True)
class Record:
    """One record with absolute ``offset`` and ``timestamp`` (ms)."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[Header] = field(default_factory=list)


@dataclass(slots=True)
class _RawRecord:
    """A record as stored: deltas relative to the batch, before LogAppendTime is applied."""

    timestamp_delta: int
    offset_delta: int
    key: bytes | None
    value: bytes | None
    headers: list[Header]


_HEADER = struct.Struct(">qiibIhiqqqhii")
_CRC = struct.Struct(">I")
_CRC_OFFSET = 17
_ATTRIBUTES_OFFSET = 21
_INT32_MIN = -(1 << 31)
_INT32_MAX = (1 << 31) - 1
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
# A varint of an int32 takes at most 5 bytes, a varlong at most 10.
_VARINT_BYTES_MAX = 5
_VARLONG_BYTES_MAX = 10


# --------------------------------------------------------------------------------------------
# Varints


def _encode_varlong(value: int, out: bytearray) -> None:
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError(f"{value} does not fit a varlong")
    # Zigzag maps signed to unsigned so small negatives stay short (-1 -> 1, 1 -> 2).
    unsigned = ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF
    while unsigned >= 0x80:
        out.append((unsigned & 0x7F) | 0x80)
        unsigned >>= 7
    out.append(unsigned)


def _decode_varint(
    buf: bytes | memoryview, position: int, end: int, bytes_max: int
) -> tuple[int, int]:
    """Decode a zigzag varint from ``buf[position:end]``; return (value, next position)."""
    unsigned = 0
    shift = 0
    for index in range(bytes_max):
        if position + index >= end:
            raise CorruptRecordError("record varint is truncated")
        byte = buf[position + index]
        unsigned |= (byte & 0x7F) << shift
        if not byte & 0x80:
            value = (unsigned >> 1) ^ -(unsigned & 1)
            # Five 7-bit groups hold 35 bits; Kafka rejects what does not fit an int32.
            if bytes_max == _VARINT_BYTES_MAX and not _INT32_MIN <= value <= _INT32_MAX:
                raise CorruptRecordError("record varint overflows int32")
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise CorruptRecordError("record varlong overflows int64")
            return value, position + index + 1
        shift += 7
    raise CorruptRecordError("record varint is too long")


def _read_bytes(
    buf: bytes | memoryview, position: int, end: int, what: str
) -> tuple[bytes | None, int]:
    length, position = _decode_varint(buf, position, end, _VARINT_BYTES_MAX)
    if length == -1:
        return None, position
    if length < 0 or position + length > end:
        raise CorruptRecordError(f"record {what} length {length} is invalid")
    return bytes(buf[position : position + length]), position + length


def _write_bytes(data: bytes | bytearray | memoryview | None, out: bytearray) -> None:
    if data is None:
        out.append(0x01)  # zigzag(-1)
        return
    _encode_varlong(len(data), out)
    out += data


# --------------------------------------------------------------------------------------------
# Decoding


def iter_records(
    batch: bytes | bytearray | memoryview,
    header: BatchHeader | None = None,
    *,
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    verify_crc: bool = True,
) -> Iterator[Record]:
    """Yield the records of one batch lazily; see :func:`decode_records`."""
    header, start = _checked_header(batch, header, verify_crc)
    log_append_time = header.is_log_append_time
    for raw in _iter_raw_records(batch, start, header, max_output_bytes):
        timestamp = (
            header.max_timestamp if log_append_time else header.base_timestamp + raw.timestamp_delta
        )
        yield Record(
            header.base_offset + raw.offset_delta, timestamp, raw.key, raw.value, raw.headers
        )


def decode_records(
    batch: bytes | bytearray | memoryview,
    header: BatchHeader | None = None,
    *,
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    verify_crc: bool = True,
) -> list[Record]:
    """Decode every record of one v2 batch, with absolute offsets and timestamps.

    For LogAppendTime batches every record's timestamp is the batch ``max_timestamp``, as
    Kafka's consumers report it.

    Args:
        batch: the batch's own bytes, or a buffer holding it at ``header.position``.  When
            ``len(batch)`` equals the header's ``size_bytes`` it is taken to be the batch
            itself (so callers may pass a slice with the header they parsed from the whole
            buffer); otherwise the batch is looked up at ``header.position``.
        header: the batch's parsed header; when omitted it is read from byte 0.
        max_output_bytes: bound on the decompressed records section.
        verify_crc: check the CRC-32C first (callers that just validated may skip it).

    Raises:
        CorruptRecordError: bad CRC, wrong magic, truncation, a record that overruns or
            underruns its length, invalid UTF-8 in a header key, a records count that disagrees
            with the data, bytes left over, or decompression failure.
    """
    return list(
        iter_records(batch, header, max_output_bytes=max_output_bytes, verify_crc=verify_crc)
    )


def _checked_header(
    batch: bytes | bytearray | memoryview, header: BatchHeader | None, verify_crc: bool
) -> tuple[BatchHeader, int]:
    """Check the header against the buffer; return it with the batch's start in ``batch``."""
    if header is None:
        header = read_batch_header(batch, 0)
        start = 0
    elif len(batch) == header.size_bytes:
        start = 0  # the caller passed the batch's own bytes
    else:
        start = header.position
    if header.magic != MAGIC_V2:
        raise CorruptRecordError(f"record batch magic {header.magic} is not supported")
    if (
        header.batch_length < BATCH_HEADER_SIZE - LOG_OVERHEAD
        or start + header.size_bytes > len(batch)
    ):
        raise CorruptRecordError(f"record batch length {header.batch_length} is invalid")
    if verify_crc:
        view = memoryview(batch)
        if crc32c(view[start + _ATTRIBUTES_OFFSET : start + header.size_bytes]) != header.crc:
            raise CorruptRecordError("record batch CRC mismatch")
    return header, start


def _records_section(
    batch: bytes | bytearray | memoryview, start: int, header: BatchHeader, max_output_bytes: int
) -> bytes | memoryview:
    view = memoryview(batch)
    section = view[start + BATCH_HEADER_SIZE : start + header.size_bytes]
    if header.compression == CompressionType.NONE:
        if len(section) > max_output_bytes:
            raise CorruptRecordError(f"records exceed {max_output_bytes} bytes")
        return section
    return decompress(header.compression, section, max_output_bytes=max_output_bytes)


def _iter_raw_records(
    batch: bytes | bytearray | memoryview, start: int, header: BatchHeader, max_output_bytes: int
) -> Iterator[_RawRecord]:
    section = _records_section(batch, start, header, max_output_bytes)
    end = len(section)
    if header.records_count < 0:
        raise CorruptRecordError(f"records count {header.records_count} is invalid")
    position = 0
    # records_count is untrusted, but every record takes at least one byte, so this loop is
    # bounded by the section size as well as the count.
    for _ in range(header.records_count):
        record, position = _decode_record(section, position, end)
        yield record
    if position != end:
        raise CorruptRecordError(
            f"{end - position} bytes left after {header.records_count} records"
        )


def _decode_record(section: bytes | memoryview, position: int, end: int) -> tuple[_RawRecord, int]:
    length, position = _decode_varint(section, position, end, _VARINT_BYTES_MAX)
    record_end = position + length
    if length < 0 or record_end > end:
        raise CorruptRecordError(f"record length {length} is invalid")
    if position >= record_end:
        raise CorruptRecordError("record attributes are truncated")
    position += 1  # attributes: unused by any Kafka version so far
    timestamp_delta, position = _decode_varint(
        section, position, record_end, _VARLONG_BYTES_MAX
    )
    offset_delta, position = _decode_varint(section, position, record_end, _VARINT_BYTES_MAX)
    key, position = _read_bytes(section, position, record_end, "key")
    value, position = _read_bytes(section, position, record_end, "value")
    headers_count, position = _decode_varint(section, position, record_end, _VARINT_BYTES_MAX)
    if headers_count < 0:
        raise CorruptRecordError(f"record headers count {headers_count} is invalid")
    headers: list[Header] = []
    # Every header takes at least two bytes, so record_end bounds the loop too.
    for _ in range(headers_count):
        key_length, position = _decode_varint(section, position, record_end, _VARINT_BYTES_MAX)
        if key_length < 0 or position + key_length > record_end:
            raise CorruptRecordError(f"record header key length {key_length} is invalid")
        try:
            header_key = str(section[position : position + key_length], "utf-8")
        except UnicodeDecodeError:
            raise CorruptRecordError("record header key is not valid UTF-8") from None
        position += key_length
        header_value, position = _read_bytes(section, position, record_end, "header value")
        headers.append((header_key, header_value))
    if position != record_end:
        raise CorruptRecordError("record length disagrees with its fields")
    return _RawRecord(timestamp_delta, offset_delta, key, value, headers), record_end


# --------------------------------------------------------------------------------------------
# Building


def _encode_record(raw: _RawRecord, out: bytearray) -> None:
    body = bytearray(b"\x00")  # attributes
    _encode_varlong(raw.timestamp_delta, body)
    _encode_varlong(raw.offset_delta, body)
    _write_bytes(raw.key, body)
    _write_bytes(raw.value, body)
    _encode_varlong(len(raw.headers), body)
    for header_key, header_value in raw.headers:
        if not isinstance(header_key, str):
            raise TypeError(f"record header key must be str, not {type(header_key).__name__}")
        _write_bytes(header_key.encode("utf-8"), body)
        _write_bytes(header_value, body)
    _encode_varlong(len(body), out)
    out += body


def _as_tuple(record: Any) -> tuple[Any, Any, Any, Any]:
    if isinstance(record, tuple):
        if len(record) != 4:
            raise ValueError("record tuples are (key, value, headers, timestamp_ms)")
        return record
    return (record.key, record.value, record.headers, record.timestamp)


def _assemble_batch(
    raws: Sequence[_RawRecord],
    *,
    attributes: int,
    base_offset: int,
    partition_leader_epoch: int,
    base_timestamp: int,
    max_timestamp: int,
    last_offset_delta: int,
    producer_id: int,
    producer_epoch: int,
    base_sequence: int,
) -> bytes:
    section = bytearray()
    for raw in raws:
        _encode_record(raw, section)
    codec = attributes & COMPRESSION_MASK
    payload = compress(codec, section) if codec != CompressionType.NONE else section
    batch_length = BATCH_HEADER_SIZE - LOG_OVERHEAD + len(payload)
    out = bytearray(BATCH_HEADER_SIZE)
    _HEADER.pack_into(
        out,
        0,
        base_offset,
        batch_length,
        partition_leader_epoch,
        MAGIC_V2,
        0,  # crc, filled in below once the bytes it covers exist
        attributes,
        last_offset_delta,
        base_timestamp,
        max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        len(raws),
    )
    out += payload
    _CRC.pack_into(out, _CRC_OFFSET, crc32c(memoryview(out)[_ATTRIBUTES_OFFSET:]))
    return bytes(out)


def build_batch(
    records: Sequence[Any],
    *,
    compression: int = CompressionType.NONE,
    base_offset: int = 0,
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = NO_PRODUCER_EPOCH,
    base_sequence: int = NO_SEQUENCE,
    is_transactional: bool = False,
    is_control: bool = False,
    timestamp_type: int = TimestampType.CREATE_TIME,
) -> bytes:
    """Build one CRC'd v2 batch, as a producer would, with offset deltas 0..n-1.

    Args:
        records: ``(key, value, headers, timestamp_ms)`` tuples, or objects with ``key``,
            ``value``, ``headers`` and ``timestamp`` attributes (such as :class:`Record`; their
            ``offset`` is ignored).  Headers are ``(str, bytes | None)`` pairs; a
            ``timestamp_ms`` of ``None`` is stored as ``NO_TIMESTAMP``.
        compression: codec id for the records section.
        timestamp_type: ``LOG_APPEND_TIME`` sets the attribute bit; ``max_timestamp`` is
            still the largest record timestamp (see ``batch.set_log_append_time``).

    Returns:
        The batch bytes; ``base_timestamp`` is the first record's timestamp, as Java writes it.

    Raises:
        ValueError: no records, an unknown codec, or a value out of its field's range.
        TypeError: a header key that is not ``str``.
    """
    if not records:
        raise ValueError("a record batch needs at least one record")
    tuples = [_as_tuple(record) for record in records]
    timestamps = [NO_TIMESTAMP if t[3] is None else int(t[3]) for t in tuples]
    base_timestamp = timestamps[0]
    raws = [
        _RawRecord(timestamp - base_timestamp, index, key, value, list(headers or ()))
        for index, ((key, value, headers, _), timestamp) in enumerate(zip(tuples, timestamps))
    ]
    CompressionType(compression)  # raises ValueError for an unknown codec
    attributes = int(compression)
    if TimestampType(timestamp_type) is TimestampType.LOG_APPEND_TIME:
        attributes |= TIMESTAMP_TYPE_MASK
    if is_transactional:
        attributes |= TRANSACTIONAL_MASK
    if is_control:
        attributes |= CONTROL_MASK
    try:
        return _assemble_batch(
            raws,
            attributes=attributes,
            base_offset=base_offset,
            partition_leader_epoch=partition_leader_epoch,
            base_timestamp=base_timestamp,
            max_timestamp=max(timestamps),
            last_offset_delta=len(raws) - 1,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            base_sequence=base_sequence,
        )
    except struct.error as error:
        raise ValueError(f"record batch field out of range: {error}") from None


def make_batch(values: Sequence[bytes | None], *, timestamp_ms: int = 0, **kwargs: Any) -> bytes:
    """Test convenience: a batch of key-less, header-less records all stamped ``timestamp_ms``.

    Keyword arguments other than ``timestamp_ms`` go to :func:`build_batch`.
    """
    return build_batch([(None, value, [], timestamp_ms) for value in values], **kwargs)


def recompress_batch(
    batch: bytes | bytearray | memoryview,
    header: BatchHeader,
    target_codec: int,
    *,
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
) -> bytes:
    """Rewrite one batch with ``target_codec``, as a broker must when a topic's
    ``compression.type`` differs from the producer's codec.

    Offset deltas, timestamp deltas, base and max timestamps, the timestamp type, the
    transactional and control bits, producer fields, ``base_offset`` and
    ``partition_leader_epoch`` are all kept; only the codec bits, the records section, the
    length and the CRC change.

    Args:
        batch, header: as for :func:`decode_records` (a slice or the whole buffer).

    Returns:
        The new batch bytes (a copy of the original when the codec already matches).

    Raises:
        CorruptRecordError: the source batch cannot be decoded.
        ValueError: ``target_codec`` is not a known codec id.
    """
    target = CompressionType(target_codec)
    header, start = _checked_header(batch, header, verify_crc=True)
    if header.compression == target:
        return bytes(memoryview(batch)[start : start + header.size_bytes])
    raws = list(_iter_raw_records(batch, start, header, max_output_bytes))
    return _assemble_batch(
        raws,
        attributes=(header.attributes & ~COMPRESSION_MASK) | target,
        base_offset=header.base_offset,
        partition_leader_epoch=header.partition_leader_epoch,
        base_timestamp=header.base_timestamp,
        max_timestamp=header.max_timestamp,
        last_offset_delta=header.last_offset_delta,
        producer_id=header.producer_id,
        producer_epoch=header.producer_epoch,
        base_sequence=header.base_sequence,
    )
