"""Control batches: the transaction markers (COMMIT / ABORT) a transaction coordinator writes.

This module owns the bytes of control records (KIP-98).  It builds and parses them; deciding
when to write one (the transaction coordinator) or what it does to the last stable offset (the
log) happens elsewhere.

A control batch has the transactional (0x10) and control (0x20) attribute bits set, carries the
producer's id and epoch, ``base_sequence`` -1, and exactly one record whose key and value are::

    key    offset  size  field
                0     2  version (int16, 0)
                2     2  type (int16): 0 ABORT, 1 COMMIT; KRaft uses 2-6 for its own markers

    value  offset  size  field                 (ABORT and COMMIT only: EndTransactionMarker)
                0     2  version (int16, 0)
                2     4  coordinator_epoch (int32)

Later key or value versions may append fields, so readers accept longer keys and values, as
Kafka's ``ControlRecordType.parse`` and ``EndTransactionMarker.deserialize`` do.
"""

from __future__ import annotations

import struct
from enum import IntEnum

from streambus.protocol.records.batch import (
    NO_PARTITION_LEADER_EPOCH,
    NO_SEQUENCE,
    BatchHeader,
    InvalidRecordError,
    read_batch_header,
)
from streambus.protocol.records.record import build_batch, decode_records

__all__ = [
    "ControlRecordType",
    "CONTROL_RECORD_KEY_VERSION",
    "END_TXN_MARKER_VALUE_VERSION",
    "build_control_batch",
    "parse_control_record",
    "read_control_record_type",
]


class ControlRecordType(IntEnum):
    """Kafka's ``ControlRecordType``; only ABORT and COMMIT appear in data partitions."""

    ABORT = 0
    COMMIT = 1
    LEADER_CHANGE = 2
    SNAPSHOT_HEADER = 3
    SNAPSHOT_FOOTER = 4
    KRAFT_VERSION = 5
    KRAFT_VOTERS = 6


CONTROL_RECORD_KEY_VERSION = 0
END_TXN_MARKER_VALUE_VERSION = 0

_KEY = struct.Struct(">hh")
_VALUE = struct.Struct(">hi")


def build_control_batch(
    control_type: int,
    producer_id: int,
    producer_epoch: int,
    coordinator_epoch: int,
    timestamp_ms: int,
    base_offset: int = 0,
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
) -> bytes:
    """Build a one-record transaction marker batch.

    Args:
        control_type: ``ControlRecordType.COMMIT`` or ``ControlRecordType.ABORT``.
        coordinator_epoch: the transaction coordinator's epoch, so a partition leader can
            fence markers from a deposed coordinator (KIP-98).

    Raises:
        ValueError: ``control_type`` is not COMMIT or ABORT, or a field is out of range.
    """
    marker_type = ControlRecordType(control_type)
    if marker_type not in (ControlRecordType.ABORT, ControlRecordType.COMMIT):
        raise ValueError(f"{marker_type.name} is not a transaction marker")
    try:
        key = _KEY.pack(CONTROL_RECORD_KEY_VERSION, marker_type)
        value = _VALUE.pack(END_TXN_MARKER_VALUE_VERSION, coordinator_epoch)
    except struct.error as error:
        raise ValueError(f"control record field out of range: {error}") from None
    return build_batch(
        [(key, value, [], timestamp_ms)],
        base_offset=base_offset,
        partition_leader_epoch=partition_leader_epoch,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=NO_SEQUENCE,
        is_transactional=True,
        is_control=True,
    )


def read_control_record_type(
    batch: bytes | bytearray | memoryview, header: BatchHeader | None = None
) -> int:
    """The type of a control batch's record: a :class:`ControlRecordType`, or the raw int for
    a type this broker does not know (consumers skip those; Kafka calls them UNKNOWN).

    Raises:
        InvalidRecordError: not a control batch, not exactly one record, or a malformed key.
        CorruptRecordError: the batch bytes are damaged.
    """
    key, _ = _control_key_value(batch, header)
    return _parse_key(key)


def parse_control_record(
    batch: bytes | bytearray | memoryview, header: BatchHeader | None = None
) -> tuple[ControlRecordType, int]:
    """Parse a transaction marker batch.

    Args:
        batch, header: as for ``record.decode_records`` (the batch's own bytes, or a buffer
            holding it at ``header.position``; no header means the batch starts at byte 0).

    Returns:
        ``(ControlRecordType.COMMIT or ABORT, coordinator_epoch)``.

    Raises:
        InvalidRecordError: not a control batch, not a COMMIT/ABORT marker, or a key or value
            that is too short or has a negative version.
        CorruptRecordError: the batch bytes are damaged.
    """
    key, value = _control_key_value(batch, header)
    marker_type = _parse_key(key)
    if marker_type not in (ControlRecordType.ABORT, ControlRecordType.COMMIT):
        raise InvalidRecordError(f"control record type {marker_type} is not a transaction marker")
    if value is None or len(value) < _VALUE.size:
        raise InvalidRecordError("transaction marker value is too short")
    version, coordinator_epoch = _VALUE.unpack_from(value)
    if version < 0:
        raise InvalidRecordError(f"transaction marker version {version} is invalid")
    return ControlRecordType(marker_type), coordinator_epoch


def _control_key_value(
    batch: bytes | bytearray | memoryview, header: BatchHeader | None
) -> tuple[bytes, bytes | None]:
    if header is None:
        header = read_batch_header(batch, 0)
    if not header.is_control:
        raise InvalidRecordError("batch is not a control batch")
    records = decode_records(batch, header)
    if len(records) != 1:
        raise InvalidRecordError(f"control batch holds {len(records)} records, not 1")
    key = records[0].key
    if key is None or len(key) < _KEY.size:
        raise InvalidRecordError("control record key is too short")
    return key, records[0].value


def _parse_key(key: bytes) -> int:
    version, control_type = _KEY.unpack_from(key)
    if version < 0:
        raise InvalidRecordError(f"control record key version {version} is invalid")
    try:
        return ControlRecordType(control_type)
    except ValueError:
        return control_type
