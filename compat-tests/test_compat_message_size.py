"""Records over the broker's size limit are rejected with MESSAGE_TOO_LARGE; smaller ones land.

Goal: `message.max.bytes` (broker) and `max.message.bytes` (topic) bound the size of a record
batch; the producer sees MESSAGE_TOO_LARGE (error 10), nothing of the rejected batch becomes
visible, and records under the limit still get the next offset.

Method: a broker started with --override message.max.bytes=1000. Each client sends one 2000 B
record (incompressible, compression none, flushed alone so it is its own batch) and expects its
own spelling of MESSAGE_TOO_LARGE; then a 100 B record must land at offset 0. The topic-level
case creates a topic with max.message.bytes=500 on a default broker.
"""

from __future__ import annotations

import os

import pytest

from compat_clients import (
    ClientError,
    OutRecord,
    consume_confluent,
    produce_aiokafka,
    produce_confluent,
    produce_kafka_python,
    watermarks_confluent,
)

BROKER_LIMIT_BYTES = 1000
PRODUCERS = {
    "confluent-kafka": produce_confluent,
    "kafka-python": produce_kafka_python,
    "aiokafka": produce_aiokafka,
}
# How each client spells Kafka error 10 in ClientError text.
TOO_LARGE_SPELLINGS = ("MSG_SIZE_TOO_LARGE", "MessageSizeTooLarge", "MESSAGE_TOO_LARGE")


@pytest.fixture(scope="module")
def small_limit_broker(tmp_path_factory):
    from broker_process import Broker

    instance = Broker(
        tmp_path_factory.mktemp("small-limit"),
        overrides={"message.max.bytes": str(BROKER_LIMIT_BYTES)},
    ).start()
    yield instance
    instance.finish()


def record_of(size: int) -> OutRecord:
    return OutRecord(b"k", os.urandom(size))


def assert_rejected_as_too_large(produce, bootstrap: str, topic: str, size: int) -> None:
    with pytest.raises(ClientError) as caught:
        produce(bootstrap, topic, [record_of(size)], timeout_s=15)
    text = str(caught.value)
    assert any(spelling in text for spelling in TOO_LARGE_SPELLINGS), text


@pytest.mark.parametrize("client", list(PRODUCERS))
def test_record_over_broker_limit_is_rejected_and_small_one_lands(
    small_limit_broker, topic, client
) -> None:
    produce = PRODUCERS[client]
    bootstrap = small_limit_broker.bootstrap
    assert_rejected_as_too_large(produce, bootstrap, topic, 2 * BROKER_LIMIT_BYTES)
    small = record_of(100)
    result = produce(bootstrap, topic, [small])
    assert result.offsets == [0], "the rejected batch must not take an offset"
    received = consume_confluent(bootstrap, topic, 1)
    assert [(r.offset, r.value) for r in received] == [(0, small.value)]
    assert watermarks_confluent(bootstrap, topic) == (0, 1)


def test_topic_max_message_bytes_is_enforced(broker, topic) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=1, replication_factor=1,
                  config={"max.message.bytes": "500"})]
    )
    futures[topic].result(timeout=15)
    assert_rejected_as_too_large(produce_confluent, broker.bootstrap, topic, 1000)
    result = produce_confluent(broker.bootstrap, topic, [record_of(100)])
    assert result.offsets == [0]
