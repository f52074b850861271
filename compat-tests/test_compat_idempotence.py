"""Idempotent producers write each record exactly once, in order, at dense offsets.

Goal: with enable.idempotence the broker accepts the producer id/epoch/sequence numbers each
client sends (InitProducerId, then up to five in-flight batches per partition for librdkafka)
and stores every record once: consuming back gives exactly N records, no duplicates, offsets
0..N-1, in send order.

Method: each idempotent client produces N distinct values to its own topic (small batches, so
there are many in flight), then confluent-kafka reads the partition and the high watermark must
equal N. kafka-python is idempotent by default; the test asserts it really enabled it (it
silently turns idempotence off if it guesses a broker older than 0.11).
"""

from __future__ import annotations

import pytest

from compat_clients import (
    consume_confluent,
    make_records,
    now_ms,
    produce_aiokafka,
    produce_confluent,
    produce_kafka_python,
    produce_kafkajs,
    produce_kcat,
    require_client,
    watermarks_confluent,
)

RECORD_COUNT = 2_000


def produce_idempotently(client: str, bootstrap: str, topic: str, records) -> None:
    if client == "confluent-kafka":
        result = produce_confluent(bootstrap, topic, records, config={
            "enable.idempotence": True, "batch.num.messages": 50, "linger.ms": 1,
        })
    elif client == "kafka-python":
        result = produce_kafka_python(bootstrap, topic, records, config={"batch_size": 4096})
        assert result.details["idempotent"], "kafka-python turned idempotence off"
    elif client == "aiokafka":
        result = produce_aiokafka(bootstrap, topic, records, config={
            "enable_idempotence": True, "max_batch_size": 4096,
        })
    elif client == "kcat":
        result = produce_kcat(bootstrap, topic, records, config={
            "enable.idempotence": "true", "batch.num.messages": "50",
        })
    else:
        result = produce_kafkajs(bootstrap, topic, records, idempotent=True)
    if client != "kcat":
        assert result.offsets == list(range(len(records)))


@pytest.mark.parametrize(
    "client", ["confluent-kafka", "kafka-python", "aiokafka", "kcat", "kafkajs"]
)
def test_idempotent_producer_writes_each_record_once(broker, topic, client) -> None:
    require_client(client)
    headers = [("idempotent", b"1")] if client == "kcat" else None
    records = make_records(RECORD_COUNT, headers=headers, value_size=40, seed=client[:2])
    produce_idempotently(client, broker.bootstrap, topic, records)
    assert watermarks_confluent(broker.bootstrap, topic) == (0, RECORD_COUNT)
    received = consume_confluent(broker.bootstrap, topic, RECORD_COUNT)
    assert [r.offset for r in received] == list(range(RECORD_COUNT))
    assert [r.value for r in received] == [r.value for r in records]


DUPLICATE_SEQUENCE_NUMBER = 46
OUT_OF_ORDER_SEQUENCE_NUMBER = 45


def test_resent_idempotent_batch_is_not_written_twice(broker, topic) -> None:
    """A retry of the same (producer id, epoch, sequence) batch must not append again.

    Real clients only retry after a lost response, which a healthy loopback run never has, so
    this case sends the retry by hand: Kafka answers a duplicate of one of the last five
    batches with success and the original offset (DUPLICATE_SEQUENCE_NUMBER is also allowed),
    and a sequence gap with OUT_OF_ORDER_SEQUENCE_NUMBER.
    """
    import raw_wire

    produce_confluent(broker.bootstrap, topic, make_records(1))  # create; offset 0
    with raw_wire.connect(broker.bootstrap) as sock:
        producer_id, epoch = raw_wire.init_producer_id_v0(sock, 1)
        timestamp_ms = now_ms()

        def send(correlation_id: int, values: list[bytes], sequence: int) -> tuple[int, int]:
            batch = raw_wire.record_batch_v2(values, timestamp_ms, None, producer_id, epoch,
                                             sequence)
            sock.sendall(raw_wire.produce_request_v3(correlation_id, topic, 0, batch, -1,
                                                     "compat-raw"))
            answer = raw_wire.read_frame(sock)
            assert answer is not None, "broker closed the connection on an idempotent Produce"
            answered_id, error_code, base_offset = raw_wire.produce_v3_partition_result(answer)
            assert answered_id == correlation_id
            return error_code, base_offset

        assert send(2, [b"first-a", b"first-b"], 0) == (0, 1)
        retry_error, retry_offset = send(3, [b"first-a", b"first-b"], 0)
        assert retry_error in (0, DUPLICATE_SEQUENCE_NUMBER), retry_error
        if retry_error == 0:
            assert retry_offset == 1, "a duplicate is answered with the original offset"
        assert send(4, [b"gap"], 5)[0] == OUT_OF_ORDER_SEQUENCE_NUMBER
        assert send(5, [b"next"], 2) == (0, 3)
    assert watermarks_confluent(broker.bootstrap, topic) == (0, 4)
    received = consume_confluent(broker.bootstrap, topic, 4)
    assert [r.value for r in received][1:] == [b"first-a", b"first-b", b"next"]
