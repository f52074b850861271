"""Record batch compression codecs: the codec registry and bounded (bomb-proof) decompression.

This module owns the mapping between a batch's codec id (attributes bits 0-2) and the bytes
each codec reads and writes.  It never parses batches or records: callers hand it the records
section of a v2 batch (bytes 61 onwards), compressed as one unit.

Codec ids, as in Kafka's ``CompressionType``::

    id  name     topic config value   wire format of the records section
     0  none     "uncompressed"       records as-is
     1  gzip     "gzip"               RFC 1952 gzip member(s)
     2  snappy   "snappy"             xerial framing (written), or raw snappy (also read)
     3  lz4      "lz4"                LZ4 frame format (KIP-57), independent blocks
     4  zstd     "zstd"               zstd frame(s), content size optional (KIP-110)

The topic config ``compression.type`` additionally accepts "producer": keep whatever codec the
producer chose.

Xerial snappy framing, written by Java's ``SnappyOutputStream`` and kafka-python::

    offset  size  field
         0     8  magic b"\\x82SNAPPY\\x00"
         8     4  version (int32, 1)
        12     4  min compatible version (int32, 1)
        16     -  blocks: int32 compressed length, then that many bytes of raw snappy

Rule: every decompression is bounded by ``max_output_bytes`` and every failure, whether damaged
input or a bound exceeded, raises :class:`CorruptRecordError`; no codec's own exception type
escapes this module.
"""

from __future__ import annotations

import io
import struct
import zlib
from enum import IntEnum

import cramjam
import lz4.frame
import zstandard

from streambus.protocol.records.batch import CorruptRecordError

__all__ = [
    "CompressionType",
    "TOPIC_COMPRESSION_TYPES",
    "PRODUCER_COMPRESSION",
    "topic_compression_type",
    "compress",
    "decompress",
]


class CompressionType(IntEnum):
    """Codec id carried in bits 0-2 of a batch's attributes."""

    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


#: The topic config value meaning "keep the producer's codec".
PRODUCER_COMPRESSION = "producer"

#: Topic config ``compression.type`` values; "producer" maps to ``None`` (no recompression).
TOPIC_COMPRESSION_TYPES: dict[str, CompressionType | None] = {
    "uncompressed": CompressionType.NONE,
    "gzip": CompressionType.GZIP,
    "snappy": CompressionType.SNAPPY,
    "lz4": CompressionType.LZ4,
    "zstd": CompressionType.ZSTD,
    PRODUCER_COMPRESSION: None,
}

_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = _XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_HEADER_SIZE = len(_XERIAL_HEADER)
# Java's SnappyOutputStream and kafka-python both cut the input into 32 KiB blocks.
_XERIAL_BLOCK_BYTES = 32 * 1024
_INT32 = struct.Struct(">i")

# Java's GZIPOutputStream uses Deflater.DEFAULT_COMPRESSION (level 6); KIP-390 made it tunable.
_GZIP_LEVEL_DEFAULT = 6
# Kafka's ZstdFactory uses zstd's default level (3).
_ZSTD_LEVEL_DEFAULT = 3
# zlib's wbits for "gzip header required, 32 KiB window".
_GZIP_WBITS = 16 + zlib.MAX_WBITS
# Refuse zstd frames that declare windows above 128 MiB (zstd's own default cap, windowLog 27),
# so a hostile frame header cannot make the decoder allocate a huge window.
_ZSTD_WINDOW_BYTES_MAX = 1 << 27
# Read granularity for the streaming decoders; bounded so one step never overshoots by much.
_READ_CHUNK_BYTES = 256 * 1024


def topic_compression_type(value: str) -> CompressionType | None:
    """Map a topic's ``compression.type`` config value to a codec.

    Returns:
        The codec batches must be stored with, or ``None`` for "producer" (store as sent).

    Raises:
        ValueError: the value is not one Kafka accepts.
    """
    try:
        return TOPIC_COMPRESSION_TYPES[value]
    except KeyError:
        raise ValueError(f"unknown compression.type {value!r}") from None


def compress(codec: int, data: bytes | bytearray | memoryview) -> bytes:
    """Compress a batch's records section with ``codec``.

    Raises:
        ValueError: ``codec`` is not a known codec id.
    """
    codec = _codec(codec)
    if codec is CompressionType.NONE:
        return bytes(data)
    if codec is CompressionType.GZIP:
        # A raw compressobj rather than gzip.compress: mtime stays 0, so output is reproducible.
        compressor = zlib.compressobj(_GZIP_LEVEL_DEFAULT, zlib.DEFLATED, _GZIP_WBITS)
        return compressor.compress(data) + compressor.flush()
    if codec is CompressionType.SNAPPY:
        return _snappy_compress_xerial(data)
    if codec is CompressionType.LZ4:
        # KIP-57: a standard LZ4 frame.  Java's KafkaLZ4BlockInputStream rejects linked blocks
        # ("BLOCK_INDEPENDENCE must be set"), so blocks are independent, 64 KiB, as Java writes.
        return lz4.frame.compress(
            data,
            block_size=lz4.frame.BLOCKSIZE_MAX64KB,
            block_linked=False,
            content_checksum=False,
            store_size=False,
        )
    return zstandard.ZstdCompressor(level=_ZSTD_LEVEL_DEFAULT).compress(data)


def decompress(
    codec: int, data: bytes | bytearray | memoryview, *, max_output_bytes: int
) -> bytes:
    """Decompress a batch's records section, producing at most ``max_output_bytes``.

    Args:
        codec: codec id from the batch attributes.
        data: the compressed records section.
        max_output_bytes: the largest output accepted; larger output is treated as an attack
            (a "zip bomb") rather than allocated.

    Raises:
        CorruptRecordError: unknown codec, damaged or truncated input, or output over the bound.
    """
    try:
        codec = _codec(codec)
    except ValueError as error:
        raise CorruptRecordError(str(error)) from None
    try:
        if codec is CompressionType.NONE:
            output = bytes(data)
        elif codec is CompressionType.GZIP:
            output = _gzip_decompress(data, max_output_bytes)
        elif codec is CompressionType.SNAPPY:
            output = _snappy_decompress(data, max_output_bytes)
        elif codec is CompressionType.LZ4:
            output = _lz4_decompress(data, max_output_bytes)
        else:
            output = _zstd_decompress(data, max_output_bytes)
    except CorruptRecordError:
        raise
    except Exception as error:  # noqa: BLE001 - every codec failure means damaged input.
        raise CorruptRecordError(f"{codec.name.lower()} decompression failed: {error}") from None
    if len(output) > max_output_bytes:
        raise _too_large(codec, max_output_bytes)
    return output


def _codec(codec: int) -> CompressionType:
    try:
        return CompressionType(codec)
    except ValueError:
        raise ValueError(f"unknown compression codec id {codec}") from None


def _too_large(codec: CompressionType, max_output_bytes: int) -> CorruptRecordError:
    return CorruptRecordError(
        f"{codec.name.lower()} records decompress to more than {max_output_bytes} bytes"
    )


def _gzip_decompress(data: bytes | bytearray | memoryview, max_output_bytes: int) -> bytes:
    # Java's GZIPInputStream reads concatenated members, so this loop does too.
    output = bytearray()
    remaining = bytes(data)
    member_count_max = len(remaining)  # each member needs at least one byte of input
    for _ in range(member_count_max + 1):
        decompressor = zlib.decompressobj(_GZIP_WBITS)
        pending = remaining
        while not decompressor.eof:
            budget = max_output_bytes - len(output) + 1
            chunk = decompressor.decompress(pending, min(budget, _READ_CHUNK_BYTES))
            output += chunk
            if len(output) > max_output_bytes:
                raise _too_large(CompressionType.GZIP, max_output_bytes)
            pending = decompressor.unconsumed_tail
            if not chunk and not pending and not decompressor.eof:
                raise CorruptRecordError("gzip records are truncated")
        remaining = decompressor.unused_data
        if not remaining:
            return bytes(output)
    raise CorruptRecordError("gzip records have trailing data")  # pragma: no cover


def _snappy_compress_xerial(data: bytes | bytearray | memoryview) -> bytes:
    view = memoryview(data)
    out = bytearray(_XERIAL_HEADER)
    # Empty input still gets one (empty) block: readers such as aiokafka only recognise the
    # framing when bytes follow the header.
    for start in range(0, max(len(view), 1), _XERIAL_BLOCK_BYTES):
        block = bytes(cramjam.snappy.compress_raw(bytes(view[start : start + _XERIAL_BLOCK_BYTES])))
        out += _INT32.pack(len(block))
        out += block
    return bytes(out)


def _snappy_decompress(data: bytes | bytearray | memoryview, max_output_bytes: int) -> bytes:
    view = memoryview(data).cast("B")
    if len(view) >= _XERIAL_HEADER_SIZE and view[: len(_XERIAL_MAGIC)] == _XERIAL_MAGIC:
        return _snappy_decompress_xerial(view, max_output_bytes)
    return _snappy_decompress_raw(view, max_output_bytes, max_output_bytes)


def _snappy_decompress_raw(block: memoryview, budget_bytes: int, max_output_bytes: int) -> bytes:
    # Raw snappy states its uncompressed length up front, so the bound is checked before any
    # output is allocated.
    length = cramjam.snappy.decompress_raw_len(bytes(block))
    if length > budget_bytes:
        raise _too_large(CompressionType.SNAPPY, max_output_bytes)
    return bytes(cramjam.snappy.decompress_raw(bytes(block)))


def _snappy_decompress_xerial(view: memoryview, max_output_bytes: int) -> bytes:
    output = bytearray()
    position = _XERIAL_HEADER_SIZE
    total = len(view)
    while position < total:
        if total - position < _INT32.size:
            raise CorruptRecordError("snappy block length is truncated")
        (block_size,) = _INT32.unpack_from(view, position)
        position += _INT32.size
        if block_size < 0 or position + block_size > total:
            raise CorruptRecordError(f"snappy block length {block_size} is invalid")
        output += _snappy_decompress_raw(
            view[position : position + block_size], max_output_bytes - len(output), max_output_bytes
        )
        position += block_size
    return bytes(output)


def _lz4_decompress(data: bytes | bytearray | memoryview, max_output_bytes: int) -> bytes:
    output = bytearray()
    pending = bytes(data)
    frame_count_max = len(pending)  # each frame needs at least one byte of input
    for _ in range(frame_count_max + 1):
        decompressor = lz4.frame.LZ4FrameDecompressor()
        while not decompressor.eof:
            budget = max_output_bytes - len(output) + 1
            chunk = decompressor.decompress(pending, max_length=min(budget, _READ_CHUNK_BYTES))
            pending = b""
            output += chunk
            if len(output) > max_output_bytes:
                raise _too_large(CompressionType.LZ4, max_output_bytes)
            if not chunk and decompressor.needs_input and not decompressor.eof:
                raise CorruptRecordError("lz4 records are truncated")
        pending = decompressor.unused_data or b""
        if not pending:
            return bytes(output)
    raise CorruptRecordError("lz4 records have trailing data")  # pragma: no cover


def _zstd_decompress(data: bytes | bytearray | memoryview, max_output_bytes: int) -> bytes:
    # Streaming writers (librdkafka, zstd-jni's stream) omit the frame content size, which
    # one-shot ZstdDecompressor.decompress() refuses; the stream reader needs no size and lets
    # the output be cut off at the bound.  It does, however, return short output silently on
    # truncated input, so the frame structure is checked first.
    payload = bytes(data)
    _zstd_check_frames(payload, max_output_bytes)
    decompressor = zstandard.ZstdDecompressor(max_window_size=_ZSTD_WINDOW_BYTES_MAX)
    output = bytearray()
    with decompressor.stream_reader(io.BytesIO(payload), read_across_frames=True) as reader:
        # Each read returns at least one byte until the end, so this loop is bounded.
        for _ in range(max_output_bytes + 2):
            chunk = reader.read(min(max_output_bytes - len(output) + 1, _READ_CHUNK_BYTES))
            if not chunk:
                break
            output += chunk
            if len(output) > max_output_bytes:
                raise _too_large(CompressionType.ZSTD, max_output_bytes)
    return bytes(output)


_ZSTD_FRAME_MAGIC = 0xFD2FB528
_ZSTD_SKIPPABLE_MAGIC_MASK = 0xFFFFFFF0
_ZSTD_SKIPPABLE_MAGIC = 0x184D2A50
_ZSTD_BLOCK_TYPE_RLE = 1
_ZSTD_BLOCK_TYPE_RESERVED = 3
_ZSTD_DICTIONARY_ID_BYTES = (0, 1, 2, 4)
_ZSTD_CONTENT_SIZE_BYTES = (0, 2, 4, 8)
_UINT32_LE = struct.Struct("<I")


def _zstd_check_frames(data: bytes, max_output_bytes: int) -> None:
    """Walk zstd frames and blocks (RFC 8878 section 3.1) and reject truncated input.

    Only headers are read; block contents are left to the decoder.  A declared frame content
    size over the bound is rejected here, before anything is decompressed.
    """
    position = 0
    total = len(data)
    while position < total:
        if total - position < 4:
            raise CorruptRecordError("zstd frame magic is truncated")
        (magic,) = _UINT32_LE.unpack_from(data, position)
        position += 4
        if magic & _ZSTD_SKIPPABLE_MAGIC_MASK == _ZSTD_SKIPPABLE_MAGIC:
            if total - position < 4:
                raise CorruptRecordError("zstd skippable frame is truncated")
            (frame_size,) = _UINT32_LE.unpack_from(data, position)
            position += 4 + frame_size
            if position > total:
                raise CorruptRecordError("zstd skippable frame is truncated")
            continue
        if magic != _ZSTD_FRAME_MAGIC:
            raise CorruptRecordError("zstd frame magic is invalid")
        position = _zstd_check_frame(data, position, max_output_bytes)


def _zstd_check_frame(data: bytes, position: int, max_output_bytes: int) -> int:
    total = len(data)
    if position >= total:
        raise CorruptRecordError("zstd frame header is truncated")
    descriptor = data[position]
    position += 1
    content_size_flag = descriptor >> 6
    single_segment = bool(descriptor & 0x20)
    has_checksum = bool(descriptor & 0x04)
    content_size_bytes = _ZSTD_CONTENT_SIZE_BYTES[content_size_flag]
    if content_size_flag == 0 and single_segment:
        content_size_bytes = 1
    header_rest_bytes = (
        (0 if single_segment else 1)
        + _ZSTD_DICTIONARY_ID_BYTES[descriptor & 0x03]
        + content_size_bytes
    )
    if total - position < header_rest_bytes:
        raise CorruptRecordError("zstd frame header is truncated")
    if content_size_bytes:
        start = position + header_rest_bytes - content_size_bytes
        content_size = int.from_bytes(data[start : position + header_rest_bytes], "little")
        if content_size_bytes == 2:
            content_size += 256  # RFC 8878 3.1.1.1.4: the 2-byte field is offset by 256.
        if content_size > max_output_bytes:
            raise _too_large(CompressionType.ZSTD, max_output_bytes)
    position += header_rest_bytes
    # Each block header is 3 bytes, so the input length bounds the block count.
    for _ in range(total):
        if total - position < 3:
            raise CorruptRecordError("zstd block header is truncated")
        block_header = int.from_bytes(data[position : position + 3], "little")
        position += 3
        block_type = (block_header >> 1) & 0x03
        if block_type == _ZSTD_BLOCK_TYPE_RESERVED:
            raise CorruptRecordError("zstd block type is reserved")
        position += 1 if block_type == _ZSTD_BLOCK_TYPE_RLE else block_header >> 3
        if position > total:
            raise CorruptRecordError("zstd block is truncated")
        if block_header & 0x01:
            break
    if has_checksum:
        position += 4
        if position > total:
            raise CorruptRecordError("zstd frame checksum is truncated")
    return position
