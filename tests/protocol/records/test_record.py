"""Records inside v2 batches: build, decode and recompress agree with independent Kafka clients.

Goal: batches StreamBus builds are read correctly by real client readers, batches real clients
build are decoded correctly by StreamBus, for every codec, and damaged record bytes always
raise ``CorruptRecordError`` (never IndexError, struct.error, UnicodeDecodeError...).

Method: one table of record cases drives both directions of a differential test against
kafka-python's and aiokafka's record builders/readers (the oracles; never imported by
``streambus``).  kafka-python has no snappy codec installed here (it needs python-snappy), so
snappy is exercised through aiokafka.  Hypothesis round-trips ``build_batch``/``decode_records``
and feeds arbitrary record sections (with a valid CRC) to the decoder.
"""

from __future__ import annotations

import struct
from typing import Any, Callable

import aiokafka.record.default_records as aiokafka_records
import kafka.codec
import kafka.record.default_records as kafka_records
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.record.memory_records import MemoryRecords

from streambus.protocol.records import (
    BATCH_HEADER_SIZE,
    CompressionType,
    CorruptRecordError,
    Record,
    TimestampType,
    build_batch,
    compress,
    compute_crc,
    decode_records,
    iter_records,
    make_batch,
    read_batch_header,
    recompress_batch,
    set_log_append_time,
    validate_batches,
)

CODECS = [pytest.param(codec, id=codec.name.lower()) for codec in CompressionType]

# (key, value, headers, timestamp_ms) rows; each case is one batch.
RECORD_CASES: dict[str, list[tuple[Any, Any, list[tuple[str, bytes | None]], int]]] = {
    "single_value": [(None, b"hello", [], 1_700_000_000_000)],
    "keys_values_headers": [
        (b"key-0", b"value-0", [("trace", b"abc"), ("empty", b"")], 1_700_000_000_000),
        (b"key-1", b"value-1", [("null-value", None)], 1_700_000_000_005),
        (b"", b"", [], 1_700_000_000_010),
    ],
    "null_key_and_value": [(None, None, [], 5), (b"k", None, [], 6), (None, b"v", [], 7)],
    "timestamps_out_of_order": [
        (None, b"a", [], 2_000),
        (None, b"b", [], 1_000),
        (None, b"c", [], 3_000),
    ],
    "unicode_header_keys": [(b"k", b"v", [("ключ", b"\x00\xff"), ("键", None)], 42)],
    "large_values": [(b"k%d" % i, bytes([i]) * 70_000, [], 10 + i) for i in range(3)],
    "many_records": [(None, b"value-%05d" % i, [], 100 + i) for i in range(500)],
}
CASES = [pytest.param(rows, id=name) for name, rows in RECORD_CASES.items()]


def expected_records(rows: list[Any], base_offset: int = 0) -> list[Record]:
    return [
        Record(base_offset + index, timestamp, key, value, list(headers))
        for index, (key, value, headers, timestamp) in enumerate(rows)
    ]


def oracle_build(module: Any, codec: int, rows: list[Any], **producer: int) -> bytes:
    builder = module.DefaultRecordBatchBuilder(
        2,
        codec,
        0,
        producer.get("producer_id", -1),
        producer.get("producer_epoch", -1),
        producer.get("base_sequence", -1),
        64 * 1024 * 1024,
    )
    for index, (key, value, headers, timestamp) in enumerate(rows):
        builder.append(index, timestamp, key, value, headers)
    return bytes(builder.build())


def kafka_python_read(batch: bytes) -> tuple[Any, list[Record]]:
    """Read with kafka-python, which insists on a CRC check before iterating."""
    reader = MemoryRecords(batch).next_batch()
    assert reader.validate_crc()
    records = [
        Record(record.offset, record.timestamp, record.key, record.value, list(record.headers))
        for record in reader
    ]
    return reader, records


def aiokafka_read(batch: bytes) -> tuple[Any, list[Record]]:
    """Read with aiokafka, which insists on a CRC check before iterating."""
    reader = aiokafka_records.DefaultRecordBatch(batch)
    assert reader.validate_crc()
    records = [
        Record(record.offset, record.timestamp, record.key, record.value, list(record.headers))
        for record in reader
    ]
    return reader, records


ORACLE_BUILDERS = [
    pytest.param("kafka-python", kafka_records, id="kafka-python"),
    pytest.param("aiokafka", aiokafka_records, id="aiokafka"),
]
ORACLE_READERS: list[Any] = [
    pytest.param("kafka-python", kafka_python_read, id="kafka-python"),
    pytest.param("aiokafka", aiokafka_read, id="aiokafka"),
]


def skip_unless_oracle_has_codec(oracle_id: str, codec: int) -> None:
    snappy_missing = codec == CompressionType.SNAPPY and not kafka.codec.has_snappy()
    if oracle_id == "kafka-python" and snappy_missing:
        pytest.skip("kafka-python's snappy needs python-snappy, which is not installed")


def with_section(batch: bytes, section: bytes, *, records_count: int | None = None) -> bytes:
    """Replace a batch's records section, fixing batch_length and the CRC so that only the
    record bytes are wrong."""
    out = bytearray(batch[:BATCH_HEADER_SIZE] + section)
    struct.pack_into(">i", out, 8, len(out) - 12)
    if records_count is not None:
        struct.pack_into(">i", out, 57, records_count)
    struct.pack_into(">I", out, 17, compute_crc(out, 0, len(out)))
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Differential: client builds, StreamBus decodes; StreamBus builds, client reads.


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("rows", CASES)
@pytest.mark.parametrize(("oracle_name", "oracle"), ORACLE_BUILDERS)
def test_decode_records_reads_batches_built_by_clients(
    oracle_name: str, oracle: Any, rows: list[Any], codec: CompressionType
) -> None:
    skip_unless_oracle_has_codec(oracle_name, codec)
    batch = oracle_build(oracle, codec, rows, producer_id=77, producer_epoch=3, base_sequence=11)

    (header,) = validate_batches(batch)

    # The client builders fall back to no compression when compressing would grow the batch
    # (tiny cases); the big cases must really exercise the codec.
    if sum(len(row[1] or b"") for row in rows) > 5_000:
        assert header.compression == codec
    else:
        assert header.compression in (codec, CompressionType.NONE)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (77, 3, 11)
    assert decode_records(batch) == expected_records(rows)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("rows", CASES)
@pytest.mark.parametrize(("oracle_name", "read"), ORACLE_READERS)
def test_clients_read_batches_built_by_build_batch(
    oracle_name: str,
    read: Callable[[bytes], tuple[Any, list[Record]]],
    rows: list[Any],
    codec: CompressionType,
) -> None:
    skip_unless_oracle_has_codec(oracle_name, codec)
    batch = build_batch(
        rows,
        compression=codec,
        base_offset=1000,
        partition_leader_epoch=4,
        producer_id=77,
        producer_epoch=3,
        base_sequence=11,
    )

    reader, records = read(batch)

    assert reader.compression_type == codec
    assert (reader.producer_id, reader.producer_epoch, reader.base_sequence) == (77, 3, 11)
    assert reader.max_timestamp == max(row[3] for row in rows)
    assert records == expected_records(rows, base_offset=1000)


def test_build_batch_header_fields_match_java_conventions() -> None:
    """base_timestamp is the first record's timestamp, max_timestamp the largest, and the
    attribute bits carry codec, timestamp type, transactional and control flags."""
    batch = build_batch(
        [(None, b"a", [], 2_000), (None, b"b", [], 1_000), (None, b"c", [], 3_000)],
        compression=CompressionType.LZ4,
        is_transactional=True,
        timestamp_type=TimestampType.LOG_APPEND_TIME,
        producer_id=5,
        producer_epoch=0,
        base_sequence=0,
    )

    header = read_batch_header(batch)

    assert (header.base_timestamp, header.max_timestamp) == (2_000, 3_000)
    assert header.attributes == 0x03 | 0x08 | 0x10
    assert (header.last_offset_delta, header.records_count) == (2, 3)
    assert not header.is_control


def test_build_batch_accepts_record_objects_and_ignores_their_offsets() -> None:
    records = [Record(50, 10, b"k", b"v", [("h", None)]), Record(99, 11, None, b"w")]

    batch = build_batch(records, base_offset=7)

    assert decode_records(batch) == [
        Record(7, 10, b"k", b"v", [("h", None)]),
        Record(8, 11, None, b"w", []),
    ]


def test_build_batch_rejects_empty_input_and_unknown_codec() -> None:
    with pytest.raises(ValueError):
        build_batch([])
    with pytest.raises(ValueError):
        build_batch([(None, b"v", [], 0)], compression=5)


def test_make_batch_builds_keyless_records_with_one_timestamp() -> None:
    batch = make_batch([b"a", None], timestamp_ms=9, base_offset=3, compression=1)

    assert decode_records(batch) == [Record(3, 9, None, b"a"), Record(4, 9, None, None)]


def test_decode_records_uses_header_position_inside_a_larger_buffer() -> None:
    first = make_batch([b"a"], base_offset=0)
    second = make_batch([b"b", b"c"], base_offset=1, compression=CompressionType.ZSTD)
    buffer = first + second

    headers = validate_batches(buffer)

    assert [decode_records(buffer, header) for header in headers] == [
        [Record(0, 0, None, b"a")],
        [Record(1, 0, None, b"b"), Record(2, 0, None, b"c")],
    ]
    assert list(iter_records(buffer, headers[1])) == decode_records(buffer, headers[1])


def test_decode_records_accepts_the_batch_slice_with_its_buffer_header() -> None:
    """Callers slice one batch out of a Produce payload and pass the header parsed from the
    whole payload (whose ``position`` is relative to the payload)."""
    buffer = make_batch([b"a"]) + make_batch([b"b"], base_offset=1, compression=2)
    second = validate_batches(buffer)[1]
    batch_slice = memoryview(buffer)[second.position : second.position + second.size_bytes]

    assert decode_records(batch_slice, second) == [Record(1, 0, None, b"b")]
    assert decode_records(recompress_batch(batch_slice, second, 0)) == [Record(1, 0, None, b"b")]


# ---------------------------------------------------------------------------------------------
# LogAppendTime


@pytest.mark.parametrize("codec", CODECS)
def test_log_append_time_rewrite_keeps_batch_valid_for_clients(codec: CompressionType) -> None:
    rows = RECORD_CASES["keys_values_headers"]
    batch = bytearray(build_batch(rows, compression=codec, base_offset=20))
    (header,) = validate_batches(batch)

    set_log_append_time(batch, header, 1_800_000_000_000)

    validate_batches(batch)
    assert [record.timestamp for record in decode_records(batch)] == [1_800_000_000_000] * 3
    reader, records = aiokafka_read(bytes(batch))
    assert reader.timestamp_type == 1
    assert [record.timestamp for record in records] == [1_800_000_000_000] * 3
    if codec != CompressionType.SNAPPY or kafka.codec.has_snappy():
        kafka_reader, kafka_records_read = kafka_python_read(bytes(batch))
        assert kafka_reader.timestamp_type == 1
        assert [record.timestamp for record in kafka_records_read] == [1_800_000_000_000] * 3


# ---------------------------------------------------------------------------------------------
# Recompression


@pytest.mark.parametrize("target", CODECS)
@pytest.mark.parametrize("source", CODECS)
def test_recompress_batch_changes_only_codec_length_and_crc(
    source: CompressionType, target: CompressionType
) -> None:
    rows = RECORD_CASES["keys_values_headers"]
    original = bytearray(
        build_batch(
            rows,
            compression=source,
            base_offset=500,
            partition_leader_epoch=9,
            producer_id=12,
            producer_epoch=2,
            base_sequence=40,
            is_transactional=True,
        )
    )
    (original_header,) = validate_batches(original)
    set_log_append_time(original, original_header, 1_900_000_000_000)

    rewritten = recompress_batch(original, original_header, target)

    (header,) = validate_batches(rewritten)
    assert header.compression == target
    assert header.attributes & ~0x07 == original_header.attributes & ~0x07
    for name in (
        "base_offset",
        "partition_leader_epoch",
        "last_offset_delta",
        "base_timestamp",
        "max_timestamp",
        "producer_id",
        "producer_epoch",
        "base_sequence",
        "records_count",
    ):
        assert getattr(header, name) == getattr(original_header, name), name
    assert decode_records(rewritten) == decode_records(original)
    _, records = aiokafka_read(rewritten)
    assert records == decode_records(original)
    if source == target:
        assert rewritten == bytes(original)


def test_recompress_batch_keeps_create_time_deltas() -> None:
    rows = RECORD_CASES["timestamps_out_of_order"]
    batch = build_batch(rows, compression=CompressionType.SNAPPY)

    rewritten = recompress_batch(batch, read_batch_header(batch), CompressionType.GZIP)

    assert decode_records(rewritten) == expected_records(rows)


# ---------------------------------------------------------------------------------------------
# Damaged records: always CorruptRecordError


GOOD = build_batch([(b"key", b"value", [("h", b"x")], 1_000), (None, b"v2", [], 1_001)])
GOOD_SECTION = GOOD[BATCH_HEADER_SIZE:]


def varint(value: int) -> bytes:
    unsigned = (value << 1) ^ (value >> 63)
    out = bytearray()
    while unsigned >= 0x80:
        out.append((unsigned & 0x7F) | 0x80)
        unsigned >>= 7
    out.append(unsigned)
    return bytes(out)


def record_bytes(body: bytes) -> bytes:
    return varint(len(body)) + body


RECORD_PREFIX = b"\x00" + varint(0) + varint(0)  # attributes, timestamp_delta, offset_delta

DAMAGED_SECTIONS = {
    "records_count_too_high": (GOOD_SECTION, 3),
    "records_count_too_low_leaves_bytes": (GOOD_SECTION, 1),
    "records_count_negative": (GOOD_SECTION, -1),
    "trailing_garbage": (GOOD_SECTION + b"\x00", 2),
    "record_length_overruns_section": (varint(100) + b"\x00" * 10, 1),
    "record_length_negative": (varint(-5) + b"\x00" * 10, 1),
    "record_length_longer_than_fields": (
        record_bytes(RECORD_PREFIX + varint(-1) + varint(-1) + varint(0) + b"\x00"),
        1,
    ),
    "key_length_below_minus_one": (
        record_bytes(RECORD_PREFIX + varint(-2) + varint(-1) + varint(0)),
        1,
    ),
    "value_length_overruns_record": (
        record_bytes(RECORD_PREFIX + varint(-1) + varint(50) + varint(0)),
        1,
    ),
    "headers_count_negative": (
        record_bytes(RECORD_PREFIX + varint(-1) + varint(-1) + varint(-1)),
        1,
    ),
    "header_key_null": (
        record_bytes(RECORD_PREFIX + varint(-1) + varint(-1) + varint(1) + varint(-1) + varint(-1)),
        1,
    ),
    "header_key_not_utf8": (
        record_bytes(
            RECORD_PREFIX
            + varint(-1)
            + varint(-1)
            + varint(1)
            + varint(2)
            + b"\xff\xfe"
            + varint(-1)
        ),
        1,
    ),
    "headers_count_overruns_record": (
        record_bytes(RECORD_PREFIX + varint(-1) + varint(-1) + varint(1_000_000)),
        1,
    ),
    "varint_too_long": (b"\xff" * 12, 1),
    "varint_truncated": (b"\x80", 1),
    "varint_overflows_int32": (b"\xff\xff\xff\xff\x7f", 1),
    "empty_record_body": (varint(0), 1),
}


@pytest.mark.parametrize(
    ("section", "records_count"),
    [pytest.param(*value, id=name) for name, value in DAMAGED_SECTIONS.items()],
)
def test_decode_records_rejects_damaged_records(section: bytes, records_count: int) -> None:
    batch = with_section(GOOD, section, records_count=records_count)

    with pytest.raises(CorruptRecordError):
        decode_records(batch)


def test_decode_records_accepts_handcrafted_minimal_record() -> None:
    """Sanity check for the damage table: the same builder makes a valid record."""
    section = record_bytes(RECORD_PREFIX + varint(-1) + varint(1) + b"v" + varint(0))

    records = decode_records(with_section(GOOD, section, records_count=1))

    assert records == [Record(0, 1_000, None, b"v")]


@pytest.mark.parametrize("codec", CODECS)
def test_decode_records_rejects_every_truncation_of_the_records_section(
    codec: CompressionType,
) -> None:
    batch = build_batch(RECORD_CASES["keys_values_headers"], compression=codec)
    section = batch[BATCH_HEADER_SIZE:]

    for cut in range(len(section)):
        with pytest.raises(CorruptRecordError):
            decode_records(with_section(batch, section[:cut]))


def test_decode_records_rejects_bad_crc_unless_told_not_to_check() -> None:
    damaged = bytearray(GOOD)
    damaged[-2] ^= 0x01  # last byte of the last record's value (the headers count follows)

    with pytest.raises(CorruptRecordError):
        decode_records(damaged)
    assert decode_records(damaged, verify_crc=False)[1].value == b"v3"


def test_decode_records_rejects_wrong_magic_and_truncated_batch() -> None:
    wrong_magic = bytearray(GOOD)
    wrong_magic[16] = 1
    with pytest.raises(CorruptRecordError):
        decode_records(wrong_magic)
    with pytest.raises(CorruptRecordError):
        decode_records(GOOD[:-1])
    with pytest.raises(CorruptRecordError):
        decode_records(GOOD[:30])


def test_decode_records_bounds_uncompressed_and_compressed_sections() -> None:
    batch = make_batch([b"x" * 10_000], compression=CompressionType.ZSTD)

    with pytest.raises(CorruptRecordError):
        decode_records(batch, max_output_bytes=5_000)
    with pytest.raises(CorruptRecordError):
        decode_records(make_batch([b"x" * 10_000]), max_output_bytes=5_000)
    assert decode_records(batch, max_output_bytes=20_000)[0].value == b"x" * 10_000


def test_decode_records_rejects_compressed_section_that_is_not_the_codec() -> None:
    batch = make_batch([b"abc"], compression=CompressionType.GZIP)

    damaged = with_section(batch, compress(CompressionType.LZ4, GOOD_SECTION))

    with pytest.raises(CorruptRecordError):
        decode_records(damaged)


# ---------------------------------------------------------------------------------------------
# Properties


header_strategy = st.tuples(st.text(max_size=10), st.one_of(st.none(), st.binary(max_size=20)))
row_strategy = st.tuples(
    st.one_of(st.none(), st.binary(max_size=50)),
    st.one_of(st.none(), st.binary(max_size=200)),
    st.lists(header_strategy, max_size=3),
    st.integers(min_value=-1, max_value=2**50),
)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(row_strategy, min_size=1, max_size=20),
    codec=st.sampled_from(list(CompressionType)),
    base_offset=st.integers(min_value=0, max_value=2**62),
)
def test_build_then_decode_round_trips(
    rows: list[Any], codec: CompressionType, base_offset: int
) -> None:
    batch = build_batch(rows, compression=codec, base_offset=base_offset)

    (header,) = validate_batches(batch)

    assert header.next_offset == base_offset + len(rows)
    assert decode_records(batch) == expected_records(rows, base_offset)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(section=st.binary(max_size=300), records_count=st.integers(min_value=-2, max_value=40))
def test_decode_records_on_arbitrary_section_returns_or_raises_corrupt(
    section: bytes, records_count: int
) -> None:
    batch = with_section(GOOD, section, records_count=records_count)

    try:
        records = decode_records(batch)
    except CorruptRecordError:
        return
    assert len(records) == records_count
