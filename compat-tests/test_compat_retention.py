"""Retention and DeleteRecords with real clients: exactly the expected segments go, consumers
below the new log start get OFFSET_OUT_OF_RANGE and reset as their policy says.

Method: one broker checking retention every 100 ms; topics with 1 KiB segments (three
~300-byte single-record batches each, so the segment boundaries are known from the files
on disk).  Records carry explicit CreateTime timestamps, old or new, so expiry needs no
waiting; retention is switched on by altering the topic's config at runtime (no restart).
Then ListOffsets, the segment files and consumers of kafka-python and confluent-kafka are
compared with what Kafka keeps.
"""

from __future__ import annotations

import time
import pytest

from broker_process import Broker
from compat_clients import now_ms, watermarks_confluent

DEADLINE_S = 15.0
HOUR_MS = 3_600_000
SEGMENT_BYTES = 1024
VALUE = b"v" * 200


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory):
    instance = Broker(tmp_path_factory.mktemp("retention"),
                      overrides={"log.retention.check.interval.ms": "100"}).start()
    yield instance
    instance.stop()
    instance.close()


def _segments(broker: Broker, topic: str) -> list[int]:
    return sorted(int(p.name.split(".")[0]) for p in (broker.data_dir / f"{topic}-0").glob("*.log"))


def _segment_sizes(broker: Broker, topic: str) -> list[tuple[int, int]]:
    return sorted((int(p.name.split(".")[0]), p.stat().st_size)
                  for p in (broker.data_dir / f"{topic}-0").glob("*.log"))


def _create(broker: Broker, topic: str, **configs: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.create_topics([NewTopic(topic, 1, 1, config={
        "segment.bytes": str(SEGMENT_BYTES), **configs})])
    futures[topic].result(timeout=DEADLINE_S)


def _produce_one_per_batch(broker: Broker, topic: str, timestamps_ms: list[int]) -> list[int]:
    """Each record in its own batch (flush after each), so segments hold whole records."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=0,
                             enable_idempotence=False, acks=1)
    try:
        offsets = []
        for index, timestamp_ms in enumerate(timestamps_ms):
            future = producer.send(topic, key=b"k%d" % index, value=VALUE, partition=0,
                                   timestamp_ms=timestamp_ms)
            offsets.append(future.get(timeout=DEADLINE_S).offset)
    finally:
        producer.close(timeout=5)
    return offsets


def _wait_for_log_start(broker: Broker, topic: str, expected: int) -> None:
    deadline = time.monotonic() + DEADLINE_S
    low = -1
    while time.monotonic() < deadline:
        low, _ = watermarks_confluent(broker.bootstrap, topic)
        if low == expected:
            return
        time.sleep(0.05)
    raise AssertionError(f"log start offset is {low}, expected {expected}")


def _first_offset_kafka_python(broker: Broker, topic: str, reset: str,
                               wait_s: float = 5.0) -> int | None:
    """Seek to 0 (below the log start) and report the first offset consumed."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                             enable_auto_commit=False, auto_offset_reset=reset,
                             fetch_max_wait_ms=100)
    partition = TopicPartition(topic, 0)
    try:
        consumer.assign([partition])
        consumer.seek(partition, 0)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                return records[0].offset
        return None
    finally:
        consumer.close()


def _first_offset_confluent(broker: Broker, topic: str, reset: str) -> int | str | None:
    """Assign at offset 0; the first offset consumed, or the error's name."""
    import uuid

    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": broker.bootstrap,
                         "group.id": f"compat-retention-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "auto.offset.reset": reset,
                         "fetch.wait.max.ms": 100})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                continue
            if message.error():
                return message.error().name()
            return message.offset()
        return None
    finally:
        consumer.close()


def _alter_topic_incremental(broker: Broker, topic: str, **configs: str) -> None:
    from confluent_kafka.admin import (
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        ResourceType,
    )

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
        for name, value in configs.items()])
    admin.incremental_alter_configs([resource])[resource].result(timeout=DEADLINE_S)


def test_time_retention_deletes_exactly_the_expired_segments(broker: Broker, topic: str) -> None:
    """Twelve records two days old, then six new ones; retention.ms=1h set at runtime with
    kafka-python removes exactly the segments whose newest record is old."""
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    _create(broker, topic)
    now = now_ms()
    offsets = _produce_one_per_batch(broker, topic, [now - 48 * HOUR_MS] * 12 + [now] * 6)
    assert offsets == list(range(18))
    bases = _segments(broker, topic)
    assert len(bases) >= 5, bases
    first_kept = max(base for base in bases if base <= 12)  # holds the first new record
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        result = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                     configs={"retention.ms": str(HOUR_MS)})])
        assert result == {"topic": {topic: "OK"}}
    finally:
        admin.close()
    _wait_for_log_start(broker, topic, first_kept)
    assert _segments(broker, topic) == [base for base in bases if base >= first_kept]
    # Consumers positioned below the log start reset as their policy says.
    assert _first_offset_kafka_python(broker, topic, "earliest") == first_kept
    assert _first_offset_confluent(broker, topic, "earliest") == first_kept
    assert _first_offset_confluent(broker, topic, "error") == "_AUTO_OFFSET_RESET"
    # "latest" jumps to the end: nothing to read within a second.
    assert _first_offset_kafka_python(broker, topic, "latest", wait_s=1.0) is None


@pytest.fixture
def topic_for_size(broker: Broker, topic: str) -> str:
    _create(broker, topic)
    return topic


def test_size_retention_keeps_the_log_at_or_above_the_limit(broker: Broker,
                                                            topic_for_size: str) -> None:
    """retention.bytes set with confluent-kafka's IncrementalAlterConfigs: the oldest segments
    go while the log stays at or above the limit without them."""
    topic = topic_for_size
    _produce_one_per_batch(broker, topic, [now_ms()] * 18)
    sizes = _segment_sizes(broker, topic)
    limit = sum(size for _, size in sizes[-3:]) + 1  # a bit more than the newest three
    expected = list(sizes)
    total = sum(size for _, size in sizes)
    while len(expected) > 1 and total - expected[0][1] >= limit:
        total -= expected.pop(0)[1]
    assert len(expected) == 4
    _alter_topic_incremental(broker, topic, **{"retention.bytes": str(limit)})
    _wait_for_log_start(broker, topic, expected[0][0])
    assert _segment_sizes(broker, topic) == expected
    assert _first_offset_confluent(broker, topic, "earliest") == expected[0][0]


def test_delete_records_moves_the_log_start(broker: Broker, topic: str) -> None:
    """kafka-python and confluent-kafka DeleteRecords return the new low watermark; whole
    segments below it are deleted, and consumers below it reset."""
    from confluent_kafka import TopicPartition as ConfluentPartition
    from confluent_kafka.admin import AdminClient
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient

    _create(broker, topic)
    _produce_one_per_batch(broker, topic, [now_ms()] * 12)
    bases = _segments(broker, topic)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        result = admin.delete_records({TopicPartition(topic, 0): 4})
        assert result[TopicPartition(topic, 0)]["low_watermark"] == 4
    finally:
        admin.close()
    assert watermarks_confluent(broker.bootstrap, topic) == (4, 12)
    assert _segments(broker, topic) == [base for base in bases if base >= max(
        b for b in bases if b <= 4)]
    confluent = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = confluent.delete_records([ConfluentPartition(topic, 0, 10)])
    deleted = futures[ConfluentPartition(topic, 0)].result(timeout=DEADLINE_S)
    assert deleted.low_watermark == 10
    assert _first_offset_kafka_python(broker, topic, "earliest") == 10
    assert _first_offset_confluent(broker, topic, "earliest") == 10
    # -1 deletes up to the high watermark: the log is empty but keeps its offsets.
    futures = confluent.delete_records([ConfluentPartition(topic, 0, -1)])
    assert futures[ConfluentPartition(topic, 0)].result(timeout=DEADLINE_S).low_watermark == 12
    assert watermarks_confluent(broker.bootstrap, topic) == (12, 12)


def test_delete_records_is_refused_on_a_compact_only_topic(broker: Broker, topic: str) -> None:
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient
    from kafka.errors import PolicyViolationError

    _create(broker, topic, **{"cleanup.policy": "compact"})
    _produce_one_per_batch(broker, topic, [now_ms()] * 2)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        with pytest.raises(PolicyViolationError):
            admin.delete_records({TopicPartition(topic, 0): 1})
    finally:
        admin.close()
    assert watermarks_confluent(broker.bootstrap, topic) == (0, 2)


def test_log_start_survives_a_kill(broker_factory, topic: str) -> None:
    """DeleteRecords persists the new log start at once, so kill -9 does not bring deleted
    records back (the start lies inside a segment that still exists)."""
    from confluent_kafka import TopicPartition as ConfluentPartition
    from confluent_kafka.admin import AdminClient

    instance = broker_factory()
    _create(instance, topic)
    _produce_one_per_batch(instance, topic, [now_ms()] * 6)
    admin = AdminClient({"bootstrap.servers": instance.bootstrap})
    futures = admin.delete_records([ConfluentPartition(topic, 0, 4)])
    assert futures[ConfluentPartition(topic, 0)].result(timeout=DEADLINE_S).low_watermark == 4
    instance.kill9()
    instance.restart()
    assert watermarks_confluent(instance.bootstrap, topic) == (4, 6)

