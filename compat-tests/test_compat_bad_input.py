"""Bad bytes on the Kafka port cost one connection, never the broker, and are counted.

Goal: garbage, a negative or absurd length prefix, a truncated frame, an unknown API key and an
HTTP request on the Kafka port each get the connection closed (or, for the unknown key, an
error answer); an ApiVersions request of an unsupported version gets Kafka's fallback answer
(v0 header, v0 body, error_code 35, the supported ranges) on a connection that stays usable.
After each, a brand-new confluent-kafka producer and consumer still work, and
streambus_protocol_errors_total has gone up.

Method: raw sockets with hand-built frames (raw_wire), one case per parametrized test, the
metric read before and polled with a deadline after.
"""

from __future__ import annotations

import random
import socket
import struct
import time

import pytest

import raw_wire
from compat_clients import consume_confluent, make_records, produce_confluent, unique_topic

SOCKET_REQUEST_MAX_BYTES = 104_857_600  # Kafka's default socket.request.max.bytes
CLOSE_DEADLINE_S = 10.0


def protocol_errors_total(broker) -> float:
    status, body, _ = broker.http("/metrics")
    assert status == 200
    return raw_wire.metric_total(body.decode(), "streambus_protocol_errors_total")


def assert_protocol_errors_rise_above(broker, before: float) -> None:
    deadline = time.monotonic() + 5.0
    current = protocol_errors_total(broker)
    while current <= before and time.monotonic() < deadline:
        time.sleep(0.05)
        current = protocol_errors_total(broker)
    assert current > before, f"streambus_protocol_errors_total stayed at {current}"


def assert_broker_still_serves(broker) -> None:
    topic = unique_topic("after-bad-input")
    sent = make_records(3)
    assert produce_confluent(broker.bootstrap, topic, sent).offsets == [0, 1, 2]
    received = consume_confluent(broker.bootstrap, topic, 3)
    assert [r.value for r in received] == [r.value for r in sent]


def random_garbage() -> bytes:
    body = random.Random(1234).randbytes(252)
    return struct.pack(">i", len(body)) + body


def truncated_produce_header() -> bytes:
    partial_body = raw_wire.request_header_v1(0, 7, 5, "compat-raw")
    return struct.pack(">i", 100) + partial_body  # 100 bytes promised, fewer sent


# Cases after which the broker must close the connection.
CLOSING_CASES = {
    "body-shorter-than-a-request-header": raw_wire.frame(b"\x01\x02\x03"),
    "random-garbage": random_garbage(),
    "negative-length": struct.pack(">i", -5) + b"abcde",
    "absurd-length": struct.pack(">i", SOCKET_REQUEST_MAX_BYTES + 1),
    "http-get-on-kafka-port": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
}


@pytest.mark.parametrize("payload", CLOSING_CASES.values(), ids=CLOSING_CASES.keys())
def test_bad_frame_closes_connection_and_broker_survives(broker, payload) -> None:
    before = protocol_errors_total(broker)
    with raw_wire.connect(broker.bootstrap) as sock:
        sock.sendall(payload)
        assert raw_wire.wait_closed(sock, CLOSE_DEADLINE_S), "connection left open"
    assert_protocol_errors_rise_above(broker, before)
    assert_broker_still_serves(broker)


def test_truncated_frame_then_close_is_survived(broker) -> None:
    before = protocol_errors_total(broker)
    with raw_wire.connect(broker.bootstrap) as sock:
        sock.sendall(truncated_produce_header())
    assert_protocol_errors_rise_above(broker, before)
    assert_broker_still_serves(broker)


def test_unknown_api_key_gets_error_answer_or_close(broker) -> None:
    before = protocol_errors_total(broker)
    with raw_wire.connect(broker.bootstrap) as sock:
        sock.sendall(raw_wire.frame(raw_wire.request_header_v1(9999, 0, 7, "compat-raw")))
        try:
            answer = raw_wire.read_frame(sock)
        except ConnectionResetError:
            answer = None
        except socket.timeout:
            pytest.fail("no answer and no close within the socket timeout")
    if answer is not None:
        assert struct.unpack_from(">i", answer)[0] == 7, "answer must carry correlation id 7"
    assert_protocol_errors_rise_above(broker, before)
    assert_broker_still_serves(broker)


def _compact_string(text: str) -> bytes:
    encoded = text.encode()
    assert len(encoded) < 127
    return bytes([len(encoded) + 1]) + encoded


def api_versions_request(version: int, correlation_id: int) -> bytes:
    """ApiVersions as a v3+ client would send it: header v2 (empty tagged fields) + body."""
    header = raw_wire.request_header_v1(18, version, correlation_id, "compat-raw") + b"\x00"
    body = _compact_string("compat-raw") + _compact_string("1.0") + b"\x00"
    return raw_wire.frame(header + body)


def test_unsupported_api_versions_version_gets_v0_error_body(broker) -> None:
    before = protocol_errors_total(broker)
    with raw_wire.connect(broker.bootstrap) as sock:
        sock.sendall(api_versions_request(99, 42))
        answer = raw_wire.read_frame(sock)
        assert answer is not None, "broker closed instead of answering UNSUPPORTED_VERSION"
        correlation_id, error_code, ranges = raw_wire.parse_api_versions_v0(answer)
        assert (correlation_id, error_code) == (42, raw_wire.UNSUPPORTED_VERSION)
        assert 18 in ranges and ranges[18][0] == 0 and ranges[18][1] < 99
        # Kafka keeps the connection: the client retries with a version it can now pick.
        sock.sendall(raw_wire.api_versions_request_v0(43))
        retry = raw_wire.read_frame(sock)
    assert retry is not None, "connection closed after the UNSUPPORTED_VERSION answer"
    assert raw_wire.parse_api_versions_v0(retry)[:2] == (43, 0)
    assert_protocol_errors_rise_above(broker, before)
    assert_broker_still_serves(broker)
