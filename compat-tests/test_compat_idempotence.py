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
