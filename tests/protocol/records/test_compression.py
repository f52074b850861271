"""Codecs: StreamBus compresses what clients can read, reads what clients write, and refuses
decompression bombs and damaged input with ``CorruptRecordError``.

Method: for each codec, compress with StreamBus and decompress with aiokafka's (and, where its
optional libraries are installed, kafka-python's) codec functions, and the reverse.  Streaming
encoders (zstd without a content size, raw snappy without xerial framing, multi-member gzip)
are produced directly with the codec libraries.  Bomb tests compress highly repetitive data
and decompress it under a bound far below its expanded size.
"""

from __future__ import annotations

import gzip
import os
from typing import Callable

import aiokafka.codec
import cramjam
import kafka.codec
import lz4.frame
import pytest
import zstandard

from streambus.protocol.records import (
    TOPIC_COMPRESSION_TYPES,
    CompressionType,
    CorruptRecordError,
    compress,
    decompress,
    topic_compression_type,
)

PAYLOADS = {
    "empty": b"",
    "short": b"hello, kafka",
    "random": os.urandom(100_000),
    "repetitive": b"0123456789abcdef" * 20_000,
}
PAYLOAD_PARAMS = [pytest.param(payload, id=name) for name, payload in PAYLOADS.items()]
COMPRESSED_CODECS = [
    pytest.param(codec, id=codec.name.lower()) for codec in CompressionType if codec != 0
]

AIOKAFKA_CODEC: dict[int, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]] = {
    CompressionType.GZIP: (aiokafka.codec.gzip_encode, aiokafka.codec.gzip_decode),
    CompressionType.SNAPPY: (aiokafka.codec.snappy_encode, aiokafka.codec.snappy_decode),
    CompressionType.LZ4: (aiokafka.codec.lz4_encode, aiokafka.codec.lz4_decode),
    CompressionType.ZSTD: (aiokafka.codec.zstd_encode, aiokafka.codec.zstd_decode),
}
KAFKA_PYTHON_CODEC: dict[int, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]] = {
    CompressionType.GZIP: (kafka.codec.gzip_encode, kafka.codec.gzip_decode),
    CompressionType.LZ4: (kafka.codec.lz4_encode, kafka.codec.lz4_decode),
    CompressionType.ZSTD: (kafka.codec.zstd_encode, kafka.codec.zstd_decode),
}
if kafka.codec.has_snappy():
    KAFKA_PYTHON_CODEC[CompressionType.SNAPPY] = (
        kafka.codec.snappy_encode,
        kafka.codec.snappy_decode,
    )

ORACLES = [
    pytest.param(AIOKAFKA_CODEC, id="aiokafka"),
    pytest.param(KAFKA_PYTHON_CODEC, id="kafka-python"),
]


def oracle_codec(
    oracle: dict[int, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]], codec: int
) -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    if codec not in oracle:
        pytest.skip("this client's codec library (python-snappy) is not installed")
    return oracle[codec]


@pytest.mark.parametrize("payload", PAYLOAD_PARAMS)
@pytest.mark.parametrize("codec", COMPRESSED_CODECS)
@pytest.mark.parametrize("oracle", ORACLES)
def test_clients_decompress_what_compress_writes(
    oracle: dict, codec: CompressionType, payload: bytes
) -> None:
    _, client_decode = oracle_codec(oracle, codec)

    assert client_decode(compress(codec, payload)) == payload


@pytest.mark.parametrize("payload", PAYLOAD_PARAMS)
@pytest.mark.parametrize("codec", COMPRESSED_CODECS)
@pytest.mark.parametrize("oracle", ORACLES)
def test_decompress_reads_what_clients_write(
    oracle: dict, codec: CompressionType, payload: bytes
) -> None:
    client_encode, _ = oracle_codec(oracle, codec)

    assert decompress(codec, client_encode(payload), max_output_bytes=len(payload)) == payload


@pytest.mark.parametrize("payload", PAYLOAD_PARAMS)
@pytest.mark.parametrize("codec", [pytest.param(c, id=c.name.lower()) for c in CompressionType])
def test_decompress_inverts_compress_exactly_at_the_bound(
    codec: CompressionType, payload: bytes
) -> None:
    assert decompress(codec, compress(codec, payload), max_output_bytes=len(payload)) == payload


def test_snappy_compress_uses_xerial_framing() -> None:
    """Java and kafka-python write xerial framing; librdkafka reads both framings."""
    data = compress(CompressionType.SNAPPY, b"x" * 100_000)

    assert data[:16] == b"\x82SNAPPY\x00" + b"\x00\x00\x00\x01" * 2


def test_snappy_decompress_reads_raw_unframed_snappy() -> None:
    payload = b"unframed snappy, as some librdkafka versions write it " * 100
    raw = bytes(cramjam.snappy.compress_raw(payload))

    assert decompress(CompressionType.SNAPPY, raw, max_output_bytes=len(payload)) == payload


def test_zstd_decompress_reads_frames_without_content_size() -> None:
    """librdkafka's streaming zstd writer leaves the frame content size out."""
    payload = os.urandom(5_000) + b"z" * 200_000
    compressor = zstandard.ZstdCompressor().compressobj()
    streamed = compressor.compress(payload) + compressor.flush()
    assert zstandard.frame_content_size(streamed) == -1  # really has no size

    assert decompress(CompressionType.ZSTD, streamed, max_output_bytes=len(payload)) == payload


def test_zstd_decompress_reads_checksummed_and_concatenated_frames() -> None:
    compressor = zstandard.ZstdCompressor(write_checksum=True)
    data = compressor.compress(b"first ") + compressor.compress(b"second")

    assert decompress(CompressionType.ZSTD, data, max_output_bytes=100) == b"first second"


def test_gzip_decompress_reads_concatenated_members() -> None:
    data = gzip.compress(b"first ") + gzip.compress(b"second")

    assert decompress(CompressionType.GZIP, data, max_output_bytes=100) == b"first second"


def test_lz4_compress_writes_independent_blocks_java_can_read() -> None:
    """Java's KafkaLZ4BlockInputStream rejects frames whose FLG lacks block independence."""
    data = compress(CompressionType.LZ4, b"y" * 200_000)

    frame_info = lz4.frame.get_frame_info(data)

    assert frame_info["block_linked"] is False
    assert frame_info["block_size"] == 64 * 1024


# ---------------------------------------------------------------------------------------------
# Bombs and damage


def zstd_streamed(data: bytes) -> bytes:
    compressor = zstandard.ZstdCompressor().compressobj()
    return compressor.compress(data) + compressor.flush()


BOMB_ENCODERS = {
    "gzip": (CompressionType.GZIP, lambda data: compress(CompressionType.GZIP, data)),
    "snappy-xerial": (CompressionType.SNAPPY, lambda data: compress(CompressionType.SNAPPY, data)),
    "snappy-raw": (CompressionType.SNAPPY, lambda data: bytes(cramjam.snappy.compress_raw(data))),
    "lz4": (CompressionType.LZ4, lambda data: compress(CompressionType.LZ4, data)),
    "zstd-sized": (CompressionType.ZSTD, lambda data: compress(CompressionType.ZSTD, data)),
    "zstd-streamed": (CompressionType.ZSTD, zstd_streamed),
}


@pytest.mark.parametrize(
    ("codec", "encode"), [pytest.param(*value, id=name) for name, value in BOMB_ENCODERS.items()]
)
def test_decompress_refuses_output_over_the_bound(
    codec: CompressionType, encode: Callable[[bytes], bytes]
) -> None:
    bomb = encode(bytes(32 * 1024 * 1024))
    assert len(bomb) < 2 * 1024 * 1024  # the point of a bomb: tiny input, huge output

    with pytest.raises(CorruptRecordError, match="more than 1048576 bytes"):
        decompress(codec, bomb, max_output_bytes=1024 * 1024)


@pytest.mark.parametrize(
    ("codec", "encode"), [pytest.param(*value, id=name) for name, value in BOMB_ENCODERS.items()]
)
def test_decompress_refuses_output_one_byte_over_the_bound(
    codec: CompressionType, encode: Callable[[bytes], bytes]
) -> None:
    payload = b"a" * 70_000

    with pytest.raises(CorruptRecordError):
        decompress(codec, encode(payload), max_output_bytes=len(payload) - 1)


@pytest.mark.parametrize(
    "codec", [CompressionType.GZIP, CompressionType.LZ4, CompressionType.ZSTD], ids=str
)
def test_decompress_rejects_every_truncation(codec: CompressionType) -> None:
    payload = os.urandom(2_000) + b"q" * 50_000
    data = compress(codec, payload)

    for cut in range(1, len(data)):
        with pytest.raises(CorruptRecordError):
            decompress(codec, data[:cut], max_output_bytes=len(payload))


def test_snappy_truncation_raises_or_yields_a_strict_prefix() -> None:
    """Xerial framing has no end marker, so a cut exactly between blocks reads as a shorter
    stream; the record decoder then finds too few records (see test_record.py)."""
    payload = os.urandom(40_000) + b"q" * 50_000
    data = compress(CompressionType.SNAPPY, payload)
    prefix_count = 0

    for cut in range(1, len(data)):
        try:
            output = decompress(CompressionType.SNAPPY, data[:cut], max_output_bytes=len(payload))
        except CorruptRecordError:
            continue
        prefix_count += 1
        assert len(output) < len(payload)
        assert payload.startswith(output)

    assert prefix_count == 3  # after the header, and after each of the first two 32 KiB blocks


@pytest.mark.parametrize("codec", COMPRESSED_CODECS)
def test_decompress_rejects_garbage(codec: CompressionType) -> None:
    with pytest.raises(CorruptRecordError):
        decompress(codec, b"this is not compressed data at all", max_output_bytes=1_000)


@pytest.mark.parametrize("codec_id", [5, 6, 7])
def test_unknown_codec_ids_are_corrupt_on_read_and_rejected_on_write(codec_id: int) -> None:
    with pytest.raises(CorruptRecordError):
        decompress(codec_id, b"data", max_output_bytes=100)
    with pytest.raises(ValueError):
        compress(codec_id, b"data")


def test_no_compression_is_bounded_too() -> None:
    with pytest.raises(CorruptRecordError):
        decompress(CompressionType.NONE, b"12345", max_output_bytes=4)


# ---------------------------------------------------------------------------------------------
# Topic config


def test_topic_compression_type_maps_kafka_config_values() -> None:
    assert {name: topic_compression_type(name) for name in TOPIC_COMPRESSION_TYPES} == {
        "uncompressed": CompressionType.NONE,
        "gzip": CompressionType.GZIP,
        "snappy": CompressionType.SNAPPY,
        "lz4": CompressionType.LZ4,
        "zstd": CompressionType.ZSTD,
        "producer": None,
    }
    with pytest.raises(ValueError):
        topic_compression_type("brotli")
