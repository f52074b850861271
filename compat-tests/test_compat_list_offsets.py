"""ListOffsets: by timestamp, the first offset whose timestamp is >= the target; earliest/latest.

Goal: `offsets_for_times` in every client that has it (kafka-python, confluent-kafka, aiokafka,
kcat -Q) returns Kafka's answer, including for out-of-order CreateTime timestamps and for
targets inside one compressed batch (the broker must look at record timestamps, not only at the
batch's max timestamp), and earliest/latest are the log start and log end offsets.

Method: write six records with explicit CreateTime timestamps (one out of order), either one
batch per record or all in one gzip batch, then query each target in TARGETS and compare with
the expected offset worked out by hand (None: no record is that late; Kafka answers -1).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from compat_clients import (
    CLIENT_TIMEOUT_S,
    OutRecord,
    kcat_query_offset_for_time,
    now_ms,
    produce_confluent,
    require_client,
)

BASE_MS = now_ms() - 60_000
# offset -> CreateTime; offset 4 goes back in time.
TIMESTAMP_DELTAS = [0, 100, 100, 300, 200, 500]
# target delta -> first offset whose timestamp >= BASE_MS + target delta
TARGETS = {
    -1000: 0,
    0: 0,
    50: 1,
    100: 1,
    150: 3,  # offset 4 (200) is later in the log than offset 3 (300)
    250: 3,
    400: 5,
    500: 5,
    501: None,
}
RECORDS = [
    OutRecord(f"k{i}".encode(), f"v{i}".encode(), (), BASE_MS + delta)
    for i, delta in enumerate(TIMESTAMP_DELTAS)
]
LAYOUTS = ["batch-per-record", "one-gzip-batch"]


def write_records(bootstrap: str, topic: str, layout: str) -> None:
    if layout == "batch-per-record":
        for index, record in enumerate(RECORDS):
            assert produce_confluent(bootstrap, topic, [record]).offsets == [index]
    else:
        result = produce_confluent(
            bootstrap, topic, RECORDS, compression="gzip", config={"linger.ms": 200}
        )
        assert result.offsets == list(range(len(RECORDS)))


def query_kafka_python(bootstrap: str, topic: str) -> tuple[dict, int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        answers = {}
        for delta in TARGETS:
            found = consumer.offsets_for_times({tp: BASE_MS + delta})[tp]
            answers[delta] = None if found is None else found.offset
            if found is not None:
                assert found.timestamp == RECORDS[found.offset].timestamp_ms
        return answers, consumer.beginning_offsets([tp])[tp], consumer.end_offsets([tp])[tp]
    finally:
        consumer.close()


def query_confluent(bootstrap: str, topic: str) -> tuple[dict, int, int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"compat-offsets-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
    })
    try:
        answers = {}
        for delta in TARGETS:
            [found] = consumer.offsets_for_times(
                [TopicPartition(topic, 0, BASE_MS + delta)], timeout=CLIENT_TIMEOUT_S
            )
            assert found.error is None, found.error
            answers[delta] = None if found.offset == -1 else found.offset
        earliest, latest = consumer.get_watermark_offsets(
            TopicPartition(topic, 0), timeout=CLIENT_TIMEOUT_S, cached=False
        )
        return answers, earliest, latest
    finally:
        consumer.close()


def query_aiokafka(bootstrap: str, topic: str) -> tuple[dict, int, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def run():
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                    enable_auto_commit=False, request_timeout_ms=10_000)
        await consumer.start()
        try:
            tp = TopicPartition(topic, 0)
            answers = {}
            for delta in TARGETS:
                found = (await consumer.offsets_for_times({tp: BASE_MS + delta}))[tp]
                answers[delta] = None if found is None else found.offset
            earliest = (await consumer.beginning_offsets([tp]))[tp]
            latest = (await consumer.end_offsets([tp]))[tp]
            return answers, earliest, latest
        finally:
            await consumer.stop()

    return asyncio.run(run())


def query_kcat(bootstrap: str, topic: str) -> tuple[dict, int, int]:
    answers = {}
    for delta in TARGETS:
        offset = kcat_query_offset_for_time(bootstrap, topic, 0, BASE_MS + delta)
        answers[delta] = None if offset == -1 else offset
    # kcat -Q takes the magic timestamps -2 (earliest) and -1 (latest) too.
    earliest = kcat_query_offset_for_time(bootstrap, topic, 0, -2)
    latest = kcat_query_offset_for_time(bootstrap, topic, 0, -1)
    return answers, earliest, latest


QUERIES = {
    "kafka-python": query_kafka_python,
    "confluent-kafka": query_confluent,
    "aiokafka": query_aiokafka,
    "kcat": query_kcat,
}


@pytest.mark.parametrize("client", list(QUERIES))
@pytest.mark.parametrize("layout", LAYOUTS)
def test_offsets_for_times_returns_first_offset_at_or_after_target(
    broker, topic, layout, client
) -> None:
    require_client(client)
    write_records(broker.bootstrap, topic, layout)
    answers, earliest, latest = QUERIES[client](broker.bootstrap, topic)
    assert answers == TARGETS
    assert (earliest, latest) == (0, len(RECORDS))


def test_empty_partition_earliest_equals_latest(broker, topic) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=15)
    answers, earliest, latest = query_kafka_python(broker.bootstrap, topic)
    assert (earliest, latest) == (0, 0)
    assert set(answers.values()) == {None}
