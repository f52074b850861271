"""kill -9 in the middle of an acks=all produce stream loses no acknowledged record.

Goal: every record the broker acknowledged with acks=all is, after a SIGKILL and a restart on
the same data dir, present at exactly the offset it was acknowledged with; the recovered log
has dense offsets and accepts new writes at its end.

Method: a confluent-kafka producer (acks=all, idempotence off so acknowledged offsets come
straight from the broker) streams distinct values while delivery callbacks record
(offset, value). Once ACKED_BEFORE_KILL records are acknowledged the broker gets SIGKILL with
batches still in flight; the producer keeps sending for a moment, then gives up on what was
never acknowledged (message.timeout.ms). We restart, read the whole partition and check every
acknowledged pair.
"""

from __future__ import annotations

import time

from compat_clients import consume_confluent, make_records, produce_confluent, watermarks_confluent

ACKED_BEFORE_KILL = 3_000
SENT_AFTER_KILL = 1_000
MESSAGE_TIMEOUT_MS = 3_000


def stream_until_killed(broker, topic: str) -> tuple[list[tuple[int, bytes]], int]:
    """Produce until the kill has happened mid-stream; return (acknowledged pairs, sent count)."""
    from confluent_kafka import Producer

    producer = Producer({
        "bootstrap.servers": broker.bootstrap,
        "acks": "all",
        "enable.idempotence": False,
        "linger.ms": 2,
        "batch.num.messages": 200,
        "message.timeout.ms": MESSAGE_TIMEOUT_MS,
        "queue.buffering.max.messages": 20_000,
        "client.id": "compat-crash-producer",
    })
    acknowledged: list[tuple[int, bytes]] = []

    def on_delivery(error, message) -> None:
        if error is None:
            acknowledged.append((message.offset(), message.value()))

    sent = 0
    sent_at_kill = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            producer.produce(topic, value=f"crash-{sent:08d}".encode(), partition=0,
                             on_delivery=on_delivery)
            sent += 1
        except BufferError:
            producer.poll(0.01)
        producer.poll(0)
        if sent_at_kill is None and len(acknowledged) >= ACKED_BEFORE_KILL:
            broker.kill9()
            sent_at_kill = sent
        if sent_at_kill is not None and sent >= sent_at_kill + SENT_AFTER_KILL:
            break
    assert sent_at_kill is not None, f"only {len(acknowledged)} acks in 60 s; never killed"
    # Everything unacknowledged now fails after message.timeout.ms; nothing more is acked.
    assert producer.flush(MESSAGE_TIMEOUT_MS / 1000 + 10) == 0
    assert sent_at_kill < sent, "the kill must happen with records still being produced"
    return acknowledged, sent


def test_acknowledged_records_survive_kill_9(fresh_broker, topic) -> None:
    broker = fresh_broker
    produce_confluent(broker.bootstrap, topic, make_records(1))  # offset 0: topic exists
    acknowledged, sent = stream_until_killed(broker, topic)
    assert len(acknowledged) < sent, "some records should have been in flight at the kill"

    broker.restart()

    offsets = [offset for offset, _ in acknowledged]
    assert len(set(offsets)) == len(offsets), "an offset was acknowledged twice"
    log_start, log_end = watermarks_confluent(broker.bootstrap, topic)
    assert log_start == 0
    assert log_end >= max(offsets) + 1, f"log end {log_end} is below acknowledged offsets"
    log = consume_confluent(broker.bootstrap, topic, log_end, timeout_s=60)
    assert [r.offset for r in log] == list(range(log_end))
    by_offset = {r.offset: r.value for r in log}
    lost = [(o, v) for o, v in acknowledged if by_offset.get(o) != v]
    assert not lost, f"{len(lost)} acknowledged records missing or changed, first: {lost[:3]}"

    result = produce_confluent(broker.bootstrap, topic, make_records(5, seed="after"))
    assert result.offsets == list(range(log_end, log_end + 5))
