"""Batch headers: validation, recovery scans and in-place rewrites that skip decompression.

Goal: the broker's hot path (``batch.py``) accepts exactly the batches real clients send,
rejects damaged ones with the right error (CORRUPT_MESSAGE vs INVALID_RECORD), and its
rewrites (base offset, leader epoch, LogAppendTime) leave batches that an independent reader
still accepts.

Method: batches come from kafka-python's builder (an oracle, never imported by ``streambus``)
and from ``build_batch``; damage is injected byte by byte; rewritten batches are read back by
kafka-python's reader.
"""

from __future__ import annotations

import struct

import kafka.record.default_records as kafka_records
import pytest
from kafka.record.memory_records import MemoryRecords

from streambus.protocol.records import (
    BATCH_HEADER_SIZE,
    CompressionType,
    CorruptRecordError,
    InvalidRecordError,
    compute_crc,
    iter_batch_headers,
    make_batch,
    read_batch_header,
    rewrite_base_offset,
    rewrite_partition_leader_epoch,
    scan_valid_prefix,
    set_log_append_time,
    validate_batches,
)


def client_batch(values: list[bytes], codec: int = 0) -> bytes:
    builder = kafka_records.DefaultRecordBatchBuilder(2, codec, 0, 9, 1, 100, 1 << 20)
    for index, value in enumerate(values):
        builder.append(index, 1_000 + index, None, value, [])
    return bytes(builder.build())


def fix_crc(batch: bytearray, position: int = 0) -> bytearray:
    size_bytes = struct.unpack_from(">i", batch, position + 8)[0] + 12
    struct.pack_into(">I", batch, position + 17, compute_crc(batch, position, size_bytes))
    return batch


def kafka_read(batch: bytes) -> list[tuple[int, int, bytes]]:
    reader = MemoryRecords(bytes(batch))
    out = []
    while reader.has_next():
        record_batch = reader.next_batch()
        assert record_batch.validate_crc()
        out += [(record.offset, record.timestamp, record.value) for record in record_batch]
    return out


# ---------------------------------------------------------------------------------------------
# validate_batches


def test_validate_batches_reads_every_header_of_a_client_produce_payload() -> None:
    first = client_batch([b"a", b"b", b"c"])
    second = client_batch([b"d" * 5_000], codec=CompressionType.GZIP)

    headers = validate_batches(first + second)

    assert [(h.position, h.size_bytes, h.records_count) for h in headers] == [
        (0, len(first), 3),
        (len(first), len(second), 1),
    ]
    producer = (headers[0].producer_id, headers[0].producer_epoch, headers[0].base_sequence)
    assert producer == (9, 1, 100)
    assert headers[0].last_sequence == 102
    assert headers[1].compression == CompressionType.GZIP
    assert validate_batches(b"") == []


def test_last_sequence_wraps_at_int32_max() -> None:
    batch = make_batch([b"a", b"b", b"c"], base_sequence=2**31 - 2, producer_id=1, producer_epoch=0)

    header = read_batch_header(batch)

    assert header.last_sequence == 0


def test_validate_batches_rejects_a_flipped_bit_anywhere_in_crc_scope() -> None:
    batch = client_batch([b"value-1", b"value-2"])

    for index in range(21, len(batch)):
        damaged = bytearray(batch)
        damaged[index] ^= 0x10
        with pytest.raises((CorruptRecordError, InvalidRecordError)):
            validate_batches(damaged)


def test_validate_batches_reports_crc_mismatch_as_corrupt() -> None:
    damaged = bytearray(client_batch([b"value"]))
    damaged[-2] ^= 0x01

    with pytest.raises(CorruptRecordError, match="CRC"):
        validate_batches(damaged)
    assert validate_batches(damaged, verify_crc=False)[0].records_count == 1


@pytest.mark.parametrize("cut", [1, 12, 60, 61, 70])
def test_validate_batches_rejects_truncated_batches(cut: int) -> None:
    batch = client_batch([b"value" * 10])

    with pytest.raises(CorruptRecordError):
        validate_batches(batch[: len(batch) - cut] if cut < len(batch) else batch[:1])


def test_validate_batches_rejects_impossible_lengths() -> None:
    batch = bytearray(client_batch([b"value"]))
    struct.pack_into(">i", batch, 8, 10)  # shorter than the header itself

    with pytest.raises(CorruptRecordError):
        validate_batches(batch)


@pytest.mark.parametrize("magic", [0, 1, 3])
def test_validate_batches_rejects_other_magics_as_invalid(magic: int) -> None:
    batch = bytearray(client_batch([b"value"]))
    batch[16] = magic

    with pytest.raises(InvalidRecordError, match="magic"):
        validate_batches(batch)


def test_validate_batches_rejects_count_that_disagrees_with_last_offset_delta() -> None:
    batch = fix_crc(bytearray(client_batch([b"a", b"b"])))
    struct.pack_into(">i", batch, 57, 3)
    fix_crc(batch)

    with pytest.raises(InvalidRecordError):
        validate_batches(batch)


# ---------------------------------------------------------------------------------------------
# Rewrites


def test_rewrite_base_offset_and_leader_epoch_keep_the_crc_valid() -> None:
    batch = bytearray(client_batch([b"a", b"b"]) + client_batch([b"c"]))
    headers = validate_batches(batch)

    rewrite_base_offset(batch, headers[0].position, 1_000)
    rewrite_base_offset(batch, headers[1].position, 1_002)
    rewrite_partition_leader_epoch(batch, headers[1].position, 17)

    rewritten = validate_batches(batch)
    assert [h.base_offset for h in rewritten] == [1_000, 1_002]
    assert [h.partition_leader_epoch for h in rewritten] == [0, 17]
    assert [h.crc for h in rewritten] == [h.crc for h in headers]
    assert kafka_read(batch) == [(1_000, 1_000, b"a"), (1_001, 1_001, b"b"), (1_002, 1_000, b"c")]


# kafka-python's snappy needs python-snappy (not installed); test_record.py covers snappy.
KAFKA_PYTHON_CODECS = [
    pytest.param(c, id=c.name.lower()) for c in CompressionType if c != CompressionType.SNAPPY
]


@pytest.mark.parametrize("codec", KAFKA_PYTHON_CODECS)
def test_set_log_append_time_is_accepted_by_an_independent_reader(codec: CompressionType) -> None:
    batch = bytearray(client_batch([b"x" * 300, b"y" * 300], codec=codec))
    (header,) = validate_batches(batch)

    set_log_append_time(batch, header, 2_000_000_000_000)

    (reread,) = validate_batches(batch)
    assert reread == header  # the in-memory header was updated in step with the bytes
    assert reread.is_log_append_time and reread.max_timestamp == 2_000_000_000_000
    reader = MemoryRecords(bytes(batch)).next_batch()
    assert reader.validate_crc() and reader.timestamp_type == 1
    assert [record.timestamp for record in reader] == [2_000_000_000_000] * 2


# ---------------------------------------------------------------------------------------------
# Recovery scans


def three_batches() -> bytearray:
    return bytearray(
        make_batch([b"a"], base_offset=0)
        + make_batch([b"b", b"c"], base_offset=1)
        + make_batch([b"d"], base_offset=3)
    )


def test_scan_valid_prefix_accepts_a_clean_log() -> None:
    log = three_batches()

    end, headers = scan_valid_prefix(log)

    assert end == len(log)
    assert [h.base_offset for h in headers] == [0, 1, 3]


@pytest.mark.parametrize("cut", [1, 30, 61])
def test_scan_valid_prefix_stops_before_a_torn_tail(cut: int) -> None:
    log = three_batches()
    last_position = validate_batches(log)[2].position

    end, headers = scan_valid_prefix(log[: len(log) - cut])

    assert end == last_position
    assert [h.base_offset for h in headers] == [0, 1]


def test_scan_valid_prefix_stops_at_a_corrupt_batch() -> None:
    log = three_batches()
    middle = validate_batches(log)[1]
    log[middle.position + BATCH_HEADER_SIZE + 2] ^= 0xFF

    end, headers = scan_valid_prefix(log)

    assert end == middle.position
    assert [h.base_offset for h in headers] == [0]


def test_scan_valid_prefix_stops_when_offsets_go_backwards() -> None:
    log = bytearray(make_batch([b"a", b"b"], base_offset=10) + make_batch([b"c"], base_offset=11))

    end, headers = scan_valid_prefix(log)

    assert [h.base_offset for h in headers] == [10]
    assert end == headers[0].size_bytes
    assert scan_valid_prefix(log, expected_offset=11) == (0, [])


def test_iter_batch_headers_stops_at_a_partial_batch() -> None:
    log = three_batches()

    headers = list(iter_batch_headers(log[:-1]))

    assert [h.base_offset for h in headers] == [0, 1]
    assert [h.base_offset for h in iter_batch_headers(log, headers[1].position)] == [1, 3]
