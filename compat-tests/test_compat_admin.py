"""Metadata and topic admin through three admin clients: create, list, describe, delete, errors.

Goal: kafka-python KafkaAdminClient, confluent-kafka AdminClient and kafkajs admin can each
create a topic with a partition count and configs, see it listed and described with those
values, delete it, and get TOPIC_ALREADY_EXISTS (36) and INVALID_PARTITIONS (37) as errors.
Metadata must advertise exactly the broker we started, and auto-creation must use
num.partitions=1.

Method: each test works on its own unique topic names on the module's broker and polls with a
deadline where deletion is asynchronous in Kafka's model.
"""

from __future__ import annotations

import json
import time

import pytest

from compat_clients import (
    kafkajs_admin,
    make_records,
    produce_confluent,
    produce_kafka_python,
    require_client,
    unique_topic,
    watermarks_confluent,
)

DEADLINE_S = 15.0


def wait_until(predicate, what: str, timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


# -- kafka-python ---------------------------------------------------------------------------


@pytest.fixture
def kafka_python_admin(broker):
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="compat-kp-admin")
    yield admin
    admin.close()


def test_kafka_python_admin_topic_lifecycle(kafka_python_admin, topic) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

    admin = kafka_python_admin
    admin.create_topics([NewTopic(topic, 3, 1, topic_configs={"retention.ms": "3600000"})])
    assert topic in admin.list_topics()
    [description] = admin.describe_topics([topic])
    assert description["error_code"] == 0
    assert sorted(p["partition_index"] if "partition_index" in p else p["partition"]
                  for p in description["partitions"]) == [0, 1, 2]
    configs = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all"
    )["topic"][topic]
    assert configs["retention.ms"]["value"] == "3600000"
    admin.delete_topics([topic])
    wait_until(lambda: topic not in admin.list_topics(), f"{topic} to disappear")


def test_kafka_python_admin_reports_topic_already_exists(kafka_python_admin, topic) -> None:
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    kafka_python_admin.create_topics([NewTopic(topic, 1, 1)])
    with pytest.raises(TopicAlreadyExistsError):
        kafka_python_admin.create_topics([NewTopic(topic, 1, 1)])


def test_kafka_python_admin_reports_invalid_partitions(kafka_python_admin, topic) -> None:
    from kafka.admin import NewTopic
    from kafka.errors import InvalidPartitionsError

    with pytest.raises(InvalidPartitionsError):
        kafka_python_admin.create_topics([NewTopic(topic, 0, 1)])
    assert topic not in kafka_python_admin.list_topics()


# -- confluent-kafka ------------------------------------------------------------------------


@pytest.fixture
def confluent_admin(broker):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": broker.bootstrap, "client.id": "compat-ck-admin"})


def confluent_error_code(future) -> int:
    from confluent_kafka import KafkaException

    with pytest.raises(KafkaException) as caught:
        future.result(timeout=DEADLINE_S)
    return caught.value.args[0].code()


def test_confluent_admin_topic_lifecycle(confluent_admin, topic) -> None:
    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import ConfigResource, NewTopic, ResourceType

    admin = confluent_admin
    created = admin.create_topics(
        [NewTopic(topic, num_partitions=2, replication_factor=1,
                  config={"retention.ms": "7200000", "cleanup.policy": "delete"})]
    )
    created[topic].result(timeout=DEADLINE_S)
    listed = admin.list_topics(timeout=DEADLINE_S).topics
    assert topic in listed and sorted(listed[topic].partitions) == [0, 1]
    [described] = admin.describe_topics(TopicCollection([topic])).values()
    assert sorted(p.id for p in described.result(timeout=DEADLINE_S).partitions) == [0, 1]
    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=DEADLINE_S)
    assert configs["retention.ms"].value == "7200000"
    assert configs["cleanup.policy"].value == "delete"
    admin.delete_topics([topic])[topic].result(timeout=DEADLINE_S)
    wait_until(lambda: topic not in admin.list_topics(timeout=DEADLINE_S).topics,
               f"{topic} to disappear")


def test_confluent_admin_reports_create_errors(confluent_admin, topic) -> None:
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import NewTopic

    confluent_admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=DEADLINE_S)
    again = confluent_admin.create_topics([NewTopic(topic, 1, 1)])[topic]
    assert confluent_error_code(again) == KafkaError.TOPIC_ALREADY_EXISTS
    invalid_topic = unique_topic("invalid-partitions")
    invalid = confluent_admin.create_topics([NewTopic(invalid_topic, 0, 1)])[invalid_topic]
    assert confluent_error_code(invalid) == KafkaError.INVALID_PARTITIONS


def test_deleted_topic_recreated_with_same_name_starts_empty(confluent_admin, broker, topic) -> None:
    from confluent_kafka.admin import NewTopic

    confluent_admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=DEADLINE_S)
    produce_confluent(broker.bootstrap, topic, make_records(5))
    confluent_admin.delete_topics([topic])[topic].result(timeout=DEADLINE_S)
    wait_until(lambda: topic not in confluent_admin.list_topics(timeout=DEADLINE_S).topics,
               f"{topic} to disappear")
    confluent_admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=DEADLINE_S)
    assert watermarks_confluent(broker.bootstrap, topic) == (0, 0)


def test_metadata_advertises_the_broker_we_started(confluent_admin, broker) -> None:
    brokers = confluent_admin.list_topics(timeout=DEADLINE_S).brokers
    assert [(b.host, b.port) for b in brokers.values()] == [("127.0.0.1", broker.port)]


def test_auto_created_topic_has_one_partition(confluent_admin, broker, topic) -> None:
    result = produce_kafka_python(broker.bootstrap, topic, make_records(3))
    assert result.offsets == [0, 1, 2]
    listed = confluent_admin.list_topics(topic, timeout=DEADLINE_S).topics
    assert list(listed[topic].partitions) == [0]


# -- kafkajs --------------------------------------------------------------------------------


def test_kafkajs_admin_topic_lifecycle_and_errors(broker, topic, require_kafkajs) -> None:
    invalid_topic = unique_topic("kjs-invalid")
    spec = {"topic": topic, "numPartitions": 4,
            "configEntries": [{"name": "retention.ms", "value": "5400000"}]}
    results = kafkajs_admin(broker.bootstrap, [
        {"op": "createTopics", "args": {"topics": [spec]}},
        {"op": "createTopics", "args": {"topics": [spec]}},
        {"op": "createTopics", "args": {"topics": [{"topic": invalid_topic, "numPartitions": 0}]}},
        {"op": "listTopics"},
        {"op": "fetchTopicMetadata", "args": {"topics": [topic]}},
        {"op": "describeTopicConfigs", "args": {"topic": topic}},
        {"op": "deleteTopics", "args": {"topics": [topic]}},
    ])
    created, created_again, invalid, listed, metadata, configs, deleted = results
    for name, result in [("listTopics", listed), ("fetchTopicMetadata", metadata),
                         ("describeConfigs", configs), ("deleteTopics", deleted)]:
        assert "ok" in result, f"kafkajs admin.{name} failed: {result}"
    assert created == {"ok": True}
    # kafkajs turns TOPIC_ALREADY_EXISTS into a `false` result rather than an exception.
    assert created_again == {"ok": False}
    assert "error" in invalid and "INVALID_PARTITIONS" in json.dumps(invalid["error"])
    assert topic in listed["ok"] and invalid_topic not in listed["ok"]
    [topic_metadata] = metadata["ok"]["topics"]
    assert sorted(p["partitionId"] for p in topic_metadata["partitions"]) == [0, 1, 2, 3]
    [resource] = configs["ok"]["resources"]
    entries = {e["configName"]: e["configValue"] for e in resource["configEntries"]}
    assert entries["retention.ms"] == "5400000"
    wait_until(
        lambda: topic not in kafkajs_admin(broker.bootstrap, [{"op": "listTopics"}])[0]["ok"],
        f"{topic} to disappear from kafkajs listTopics",
    )
