"""Records survive the trip from one real client to a different one, in every codec.

Goal: whatever client writes a batch (none, gzip, snappy, lz4, zstd), every other client reads
back the same keys, values, headers and CreateTime timestamps at dense offsets from 0.

Method: for each (codec, producer, consumer) pair in CASES, produce 200 records to a fresh
single-partition topic, check with a raw Fetch v4 that every stored batch carries that codec,
consume them with assign + seek from offset 0 (no consumer group), and compare whole records. Each client is a producer and an assign-style consumer several times.
kafkajs consumes only through a consumer group (it has no assign()), in the codecs it can
decompress without plugins (none and gzip).

Codec gaps that are the clients', not the broker's:
* kafka-python needs the `python-snappy` package for snappy (a test dependency).
* kafkajs 2.2.4 has only gzip built in (snappy/lz4/zstd need kafkajs-snappy, kafkajs-lz4 and
  @kafkajs/zstd), so it produces none and gzip only.
* kcat cannot set per-record timestamps, and its -H headers are the same on every record; for
  kcat-produced records the timestamp must fall inside the produce call's wall-clock window.
"""

from __future__ import annotations

import pytest

import raw_wire
from compat_clients import (
    ASSIGN_CONSUMERS,
    PRODUCERS,
    ConsumedRecord,
    OutRecord,
    consume_kafkajs,
    make_records,
    now_ms,
    require_client,
    watermarks_confluent,
)

RECORD_COUNT = 200

# (codec, producer, consumer): producer != consumer, every client on both sides.
CASES = [
    ("none", "confluent-kafka", "kafka-python"),
    ("none", "kafkajs", "aiokafka"),
    ("none", "kcat", "confluent-kafka"),
    ("gzip", "kafka-python", "kcat"),
    ("gzip", "kafkajs", "confluent-kafka"),
    ("gzip", "aiokafka", "kafka-python"),
    ("snappy", "confluent-kafka", "aiokafka"),
    ("snappy", "aiokafka", "kcat"),
    ("snappy", "kcat", "confluent-kafka"),
    ("snappy", "kafka-python", "kcat"),
    ("snappy", "aiokafka", "kafka-python"),
    ("lz4", "kcat", "aiokafka"),
    ("lz4", "kafka-python", "confluent-kafka"),
    ("lz4", "aiokafka", "kcat"),
    ("zstd", "aiokafka", "confluent-kafka"),
    ("zstd", "confluent-kafka", "kcat"),
    ("zstd", "kafka-python", "aiokafka"),
    ("zstd", "kcat", "kafka-python"),
]
KAFKAJS_CONSUMER_CASES = [
    ("none", "confluent-kafka", "kafkajs"),
    ("gzip", "kafka-python", "kafkajs"),
]


def records_for(producer: str, codec: str) -> list[OutRecord]:
    if producer == "kcat":
        return make_records(
            RECORD_COUNT, headers=[("source", b"kcat"), ("codec", codec.encode())], seed="k"
        )
    return make_records(RECORD_COUNT, base_timestamp_ms=now_ms() - 60_000, seed=producer[:2])


def assert_same_records(
    sent: list[OutRecord], received: list[ConsumedRecord], window_ms: tuple[int, int]
) -> None:
    assert [r.offset for r in received] == list(range(len(sent)))
    assert [r.payload() for r in received] == [(s.key, s.value, s.headers) for s in sent]
    assert {r.timestamp_type for r in received} == {"create"}
    for sent_record, received_record in zip(sent, received):
        if sent_record.timestamp_ms is not None:
            assert received_record.timestamp_ms == sent_record.timestamp_ms
        else:
            # Client-stamped CreateTime: taken during the produce call.
            assert window_ms[0] <= received_record.timestamp_ms <= window_ms[1]


def produce_and_check(
    broker, topic: str, codec: str, producer: str
) -> tuple[list[OutRecord], tuple[int, int]]:
    sent = records_for(producer, codec)
    started_ms = now_ms()
    result = PRODUCERS[producer](broker.bootstrap, topic, sent, compression=codec)
    finished_ms = now_ms()
    acked = [offset for offset in result.offsets if offset is not None]
    if acked:  # kcat reports no offsets
        assert result.offsets == list(range(len(sent))), f"{producer} acknowledged offsets"
    assert watermarks_confluent(broker.bootstrap, topic) == (0, len(sent))
    # The stored batches carry the producer's codec: a client that silently sends
    # uncompressed batches (old librdkafka does, if Produce v0 is not advertised) fails here.
    codecs = raw_wire.batch_codecs(raw_wire.fetch_v4_records(broker.bootstrap, topic, 0))
    assert codecs and set(codecs) == {raw_wire.CODEC_IDS[codec]}, f"{producer} batch codecs"
    return sent, (started_ms - 1, finished_ms + 1)


@pytest.mark.parametrize(
    ("codec", "producer", "consumer"), CASES, ids=[f"{c}-{p}-to-{q}" for c, p, q in CASES]
)
def test_records_round_trip_between_clients(broker, topic, codec, producer, consumer) -> None:
    require_client(producer)
    require_client(consumer)
    sent, window_ms = produce_and_check(broker, topic, codec, producer)
    received = ASSIGN_CONSUMERS[consumer](broker.bootstrap, topic, len(sent))
    assert_same_records(sent, received, window_ms)


@pytest.mark.parametrize(
    ("codec", "producer", "consumer"),
    KAFKAJS_CONSUMER_CASES,
    ids=[f"{c}-{p}-to-{q}" for c, p, q in KAFKAJS_CONSUMER_CASES],
)
def test_kafkajs_group_consumer_reads_other_clients_records(
    broker, topic, codec, producer, consumer
) -> None:
    require_client("kafkajs")
    sent, window_ms = produce_and_check(broker, topic, codec, producer)
    received = consume_kafkajs(broker.bootstrap, topic, len(sent))
    assert_same_records(sent, received, window_ms)


def test_consumer_can_start_mid_log(broker, topic) -> None:
    """Seeking to an offset inside a compressed batch returns records from exactly there."""
    sent, _ = produce_and_check(broker, topic, "lz4", "confluent-kafka")
    start = 137
    received = ASSIGN_CONSUMERS["kafka-python"](
        broker.bootstrap, topic, len(sent) - start, start_offset=start
    )
    assert [r.offset for r in received] == list(range(start, len(sent)))
    assert [r.value for r in received] == [s.value for s in sent[start:]]


@pytest.mark.parametrize("layer", ["broker", "topic"])
def test_compression_type_config_recompresses_what_producers_send(broker_factory, layer) -> None:
    """``compression.type`` set on the broker (inherited by every topic) or on one topic makes
    the broker store batches in that codec whatever the producer used, as Kafka does; the
    records read back unchanged."""
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"recompress-{layer}"
    if layer == "broker":
        instance = broker_factory(overrides={"compression.type": "zstd"})
        configs = {}
    else:
        instance = broker_factory()
        configs = {"compression.type": "zstd"}
    admin = AdminClient({"bootstrap.servers": instance.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config=configs)])[topic].result(30)
    sent = make_records(50, base_timestamp_ms=now_ms() - 1000, seed="rc")
    PRODUCERS["kafka-python"](instance.bootstrap, topic, sent, compression="gzip")
    codecs = raw_wire.batch_codecs(raw_wire.fetch_v4_records(instance.bootstrap, topic, 0))
    assert codecs and set(codecs) == {raw_wire.CODEC_IDS["zstd"]}
    received = ASSIGN_CONSUMERS["confluent-kafka"](instance.bootstrap, topic, len(sent))
    assert [r.payload() for r in received] == [(s.key, s.value, s.headers) for s in sent]
