"""The KIP-848 consumer group protocol with librdkafka (``group.protocol=consumer``).

Goal: two confluent-kafka members opting into the new protocol get disjoint server-side
assignments (ConsumerGroupHeartbeat v1, uniform assignor) covering every partition, read each
record once, commit with OffsetCommit v9, and the group shows up as a ``consumer`` group in
ListGroups, ConsumerGroupDescribe (the CLI) and kafka-python's admin view.

Method: members join while the topic is empty and the test waits until the two assignments
cover every partition before producing, so the check is exact; waits poll with deadlines.
"""

from __future__ import annotations

import time
import uuid

from test_compat_groups import (
    PARTITIONS,
    Received,
    assert_each_record_once,
    create_topic,
    produce,
    total,
    wait_until,
)
from test_compat_groups_admin import cli


def test_librdkafka_consumer_protocol_group(broker, topic) -> None:
    from confluent_kafka import Consumer
    from kafka.admin import KafkaAdminClient

    create_topic(broker.bootstrap, topic)
    group = f"g848-{uuid.uuid4().hex[:8]}"
    consumers = [Consumer({
        "bootstrap.servers": broker.bootstrap, "group.id": group, "group.protocol": "consumer",
        "client.id": f"rdk848-{i}", "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100,
    }) for i in range(2)]
    received: Received = {i: [] for i in range(2)}

    def poll_all() -> None:
        for index, consumer in enumerate(consumers):
            message = consumer.poll(0.02)
            if message is not None:
                assert message.error() is None, message.error()
                received[index].append((message.partition(), message.offset(), message.value()))

    def assignments() -> list[set[int]]:
        return [{tp.partition for tp in c.assignment()} for c in consumers]

    try:
        for consumer in consumers:
            consumer.subscribe([topic])
        started = time.monotonic()

        def balanced() -> bool:
            poll_all()
            owned = assignments()
            return all(owned) and not (owned[0] & owned[1]) and (
                owned[0] | owned[1]) == set(range(PARTITIONS))

        wait_until(balanced, "two KIP-848 members sharing every partition", deadline_s=40)
        print(f"\nlibrdkafka group.protocol=consumer: two members balanced after "
              f"{time.monotonic() - started:.2f}s")
        expected = produce(broker.bootstrap, topic, count=120)
        deadline = time.monotonic() + 30
        while total(received) < len(expected) and time.monotonic() < deadline:
            poll_all()
        for consumer in consumers:
            consumer.commit(asynchronous=False)

        code, document, stderr = cli(broker.bootstrap, "groups", "describe", group)
        assert code == 0, stderr
        [view] = document["groups"]
        assert (view["type"], view["state"], view["protocol"]) == ("consumer", "Stable", "uniform")
        assert sorted(p for m in view["members"] for a in m["assignment"] for p in a["partitions"]) \
            == list(range(PARTITIONS))
        assert [(o["partition"], o["committed_offset"], o["lag"]) for o in view["offsets"]] == [
            (p, 20, 0) for p in range(PARTITIONS)]
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        listed = {g["group_id"]: g for g in admin.list_groups()}
        admin.close()
        assert (listed[group]["group_type"], listed[group]["group_state"]) == ("consumer", "Stable")
    finally:
        for consumer in consumers:
            consumer.close()
    assert_each_record_once(received, expected, 2)
