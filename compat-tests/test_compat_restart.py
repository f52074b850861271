"""A graceful restart keeps every record, byte for byte, at the same offset.

Goal: after SIGTERM (exit code 0) and a restart on the same data dir and ports, everything
written before is readable unchanged at the same offsets (keys, values, headers, timestamps),
topic partition counts are unchanged, and new writes continue the offset sequence.

Method: a function-scoped broker; write a mix of batches (several clients and codecs, two
partitions), read everything back with kafka-python, stop, restart, read again and compare
the whole record lists, then append and check the new offsets.
"""

from __future__ import annotations

from compat_clients import (
    consume_kafka_python,
    make_records,
    now_ms,
    produce_aiokafka,
    produce_confluent,
    produce_kafka_python,
    watermarks_confluent,
)


def read_all(bootstrap: str, topic: str, partition: int, count: int):
    return consume_kafka_python(bootstrap, topic, count, partition=partition)


def test_graceful_restart_keeps_records_and_continues_offsets(fresh_broker, topic) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    broker = fresh_broker
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(timeout=15)
    base_ms = now_ms() - 5_000
    writes = [
        (produce_confluent, "zstd", 0, make_records(150, base_timestamp_ms=base_ms, seed="a")),
        (produce_kafka_python, "gzip", 0, make_records(40, base_timestamp_ms=base_ms, seed="b")),
        (produce_aiokafka, "none", 1, make_records(60, base_timestamp_ms=base_ms, seed="c")),
        (produce_confluent, "lz4", 1, make_records(25, base_timestamp_ms=base_ms, seed="d")),
    ]
    counts = {0: 0, 1: 0}
    for produce, codec, partition, records in writes:
        produce(broker.bootstrap, topic, records, compression=codec, partition=partition)
        counts[partition] += len(records)
    before = {p: read_all(broker.bootstrap, topic, p, n) for p, n in counts.items()}

    broker.stop()  # asserts exit code 0
    broker.restart()

    after = {p: read_all(broker.bootstrap, topic, p, n) for p, n in counts.items()}
    assert after == before
    for partition, count in counts.items():
        assert watermarks_confluent(broker.bootstrap, topic, partition) == (0, count)
    listed = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(topic, timeout=15)
    assert sorted(listed.topics[topic].partitions) == [0, 1]

    more = make_records(10, base_timestamp_ms=now_ms(), seed="e")
    result = produce_confluent(broker.bootstrap, topic, more, partition=0)
    assert result.offsets == list(range(counts[0], counts[0] + 10))
    tail = consume_kafka_python(broker.bootstrap, topic, 10, start_offset=counts[0])
    assert [r.value for r in tail] == [r.value for r in more]


def test_restart_of_an_empty_broker_serves_again(fresh_broker, topic) -> None:
    fresh_broker.stop()
    fresh_broker.restart()
    assert produce_confluent(fresh_broker.bootstrap, topic, make_records(3)).offsets == [0, 1, 2]
