"""acks=0, acks=1 and acks=all produce requests all succeed and land in the log.

Goal: every acks mode of every producer client writes its records, and acks=0 gets no
response at all (no client reads one; an unexpected response would be taken as the answer to
the client's next request).

Method: each (client, acks) pair produces 30 records to a fresh topic; kafka-python reads
them back by assign + seek and we compare values and dense offsets. Where the client reports
offsets (acks 1/all) they must be 0..29. The raw-socket case sends Produce v3 with acks=0
followed by ApiVersions on the same connection: the first response must be ApiVersions'.
"""

from __future__ import annotations

import pytest

import raw_wire
from compat_clients import (
    PRODUCERS,
    consume_kafka_python,
    make_records,
    now_ms,
    require_client,
)

RECORD_COUNT = 30
CLIENTS = ["confluent-kafka", "kafka-python", "aiokafka", "kcat", "kafkajs"]
ACKS = ["0", "1", "all"]


@pytest.mark.parametrize("acks", ACKS, ids=lambda a: f"acks-{a}")
@pytest.mark.parametrize("client", CLIENTS)
def test_produce_with_acks_lands_every_record(broker, topic, client, acks) -> None:
    require_client(client)
    if client == "kcat":
        sent = make_records(RECORD_COUNT, headers=[("acks", acks.encode())])
    else:
        sent = make_records(RECORD_COUNT, base_timestamp_ms=now_ms())
    result = PRODUCERS[client](broker.bootstrap, topic, sent, acks=acks)
    if acks != "0" and client != "kcat":
        assert result.offsets == list(range(RECORD_COUNT)), f"{client} acknowledged offsets"
    received = consume_kafka_python(broker.bootstrap, topic, RECORD_COUNT)
    assert [r.offset for r in received] == list(range(RECORD_COUNT))
    assert [r.value for r in received] == [s.value for s in sent]


def test_acks_zero_produce_gets_no_response(broker, topic) -> None:
    # Create the topic first so the acks=0 write cannot be dropped for an unknown topic.
    PRODUCERS["confluent-kafka"](broker.bootstrap, topic, make_records(1))
    batch = raw_wire.record_batch_v2([b"raw-acks-0"], now_ms())
    with raw_wire.connect(broker.bootstrap) as sock:
        sock.sendall(raw_wire.produce_request_v3(101, topic, 0, batch, 0, "compat-raw"))
        sock.sendall(raw_wire.api_versions_request_v0(102))
        first = raw_wire.read_frame(sock)
    assert first is not None, "broker closed the connection after an acks=0 Produce"
    correlation_id = int.from_bytes(first[:4], "big", signed=True)
    assert correlation_id == 102, "the first response must answer ApiVersions, not the acks=0 Produce"
    received = consume_kafka_python(broker.bootstrap, topic, 2)
    assert [(r.offset, r.value) for r in received][1] == (1, b"raw-acks-0")


def test_failed_acks_zero_produce_closes_the_connection(broker) -> None:
    """An acks=0 producer reads no responses, so Kafka signals a failed write by closing the
    connection (the producer then refreshes metadata); StreamBus does the same."""
    batch = raw_wire.record_batch_v2([b"lost"], now_ms())
    with raw_wire.connect(broker.bootstrap) as sock:
        sock.sendall(raw_wire.produce_request_v3(201, "no-such-topic-acks0", 0, batch, 0,
                                                 "compat-raw"))
        assert raw_wire.wait_closed(sock), "the connection stayed open after a failed acks=0 write"
    with raw_wire.connect(broker.bootstrap) as sock:  # and everyone else is still served
        sock.sendall(raw_wire.api_versions_request_v0(202))
        answer = raw_wire.read_frame(sock)
    assert answer is not None and int.from_bytes(answer[:4], "big", signed=True) == 202
