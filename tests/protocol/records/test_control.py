"""Control batches: transaction markers (KIP-98) are built and parsed as Kafka lays them out.

Method: build COMMIT and ABORT markers, check the raw key/value bytes and attribute bits with
kafka-python's independent reader, parse them back, and feed malformed control records
(built with ``build_batch(is_control=True)``) to the parser.
"""

from __future__ import annotations

import struct

import pytest
from kafka.record.memory_records import MemoryRecords

from streambus.protocol.records import (
    ControlRecordType,
    CorruptRecordError,
    InvalidRecordError,
    build_batch,
    build_control_batch,
    parse_control_record,
    read_control_record_type,
    validate_batches,
)

MARKERS = [
    pytest.param(ControlRecordType.COMMIT, id="commit"),
    pytest.param(ControlRecordType.ABORT, id="abort"),
]


def control_batch(key: bytes | None, value: bytes | None, *, count: int = 1) -> bytes:
    return build_batch(
        [(key, value, [], 0)] * count,
        producer_id=1,
        producer_epoch=0,
        is_transactional=True,
        is_control=True,
    )


@pytest.mark.parametrize("marker", MARKERS)
def test_control_batch_layout_matches_kafka(marker: ControlRecordType) -> None:
    batch = build_control_batch(
        marker,
        producer_id=4001,
        producer_epoch=7,
        coordinator_epoch=12,
        timestamp_ms=1_700_000_000_000,
        base_offset=88,
        partition_leader_epoch=3,
    )

    (header,) = validate_batches(batch)
    reader = MemoryRecords(batch).next_batch()
    assert reader.validate_crc()
    (record,) = list(reader)

    assert (header.is_control, header.is_transactional) == (True, True)
    assert reader.is_control_batch and reader.is_transactional
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (4001, 7, -1)
    assert (header.base_offset, header.partition_leader_epoch) == (88, 3)
    assert (record.offset, record.timestamp) == (88, 1_700_000_000_000)
    assert record.key == struct.pack(">hh", 0, marker)
    assert record.value == struct.pack(">hi", 0, 12)


@pytest.mark.parametrize("marker", MARKERS)
def test_parse_control_record_returns_type_and_coordinator_epoch(marker: ControlRecordType) -> None:
    batch = build_control_batch(marker, 1, 0, coordinator_epoch=2_000_000_000, timestamp_ms=5)

    assert parse_control_record(batch) == (marker, 2_000_000_000)
    assert read_control_record_type(batch) == marker


def test_parse_control_record_finds_the_batch_by_header_position() -> None:
    data = build_control_batch(ControlRecordType.ABORT, 1, 0, 1, 0, base_offset=0)
    data += build_control_batch(ControlRecordType.COMMIT, 2, 0, 9, 0, base_offset=1)

    headers = validate_batches(data)

    assert [parse_control_record(data, header) for header in headers] == [
        (ControlRecordType.ABORT, 1),
        (ControlRecordType.COMMIT, 9),
    ]


def test_parse_control_record_accepts_longer_future_versions() -> None:
    """Kafka reads only the fields it knows, so later versions may append fields."""
    batch = control_batch(struct.pack(">hh", 1, 1) + b"\x00\x00", struct.pack(">hi", 1, 5) + b"xx")

    assert parse_control_record(batch) == (ControlRecordType.COMMIT, 5)


def test_read_control_record_type_reports_unknown_types_as_raw_ints() -> None:
    assert read_control_record_type(control_batch(struct.pack(">hh", 0, 42), None)) == 42
    leader_change = control_batch(struct.pack(">hh", 0, 2), b"")
    assert read_control_record_type(leader_change) is ControlRecordType.LEADER_CHANGE


INVALID_CONTROL_BATCHES = {
    "not_control": build_batch([(struct.pack(">hh", 0, 1), struct.pack(">hi", 0, 1), [], 0)]),
    "key_null": control_batch(None, struct.pack(">hi", 0, 1)),
    "key_short": control_batch(b"\x00\x00\x01", struct.pack(">hi", 0, 1)),
    "key_negative_version": control_batch(struct.pack(">hh", -1, 1), struct.pack(">hi", 0, 1)),
    "value_null": control_batch(struct.pack(">hh", 0, 1), None),
    "value_short": control_batch(struct.pack(">hh", 0, 0), b"\x00\x00\x00"),
    "value_negative_version": control_batch(struct.pack(">hh", 0, 0), struct.pack(">hi", -1, 1)),
    "not_a_marker": control_batch(struct.pack(">hh", 0, 2), struct.pack(">hi", 0, 1)),
    "two_records": control_batch(struct.pack(">hh", 0, 1), struct.pack(">hi", 0, 1), count=2),
}


@pytest.mark.parametrize(
    "batch", [pytest.param(value, id=name) for name, value in INVALID_CONTROL_BATCHES.items()]
)
def test_parse_control_record_rejects_invalid_markers(batch: bytes) -> None:
    with pytest.raises(InvalidRecordError):
        parse_control_record(batch)


def test_parse_control_record_rejects_damaged_bytes() -> None:
    damaged = bytearray(build_control_batch(ControlRecordType.COMMIT, 1, 0, 1, 0))
    damaged[-3] ^= 0xFF

    with pytest.raises(CorruptRecordError):
        parse_control_record(damaged)


def test_build_control_batch_only_builds_transaction_markers() -> None:
    with pytest.raises(ValueError):
        build_control_batch(ControlRecordType.LEADER_CHANGE, 1, 0, 0, 0)
    with pytest.raises(ValueError):
        build_control_batch(9, 1, 0, 0, 0)
    with pytest.raises(ValueError):
        build_control_batch(ControlRecordType.COMMIT, 1, 0, 2**31, 0)
