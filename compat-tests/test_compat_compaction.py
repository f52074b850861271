"""Log compaction seen by real consumers: 100,000 records over 1,000 keys with tombstones.

Goal (issue 7): after the cleaner runs, a consumer reading from the beginning sees exactly
the latest value of every live key, at the offset it was written at; tombstones disappear
once ``delete.retention.ms`` has passed; and a ``kill -9`` in the middle of a cleaning pass
loses nothing after the restart.

Method: confluent-kafka produces 100,000 keyed records (5% tombstones, seeded) into a
``cleanup.policy=compact`` topic with 256 KiB segments, all with one CreateTime timestamp;
a last "sentinel" record 2 minutes later rolls the log (``segment.ms`` = 1 minute), so every
record but the sentinel is cleanable.  The delivery reports give each record's offset, hence
the model.  The cleaner checks every 100 ms; its progress is read from
``cleaner-offset-checkpoint``.  For the kill, the cleaner is throttled
(``log.cleaner.io.max.bytes.per.second``) so a pass takes seconds, and the broker is killed
once the pass has swapped its first group and is writing the ``.cleaned`` file of a later one.
"""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path

from broker_process import Broker
from compat_clients import ClientError, now_ms

RECORD_COUNT = 100_000
KEY_COUNT = 1_000
TOMBSTONE_SHARE = 0.05
DEADLINE_S = 60.0
SENTINEL_KEY = b"sentinel"
TOPIC_CONFIGS = {
    "cleanup.policy": "compact",
    "segment.bytes": str(256 * 1024),
    "segment.ms": "60000",
    "delete.retention.ms": "2000",
}
FAST_CLEANER = {"log.cleaner.backoff.ms": "100"}

Record = tuple[int, bytes | None, bytes | None]


def _create(broker: Broker, topic: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config=TOPIC_CONFIGS)])[topic].result(timeout=30)


def _produce_history(broker: Broker, topic: str) -> list[Record]:
    """Every record as written: (offset, key, value), the sentinel last."""
    from confluent_kafka import Producer

    rng = random.Random(20240607)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all",
                         "linger.ms": 5, "batch.num.messages": 1000,
                         "queue.buffering.max.messages": 200_000})
    base_timestamp = now_ms() - 300_000
    history: list[Record | None] = [None] * (RECORD_COUNT + 1)

    def delivered(index: int, key: bytes, value: bytes | None):
        def on_delivery(error, message) -> None:
            if error is not None:
                raise ClientError(f"delivery failed: {error}")
            history[index] = (message.offset(), key, value)
        return on_delivery

    for index in range(RECORD_COUNT):
        key = b"key-%03d" % rng.randrange(KEY_COUNT)
        value = None if rng.random() < TOMBSTONE_SHARE else b"value-%06d-%s" % (index, b"x" * 16)
        producer.produce(topic, key=key, value=value, partition=0, timestamp=base_timestamp,
                         on_delivery=delivered(index, key, value))
        if index % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(DEADLINE_S) == 0
    # Two segment.ms later: the log rolls, leaving only the sentinel in the active segment.
    producer.produce(topic, key=SENTINEL_KEY, value=b"end", partition=0,
                     timestamp=base_timestamp + 120_000,
                     on_delivery=delivered(RECORD_COUNT, SENTINEL_KEY, b"end"))
    assert producer.flush(DEADLINE_S) == 0
    assert all(entry is not None for entry in history)
    records = sorted(history)  # type: ignore[arg-type]
    assert [offset for offset, _, _ in records] == list(range(RECORD_COUNT + 1))
    return records  # type: ignore[return-value]


def _latest(history: list[Record], keep_tombstones: bool = False) -> list[Record]:
    latest: dict[bytes | None, Record] = {}
    for record in history:
        latest[record[1]] = record
    return sorted(r for r in latest.values() if keep_tombstones or r[2] is not None)


def _consume_confluent(broker: Broker, topic: str, last_offset: int) -> list[Record]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": broker.bootstrap,
                         "group.id": f"compat-compaction-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 50})
    out: list[Record] = []
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            messages = consumer.consume(10_000, 0.2)
            for message in messages:
                if message.error():
                    raise ClientError(f"confluent-kafka: {message.error()}")
                out.append((message.offset(), message.key(), message.value()))
            if out and out[-1][0] >= last_offset:
                return out
    finally:
        consumer.close()
    raise ClientError(f"confluent-kafka read {len(out)} records, never offset {last_offset}")


def _consume_kafka_python(broker: Broker, topic: str, last_offset: int) -> list[Record]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                             enable_auto_commit=False, fetch_max_wait_ms=50)
    partition = TopicPartition(topic, 0)
    out: list[Record] = []
    try:
        consumer.assign([partition])
        consumer.seek(partition, 0)
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200, max_records=10_000).values():
                out.extend((m.offset, m.key, m.value) for m in batch)
            if out and out[-1][0] >= last_offset:
                return out
    finally:
        consumer.close()
    raise ClientError(f"kafka-python read {len(out)} records, never offset {last_offset}")


def _cleaned_up_to(broker: Broker, topic: str) -> int:
    path = broker.data_dir / "cleaner-offset-checkpoint"
    if not path.exists():
        return -1
    for line in path.read_text().splitlines()[2:]:
        name, partition, offset = line.split()
        if (name, partition) == (topic, "0"):
            return int(offset)
    return -1


def _wait(predicate, what: str, timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _partition_dir(broker: Broker, topic: str) -> Path:
    return broker.data_dir / f"{topic}-0"


def test_consumers_see_exactly_the_latest_value_per_live_key(broker_factory, topic: str) -> None:
    broker = broker_factory(overrides=FAST_CLEANER)
    _create(broker, topic)
    history = _produce_history(broker, topic)
    sentinel_offset = RECORD_COUNT
    _wait(lambda: _cleaned_up_to(broker, topic) == sentinel_offset, "the first cleaning pass")
    # Tombstones stay for delete.retention.ms after the pass that kept them, then go.
    expected = _latest(history)
    consumed: list[Record] = []

    def tombstones_gone() -> bool:
        nonlocal consumed
        consumed = _consume_confluent(broker, topic, sentinel_offset)
        return all(value is not None for _, _, value in consumed)

    _wait(tombstones_gone, "tombstones to be removed")
    assert consumed == expected
    assert _consume_kafka_python(broker, topic, sentinel_offset) == expected
    live_keys = {key for _, key, _ in expected}
    assert len(live_keys) == len(expected) and KEY_COUNT * 0.9 < len(live_keys) <= KEY_COUNT + 1
    # ~1,000 records of ~40 bytes remain of the ~4 MB written.
    log_bytes = sum(p.stat().st_size for p in _partition_dir(broker, topic).glob("*.log"))
    assert log_bytes < 200_000, log_bytes


def test_kill_during_a_cleaning_pass_loses_nothing(broker_factory, topic: str) -> None:
    broker = broker_factory(overrides={**FAST_CLEANER,
                                       "log.cleaner.io.max.bytes.per.second": "3000000"})
    _create(broker, topic)
    history = _produce_history(broker, topic)
    sentinel_offset = RECORD_COUNT
    directory = _partition_dir(broker, topic)
    # Kill once the pass has swapped its first group and is writing a later one.
    _wait(lambda: any(int(p.name.split(".")[0]) > 0 for p in directory.glob("*.cleaned")),
          "a pass to be half-way")
    broker.kill9()
    assert any(directory.glob("*.cleaned")) or any(directory.glob("*.swap"))
    # First look at what recovery left, with the cleaner off so it cannot change anything.
    broker.overrides.pop("log.cleaner.io.max.bytes.per.second")
    broker.overrides["log.cleaner.enable"] = "false"
    broker.restart()
    # Nothing lost: every record read was written at that offset, every key's latest value is
    # there, and no temporary file survived the restart.
    assert not [p for p in directory.iterdir() if p.suffix in (".cleaned", ".swap", ".deleted")]
    consumed = _consume_confluent(broker, topic, sentinel_offset)
    assert set(consumed) <= set(history)
    assert _latest(consumed, keep_tombstones=True) == _latest(history, keep_tombstones=True)
    # And the cleaner finishes the job after another restart.
    broker.stop()
    broker.overrides.pop("log.cleaner.enable")
    broker.restart()
    _wait(lambda: _cleaned_up_to(broker, topic) == sentinel_offset, "cleaning after restart")
    _wait(lambda: all(v is not None for _, _, v in _consume_confluent(
        broker, topic, sentinel_offset)), "tombstones to be removed")
    assert _consume_confluent(broker, topic, sentinel_offset) == _latest(history)
