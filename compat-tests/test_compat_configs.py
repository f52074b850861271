"""Configs, partitions, log dirs and timestamps through real admin clients and the CLI.

Goal: config changes made with kafka-python's and confluent-kafka's admin clients and with
``streambus configs alter`` take effect without a restart and are reported by DescribeConfigs
with their source and synonyms; CreatePartitions and DescribeLogDirs work from both clients
and the CLI; ``message.timestamp.type=LogAppendTime`` and the before/after bounds behave as in
Kafka.

Method: one broker for the module; each test uses its own topics.  "Takes effect" is checked
by behaviour (a record now too large is refused, a produced record gets the broker's
timestamp), not only by reading the config back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest

from broker_process import REPO_ROOT
from compat_clients import consume_kafka_python, now_ms

DEADLINE_S = 15.0
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}


def cli(broker: Any, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streambus.cli.admin", "--bootstrap-server", broker.bootstrap,
         "--timeout-ms", "10000", *argv],
        capture_output=True, text=True, env=ENV, cwd=REPO_ROOT, timeout=60, check=False)


def cli_json(broker: Any, *argv: str) -> Any:
    result = cli(broker, "--output", "json", *argv)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return json.loads(result.stdout)


def _kafka_python_admin(broker: Any):
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=broker.bootstrap)


def _confluent_admin(broker: Any):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": broker.bootstrap})


def _create(broker: Any, topic: str, partitions: int = 1, **configs: str) -> None:
    from confluent_kafka.admin import NewTopic

    admin = _confluent_admin(broker)  # keep the handle alive until the future completes
    futures = admin.create_topics([NewTopic(topic, partitions, 1, config=configs)])
    futures[topic].result(timeout=DEADLINE_S)


def _topic_configs(broker: Any, topic: str) -> dict[str, Any]:
    from confluent_kafka.admin import ConfigResource, ResourceType

    resource = ConfigResource(ResourceType.TOPIC, topic)
    admin = _confluent_admin(broker)
    return admin.describe_configs([resource], request_timeout=DEADLINE_S)[resource].result(
        timeout=DEADLINE_S)


def _send_kafka_python(broker: Any, topic: str, value: bytes, **kwargs: Any):
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=False,
                             acks=1, retries=0, max_request_size=10_000_000)
    try:
        return producer.send(topic, value=value, partition=0, **kwargs).get(timeout=DEADLINE_S)
    finally:
        producer.close(timeout=5)


def test_kafka_python_config_change_takes_effect_without_restart(broker, topic: str) -> None:
    """max.message.bytes lowered with kafka-python's IncrementalAlterConfigs: the next large
    record is refused; DescribeConfigs reports the topic as the source with the broker's
    synonyms; reset_configs returns it to the default."""
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.errors import MessageSizeTooLargeError

    _create(broker, topic)
    assert _send_kafka_python(broker, topic, b"x" * 5000).offset == 0
    admin = _kafka_python_admin(broker)
    resource = ConfigResource(ConfigResourceType.TOPIC, topic)
    try:
        assert admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={
            "max.message.bytes": "2000"})]) == {"topic": {topic: "OK"}}
        with pytest.raises(MessageSizeTooLargeError):
            _send_kafka_python(broker, topic, b"x" * 5000)
        described = admin.describe_configs([resource], include_synonyms=True)["topic"][topic]
        entry = described["max.message.bytes"]
        assert (entry["value"], entry["config_source"]) == ("2000", "DYNAMIC_TOPIC_CONFIG")
        assert [(s["name"], s["value"], s["source"]) for s in entry["synonyms"]] == [
            ("max.message.bytes", "2000", "DYNAMIC_TOPIC_CONFIG"),
            ("message.max.bytes", "1048588", "DEFAULT_CONFIG")]
        # 'modified' (the default filter) hides the defaults.
        assert set(described) == {"max.message.bytes"}
        admin.reset_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                            configs=["max.message.bytes"])])
        everything = admin.describe_configs([resource], config_filter="all")["topic"][topic]
        assert everything["max.message.bytes"]["config_source"] == "DEFAULT_CONFIG"
    finally:
        admin.close()
    assert _send_kafka_python(broker, topic, b"x" * 5000).offset == 1


def test_confluent_incremental_operations(broker, topic: str) -> None:
    """APPEND and SUBTRACT edit the cleanup.policy list; DELETE returns a config to its
    default; validate_only changes nothing."""
    from confluent_kafka.admin import (
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        ConfigSource,
        ResourceType,
    )

    _create(broker, topic, **{"retention.ms": "7200000"})
    admin = _confluent_admin(broker)

    def alter(*entries: tuple[str, Any, str | None], validate_only: bool = False) -> None:
        resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
            ConfigEntry(name, value, incremental_operation=op) for name, op, value in entries])
        admin.incremental_alter_configs([resource], validate_only=validate_only)[
            resource].result(timeout=DEADLINE_S)

    alter(("cleanup.policy", AlterConfigOpType.APPEND, "compact"))
    assert _topic_configs(broker, topic)["cleanup.policy"].value == "delete,compact"
    alter(("cleanup.policy", AlterConfigOpType.SUBTRACT, "delete"),
          ("retention.ms", AlterConfigOpType.DELETE, None))
    configs = _topic_configs(broker, topic)
    assert configs["cleanup.policy"].value == "compact"
    assert configs["cleanup.policy"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert (configs["retention.ms"].value, configs["retention.ms"].source) == (
        "604800000", ConfigSource.DEFAULT_CONFIG.value)
    alter(("segment.bytes", AlterConfigOpType.SET, "1048576"), validate_only=True)
    assert _topic_configs(broker, topic)["segment.bytes"].value == "1073741824"


def test_confluent_errors_come_back_per_resource(broker, topic: str) -> None:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import (
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        ResourceType,
    )

    _create(broker, topic)
    admin = _confluent_admin(broker)
    cases = [
        (ResourceType.TOPIC, topic, "retention.ms", "soon", "INVALID_CONFIG"),
        (ResourceType.TOPIC, topic, "retention.ms", "-5", "INVALID_CONFIG"),
        (ResourceType.TOPIC, f"missing-{uuid.uuid4().hex[:6]}", "retention.ms", "1",
         "UNKNOWN_TOPIC_OR_PART"),
        (ResourceType.BROKER, "1", "num.partitions", "3", "INVALID_CONFIG"),
    ]
    for resource_type, name, key, value, error in cases:
        resource = ConfigResource(resource_type, name, incremental_configs=[
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)])
        with pytest.raises(KafkaException) as raised:
            admin.incremental_alter_configs([resource])[resource].result(timeout=DEADLINE_S)
        assert raised.value.args[0].name() == error, (key, value)


def test_legacy_alter_configs_replaces_the_whole_set(broker, topic: str) -> None:
    """AlterConfigs (confluent-kafka's alter_configs) resets every config it does not name."""
    from confluent_kafka.admin import ConfigResource, ResourceType

    _create(broker, topic, **{"retention.ms": "7200000"})
    resource = ConfigResource(ResourceType.TOPIC, topic, set_config={"segment.ms": "3600000"})
    admin = _confluent_admin(broker)
    admin.alter_configs([resource])[resource].result(timeout=DEADLINE_S)
    configs = _topic_configs(broker, topic)
    assert configs["segment.ms"].value == "3600000"
    assert configs["retention.ms"].value == "604800000"


def test_dynamic_broker_configs_apply_to_topics_without_their_own(broker, topic: str) -> None:
    """A per-broker config (kafka-python) wins over the cluster-wide default (the CLI's
    --broker-defaults), which wins over the static one; topics without their own value
    follow at once: LogAppendTime set broker-wide stamps the next produced record."""
    from kafka.admin import ConfigResource, ConfigResourceType

    _create(broker, topic)
    old_timestamp = now_ms() - 3_600_000
    before = _send_kafka_python(broker, topic, b"a", timestamp_ms=old_timestamp)
    assert before.timestamp == old_timestamp  # CreateTime: the producer's own
    assert cli(broker, "configs", "alter", "--broker-defaults", "--add-config",
               "log.message.timestamp.type=LogAppendTime").returncode == 0
    try:
        described = cli_json(broker, "configs", "describe", "--topic", topic, "--all")
        entry = {e["name"]: e for e in described["configs"]}["message.timestamp.type"]
        assert (entry["value"], entry["source"]) == ("LogAppendTime",
                                                     "DYNAMIC_DEFAULT_BROKER_CONFIG")
        stamped = _send_kafka_python(broker, topic, b"b", timestamp_ms=old_timestamp)
        assert stamped.timestamp >= now_ms() - 60_000
        [_, record] = consume_kafka_python(broker.bootstrap, topic, 2)
        assert (record.timestamp_type, record.timestamp_ms) == ("append", stamped.timestamp)
        admin = _kafka_python_admin(broker)
        try:
            admin.alter_configs([ConfigResource(ConfigResourceType.BROKER, "1", configs={
                "log.message.timestamp.type": "CreateTime"})])
            broker_view = admin.describe_configs(
                [ConfigResource(ConfigResourceType.BROKER, "1")], include_synonyms=True)
            entry = broker_view["broker"]["1"]["log.message.timestamp.type"]
            assert (entry["value"], entry["config_source"], entry["read_only"]) == (
                "CreateTime", "DYNAMIC_BROKER_CONFIG", False)
            assert [s["source"] for s in entry["synonyms"]] == [
                "DYNAMIC_BROKER_CONFIG", "DYNAMIC_DEFAULT_BROKER_CONFIG", "DEFAULT_CONFIG"]
            assert _send_kafka_python(broker, topic, b"c", timestamp_ms=old_timestamp
                                      ).timestamp == old_timestamp
            admin.reset_configs([ConfigResource(ConfigResourceType.BROKER, "1",
                                                configs=["log.message.timestamp.type"])])
        finally:
            admin.close()
    finally:
        assert cli(broker, "configs", "alter", "--broker-defaults", "--delete-config",
                   "log.message.timestamp.type").returncode == 0
    assert cli_json(broker, "configs", "describe", "--broker-defaults")["configs"] == []


def test_log_append_time_topic_and_timestamp_bounds(broker, topic: str) -> None:
    """LogAppendTime replaces the producer's timestamps; records outside
    message.timestamp.before/after.max.ms are refused with INVALID_TIMESTAMP."""
    from confluent_kafka import Producer
    from kafka.errors import InvalidTimestampError

    append_topic = f"{topic}-append"
    # The bounds apply to CreateTime only: the broker replaces these timestamps anyway.
    _create(broker, append_topic, **{"message.timestamp.type": "LogAppendTime",
                                     "message.timestamp.before.max.ms": "3600000"})
    metadata = _send_kafka_python(broker, append_topic, b"x", timestamp_ms=1_000)
    assert metadata.timestamp >= now_ms() - 60_000
    [record] = consume_kafka_python(broker.bootstrap, append_topic, 1)
    assert (record.timestamp_type, record.timestamp_ms) == ("append", metadata.timestamp)

    _create(broker, topic, **{"message.timestamp.before.max.ms": "3600000",
                              "message.timestamp.after.max.ms": "3600000"})
    with pytest.raises(InvalidTimestampError):
        _send_kafka_python(broker, topic, b"old", timestamp_ms=now_ms() - 2 * 3_600_000)
    errors = []
    producer = Producer({"bootstrap.servers": broker.bootstrap, "retries": 0})
    producer.produce(topic, b"future", partition=0, timestamp=now_ms() + 2 * 3_600_000,
                     on_delivery=lambda error, _: errors.append(error))
    producer.flush(DEADLINE_S)
    assert [e.name() for e in errors] == ["INVALID_TIMESTAMP"]
    assert _send_kafka_python(broker, topic, b"now", timestamp_ms=now_ms()).offset == 0


def test_create_partitions_from_both_clients_and_the_cli(broker, topic: str) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import NewPartitions

    _create(broker, topic, partitions=1)
    admin = _kafka_python_admin(broker)
    try:
        admin.create_partitions({topic: 2})
    finally:
        admin.close()
    confluent = _confluent_admin(broker)
    futures = confluent.create_partitions([NewPartitions(topic, 3)])
    futures[topic].result(timeout=DEADLINE_S)
    assert cli_json(broker, "topics", "alter", topic, "--partitions", "4") == {
        "name": topic, "partition_count": 4, "validate_only": False}
    refused = cli(broker, "topics", "alter", topic, "--partitions", "4")
    assert refused.returncode == 1 and "INVALID_PARTITIONS" in refused.stderr
    [described] = cli_json(broker, "topics", "describe", topic)["topics"]
    assert described["partition_count"] == 4
    reports = []
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    producer.produce(topic, b"to the new partition", partition=3,
                     on_delivery=lambda error, message: reports.append((error, message.offset())))
    producer.flush(DEADLINE_S)
    assert reports == [(None, 0)]


def test_describe_log_dirs_reports_partition_sizes(broker, topic: str) -> None:
    _create(broker, topic, partitions=2)
    for _ in range(3):
        _send_kafka_python(broker, topic, b"y" * 1000)
    on_disk = sum(p.stat().st_size for p in (broker.data_dir / f"{topic}-0").glob("*.log"))
    assert on_disk > 3000
    admin = _kafka_python_admin(broker)
    try:
        [broker_dirs] = admin.describe_log_dirs({topic: [0, 1]})
    finally:
        admin.close()
    [log_dir] = broker_dirs["log_dirs"]
    [described] = [t for t in log_dir["topics"] if t["name"] == topic]
    sizes = {p["partition_index"]: p["partition_size"] for p in described["partitions"]}
    assert sizes == {0: on_disk, 1: 0}
    document = cli_json(broker, "log-dirs", "describe", "--topic", topic)
    [cli_dir] = document["log_dirs"]
    assert cli_dir["log_dir"] == log_dir["log_dir"]
    assert [(p["partition"], p["size_bytes"]) for p in cli_dir["partitions"]] == [
        (0, on_disk), (1, 0)]


def test_cli_configs_round_trip(broker, topic: str) -> None:
    """streambus configs alter/describe agree with kafka-python's view."""
    from kafka.admin import ConfigResource, ConfigResourceType

    _create(broker, topic)
    result = cli(broker, "configs", "alter", "--topic", topic, "--add-config",
                 "cleanup.policy=[compact,delete],retention.ms=3600000")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"Completed updating config for topic {topic}."
    table = cli(broker, "configs", "describe", "--topic", topic).stdout.splitlines()
    assert table[0].split() == ["CONFIG", "VALUE", "SOURCE", "READ_ONLY"]
    assert [line.split() for line in table[1:]] == [
        ["cleanup.policy", "compact,delete", "DYNAMIC_TOPIC_CONFIG", "no"],
        ["retention.ms", "3600000", "DYNAMIC_TOPIC_CONFIG", "no"]]
    assert cli(broker, "configs", "alter", "--topic", topic, "--subtract-config",
               "cleanup.policy=delete", "--delete-config", "retention.ms").returncode == 0
    admin = _kafka_python_admin(broker)
    try:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        admin.close()
    assert {k: v["value"] for k, v in described["topic"][topic].items()} == {
        "cleanup.policy": "compact"}
    bad = cli(broker, "configs", "alter", "--topic", topic, "--add-config", "segment.bytes=1")
    assert bad.returncode == 1 and "INVALID_CONFIG" in bad.stderr
