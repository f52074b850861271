"""Hand-built Kafka frames over raw sockets, and a Prometheus text parser, for compat tests.

Independent of the broker's own codec on purpose: these bytes are written from the Kafka
protocol guide (request header v1: api_key INT16, api_version INT16, correlation_id INT32,
client_id nullable INT16 string; response header v0: correlation_id INT32), so a shared codec
bug cannot hide itself.
"""

from __future__ import annotations

import re
import socket
import struct
import time

API_VERSIONS_KEY = 18
UNSUPPORTED_VERSION = 35


def request_header_v1(api_key: int, api_version: int, correlation_id: int, client_id: str) -> bytes:
    encoded = client_id.encode()
    return struct.pack(">hhih", api_key, api_version, correlation_id, len(encoded)) + encoded


def frame(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


def connect(bootstrap: str, timeout_s: float = 5.0) -> socket.socket:
    host, port = bootstrap.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=timeout_s)
    sock.settimeout(timeout_s)
    return sock


def recv_exact(sock: socket.socket, size: int) -> bytes | None:
    """Read exactly size bytes; None if the peer closed first."""
    chunks = []
    remaining = size
    while remaining:
        chunk = sock.recv(remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame(sock: socket.socket) -> bytes | None:
    """One length-prefixed response frame, or None when the broker closed the connection."""
    prefix = recv_exact(sock, 4)
    if prefix is None:
        return None
    (size,) = struct.unpack(">i", prefix)
    assert 0 <= size < 64 * 1024 * 1024, f"implausible response frame size {size}"
    return recv_exact(sock, size)


def wait_closed(sock: socket.socket, timeout_s: float = 10.0) -> bool:
    """True if the peer closes (EOF or reset) within timeout_s, discarding any bytes read."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
    return False


def parse_api_versions_v0(body: bytes) -> tuple[int, int, dict[int, tuple[int, int]]]:
    """(correlation_id, error_code, {api_key: (min, max)}) from a v0 header + v0 body.

    Raises AssertionError if the body has trailing bytes (a v1+/flexible body would).
    """
    correlation_id, error_code, count = struct.unpack_from(">ihi", body, 0)
    position = 10
    assert 0 <= count < 1000, f"implausible api_keys array length {count}"
    ranges = {}
    for _ in range(count):
        api_key, version_min, version_max = struct.unpack_from(">hhh", body, position)
        ranges[api_key] = (version_min, version_max)
        position += 6
    assert position == len(body), (
        f"ApiVersions v0 body should end after the array: {len(body) - position} trailing bytes"
    )
    return correlation_id, error_code, ranges


def api_versions(bootstrap: str) -> dict[int, tuple[int, int]]:
    """The broker's advertised {api_key: (min, max)}, asked with ApiVersions v0."""
    with connect(bootstrap) as sock:
        sock.sendall(api_versions_request_v0(1, "compat-probe"))
        body = read_frame(sock)
    assert body is not None, "broker closed the connection on ApiVersions v0"
    correlation_id, error_code, ranges = parse_api_versions_v0(body)
    assert (correlation_id, error_code) == (1, 0)
    return ranges


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Samples (name, labels, value) from the Prometheus text exposition format."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels_text, value = match.groups()
        labels = dict(_LABEL.findall(labels_text or ""))
        samples.append((name, labels, float(value)))
    return samples


def metric_total(text: str, name: str, **label_filter: str) -> float:
    """Sum of the samples of one metric whose labels match label_filter (0 if none)."""
    total = 0.0
    for sample_name, labels, value in parse_prometheus(text):
        if sample_name == name and all(labels.get(k) == v for k, v in label_filter.items()):
            total += value
    return total


# -- record batch v2 and Produce v3, written out from the protocol guide -----------------------

PRODUCE_KEY = 0


def _zigzag_varint(value: int) -> bytes:
    encoded = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        byte = encoded & 0x7F
        encoded >>= 7
        if encoded:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _record_v2(offset_delta: int, timestamp_delta: int, key: bytes | None, value: bytes) -> bytes:
    body = b"\x00" + _zigzag_varint(timestamp_delta) + _zigzag_varint(offset_delta)
    body += _zigzag_varint(-1) if key is None else _zigzag_varint(len(key)) + key
    body += _zigzag_varint(len(value)) + value
    body += _zigzag_varint(0)  # no headers
    return _zigzag_varint(len(body)) + body


def record_batch_v2(
    values: list[bytes],
    timestamp_ms: int,
    key: bytes | None = None,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
) -> bytes:
    """An uncompressed magic-2 batch of `values` (base offset 0); idempotent if producer_id >= 0."""
    import crc32c  # a broker dependency; imported here so the module loads without it

    records = b"".join(_record_v2(i, 0, key, value) for i, value in enumerate(values))
    after_crc = struct.pack(
        ">hiqqqhii", 0, len(values) - 1, timestamp_ms, timestamp_ms,
        producer_id, producer_epoch, base_sequence, len(values),
    ) + records
    crc = crc32c.crc32c(after_crc)
    after_length = struct.pack(">ibI", -1, 2, crc) + after_crc
    return struct.pack(">qi", 0, len(after_length)) + after_length


def produce_request_v3(
    correlation_id: int, topic: str, partition: int, batch: bytes, acks: int, client_id: str
) -> bytes:
    """A framed Produce v3 request carrying one batch for one partition."""
    encoded_topic = topic.encode()
    body = struct.pack(">hhi", -1, acks, 10_000)  # null transactional_id, acks, timeout_ms
    body += struct.pack(">ih", 1, len(encoded_topic)) + encoded_topic
    body += struct.pack(">iii", 1, partition, len(batch)) + batch
    return frame(request_header_v1(PRODUCE_KEY, 3, correlation_id, client_id) + body)


def api_versions_request_v0(correlation_id: int, client_id: str = "compat-raw") -> bytes:
    return frame(request_header_v1(API_VERSIONS_KEY, 0, correlation_id, client_id))


INIT_PRODUCER_ID_KEY = 22


def init_producer_id_v0(sock: socket.socket, correlation_id: int) -> tuple[int, int]:
    """InitProducerId v0 for a non-transactional producer; returns (producer_id, epoch)."""
    body = struct.pack(">hi", -1, 60_000)  # null transactional_id, transaction_timeout_ms
    sock.sendall(frame(request_header_v1(INIT_PRODUCER_ID_KEY, 0, correlation_id, "compat-raw")
                       + body))
    answer = read_frame(sock)
    assert answer is not None, "broker closed the connection on InitProducerId v0"
    answer_correlation_id, _throttle_ms, error_code, producer_id, epoch = struct.unpack(
        ">iihqh", answer
    )
    assert (answer_correlation_id, error_code) == (correlation_id, 0)
    return producer_id, epoch


def produce_v3_partition_result(answer: bytes) -> tuple[int, int, int]:
    """(correlation_id, error_code, base_offset) from a one-partition Produce v3 response."""
    correlation_id, topic_count, name_size = struct.unpack_from(">iih", answer, 0)
    assert topic_count == 1
    position = 10 + name_size
    partition_count, _partition, error_code, base_offset = struct.unpack_from(
        ">iihq", answer, position
    )
    assert partition_count == 1
    return correlation_id, error_code, base_offset


FETCH_KEY = 1
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def fetch_v4_records(bootstrap: str, topic: str, partition: int, offset: int = 0,
                     max_bytes: int = 16 * 1024 * 1024) -> bytes:
    """The raw record-batch bytes that Fetch v4 returns for one partition from `offset`."""
    encoded_topic = topic.encode()
    body = struct.pack(">iiiib", -1, 100, 1, max_bytes, 0)  # replica, wait, min, max, isolation
    body += struct.pack(">ih", 1, len(encoded_topic)) + encoded_topic
    body += struct.pack(">iiqi", 1, partition, offset, max_bytes)
    with connect(bootstrap) as sock:
        sock.sendall(frame(request_header_v1(FETCH_KEY, 4, 7, "compat-raw") + body))
        answer = read_frame(sock)
    assert answer is not None, "broker closed the connection on Fetch v4"
    correlation_id, _throttle_ms, topic_count, name_size = struct.unpack_from(">iiih", answer, 0)
    assert (correlation_id, topic_count) == (7, 1)
    position = 14 + name_size
    partition_count, _partition, error_code, _hw, _lso, aborted_count = struct.unpack_from(
        ">iihqqi", answer, position
    )
    assert (partition_count, error_code) == (1, 0), f"Fetch v4 error_code {error_code}"
    position += 30 + max(aborted_count, 0) * 16
    (records_size,) = struct.unpack_from(">i", answer, position)
    return answer[position + 4: position + 4 + max(records_size, 0)]


def batch_codecs(records: bytes) -> list[int]:
    """Compression codec (attributes & 7) of each complete magic-2 batch in `records`."""
    codecs = []
    position = 0
    while position + 23 <= len(records):
        (batch_length,) = struct.unpack_from(">i", records, position + 8)
        if position + 12 + batch_length > len(records):
            break  # a partial batch at the end of a fetch response is allowed
        assert records[position + 16] == 2, "expected magic 2"
        (attributes,) = struct.unpack_from(">h", records, position + 21)
        codecs.append(attributes & 7)
        position += 12 + batch_length
    return codecs
