"""Topic and broker configs: names, validation, layers with sources, and config changes.

Method: pure functions of ``metadata.topic_config`` and ``metadata.controller`` compared with
what Kafka reports for the same layers; config changes go through records applied to an image,
and a replica manager over a real data directory shows them reaching the partition logs
without a restart.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from streambus.broker.node import _broker_config_layers
from streambus.broker.replica_manager import ReplicaManager
from streambus.config import BrokerConfig, load_config
from streambus.log.config import LogConfig
from streambus.log.manager import LogManager
from streambus.metadata import controller
from streambus.metadata.controller import ControllerError, TopicSpec
from streambus.metadata.image import (
    CONFIG_RESOURCE_BROKER,
    CONFIG_RESOURCE_TOPIC,
    EMPTY_IMAGE,
    MetadataImage,
    apply_records,
)
from streambus.metadata.topic_config import (
    BROKER_DYNAMIC_CONFIGS,
    TOPIC_CONFIGS,
    BrokerConfigLayers,
    ConfigOperation,
    ConfigSource,
    ConfigType,
    InvalidConfigError,
    InvalidConfigRequestError,
    describe_broker_config,
    describe_topic_config,
    incremental_changes,
    replacement_changes,
    validate_topic_configs,
)
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.metadata_records import ConfigRecord, RegisterBrokerRecord

S = ConfigSource


def _image(*records: object, topics: dict[str, int] | None = None) -> MetadataImage:
    image = apply_records(EMPTY_IMAGE, [RegisterBrokerRecord(
        broker_id=1, broker_epoch=0, end_points=[], rack=None, fenced=False)], 0)
    for name, partitions in (topics or {}).items():
        created, _, _ = controller.create_topic(
            image, TopicSpec(name=name, num_partitions=partitions, replication_factor=1),
            usable_broker_ids=[1], default_num_partitions=1, default_replication_factor=1)
        image = apply_records(image, created, image.offset + 1)
    return apply_records(image, list(records), image.offset + 1) if records else image


def _commit(image: MetadataImage, records: list[object]) -> MetadataImage:
    return apply_records(image, records, image.offset + 1)


# ------------------------------------------------------------------------------ names


def test_every_dynamic_broker_config_is_a_broker_property_with_the_same_default() -> None:
    """A name AlterConfigs accepts at runtime is also accepted at startup, with the same
    default, so DescribeConfigs shows one value whichever layer it came from."""
    properties = BrokerConfig().model_dump(by_alias=True)
    for name, definition in BROKER_DYNAMIC_CONFIGS.items():
        assert name in properties, name
        value = properties[name]
        if value is None:  # log.flush.interval.ms unset means Long.MAX_VALUE
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        assert text == definition.default, name


def test_issue_configs_all_exist_with_kafka_types() -> None:
    expected = {
        "cleanup.policy": ConfigType.LIST, "retention.ms": ConfigType.LONG,
        "retention.bytes": ConfigType.LONG, "segment.bytes": ConfigType.INT,
        "segment.ms": ConfigType.LONG, "segment.index.bytes": ConfigType.INT,
        "max.message.bytes": ConfigType.INT, "message.timestamp.type": ConfigType.STRING,
        "message.timestamp.before.max.ms": ConfigType.LONG,
        "message.timestamp.after.max.ms": ConfigType.LONG,
        "compression.type": ConfigType.STRING, "min.insync.replicas": ConfigType.INT,
        "delete.retention.ms": ConfigType.LONG, "min.compaction.lag.ms": ConfigType.LONG,
        "max.compaction.lag.ms": ConfigType.LONG, "min.cleanable.dirty.ratio": ConfigType.DOUBLE,
        "file.delete.delay.ms": ConfigType.LONG,
    }
    assert {name: TOPIC_CONFIGS[name].config_type for name in expected} == expected


def test_broker_properties_are_top_level_yaml_keys_by_their_kafka_names(tmp_path: Path) -> None:
    path = tmp_path / "broker.yaml"
    path.write_text("log.retention.check.interval.ms: 1000\nlog.cleaner.backoff.ms: 500\n"
                    "num.partitions: 3\nauto.create.topics.enable: false\n"
                    "log.cleanup.policy: compact,delete\nlog.cleaner.min.cleanable.ratio: 0.1\n")
    config = load_config(str(path), environ={})
    assert (config.log_retention_check_interval_ms, config.log_cleaner_backoff_ms,
            config.num_partitions, config.auto_create_topics_enable) == (1000, 500, 3, False)
    assert (config.log_cleanup_policy, config.log_cleaner_min_cleanable_ratio) == (
        "compact,delete", 0.1)


@pytest.mark.parametrize("key,value", [
    ("log.cleanup.policy", "shred"), ("log.cleaner.min.cleanable.ratio", "1.5"),
    ("log.cleaner.threads", "4"), ("log.cleaner.io.buffer.load.factor", "0"),
])
def test_bad_broker_values_are_rejected_at_startup(key: str, value: str) -> None:
    with pytest.raises(Exception, match=key.replace(".", r"\.")):
        load_config(None, {key: value}, environ={})


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize("configs,fragment", [
    ({"retention.ms": "soon"}, "not a number"),
    ({"retention.ms": "-2"}, "at least -1"),
    ({"segment.bytes": "13"}, "at least 14"),
    ({"segment.bytes": "2147483648"}, "out of range"),
    ({"min.cleanable.dirty.ratio": "1.01"}, "no more than 1"),
    ({"cleanup.policy": "compact,shred"}, "must be a list"),
    ({"cleanup.policy": ""}, "must be a list"),
    ({"message.timestamp.type": "WallClock"}, "must be one of"),
    ({"preallocate": "maybe"}, "boolean"),
    ({"no.such.config": "1"}, "Unknown topic config"),
    ({"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"}, "max.compaction.lag.ms"),
], ids=lambda v: str(v)[:40])
def test_invalid_topic_configs_are_refused(configs: dict[str, str], fragment: str) -> None:
    with pytest.raises(InvalidConfigError, match=fragment):
        validate_topic_configs(configs)


# ------------------------------------------------------------------------------ layers


def _layers(**dynamic: dict[str, str]) -> BrokerConfigLayers:
    static = _broker_config_layers(BrokerConfig(**{"log.retention.ms": 7200000}))
    return static.with_dynamic(dynamic.get("default", {}), dynamic.get("node", {}))


def test_topic_config_sources_follow_kafkas_precedence() -> None:
    """Each layer wins over the ones below it, and every layer holding a value is a synonym,
    highest first, down to Kafka's default."""
    layers = _layers(default={"log.retention.ms": "3000"}, node={"log.retention.ms": "2000"})
    entry = describe_topic_config("retention.ms", {"retention.ms": "1000"}, layers)
    assert (entry.value, entry.source) == ("1000", S.DYNAMIC_TOPIC_CONFIG)
    assert entry.synonyms == (
        ("retention.ms", "1000", S.DYNAMIC_TOPIC_CONFIG),
        ("log.retention.ms", "2000", S.DYNAMIC_BROKER_CONFIG),
        ("log.retention.ms", "3000", S.DYNAMIC_DEFAULT_BROKER_CONFIG),
        ("log.retention.ms", "7200000", S.STATIC_BROKER_CONFIG),
        ("log.retention.ms", "604800000", S.DEFAULT_CONFIG),
    )
    assert describe_topic_config("retention.ms", {}, layers).source == S.DYNAMIC_BROKER_CONFIG
    assert describe_topic_config("retention.ms", {}, _layers(
        default={"log.retention.ms": "3000"})).source == S.DYNAMIC_DEFAULT_BROKER_CONFIG
    assert describe_topic_config("retention.ms", {}, _layers()).source == S.STATIC_BROKER_CONFIG
    default = describe_topic_config("segment.bytes", {}, _layers())
    assert (default.value, default.source, default.synonyms) == (
        "1073741824", S.DEFAULT_CONFIG, (("log.segment.bytes", "1073741824", S.DEFAULT_CONFIG),))


def test_config_source_values_are_kafkas_wire_values() -> None:
    """DescribeConfigsResponse.ConfigSource: clients decode these exact numbers."""
    assert [(s.name, int(s)) for s in ConfigSource][:7] == [
        ("UNKNOWN", 0), ("DYNAMIC_TOPIC_CONFIG", 1), ("DYNAMIC_BROKER_CONFIG", 2),
        ("DYNAMIC_DEFAULT_BROKER_CONFIG", 3), ("STATIC_BROKER_CONFIG", 4), ("DEFAULT_CONFIG", 5),
        ("DYNAMIC_BROKER_LOGGER_CONFIG", 6)]


def test_broker_configs_are_read_only_unless_dynamic() -> None:
    layers = _layers(node={"log.cleaner.backoff.ms": "500"})
    backoff = describe_broker_config("log.cleaner.backoff.ms", layers)
    assert (backoff.value, backoff.source, backoff.read_only) == (
        "500", S.DYNAMIC_BROKER_CONFIG, False)
    partitions = describe_broker_config("num.partitions", layers)
    assert (partitions.value, partitions.source, partitions.read_only) == (
        "1", S.DEFAULT_CONFIG, True)
    assert layers.effective()["log.cleaner.backoff.ms"] == "500"


# ------------------------------------------------------------------------------ changes


def test_incremental_operations() -> None:
    current = {"retention.ms": "1000", "cleanup.policy": "compact"}
    ops = [("retention.ms", ConfigOperation.DELETE, None),
           ("segment.bytes", ConfigOperation.SET, "1048576"),
           ("cleanup.policy", ConfigOperation.APPEND, "delete,compact")]
    assert incremental_changes(current, ops, TOPIC_CONFIGS) == {
        "retention.ms": None, "segment.bytes": "1048576", "cleanup.policy": "compact,delete"}
    # APPEND to an unset list starts from Kafka's default ("delete").
    assert incremental_changes({}, [("cleanup.policy", ConfigOperation.APPEND, "compact")],
                               TOPIC_CONFIGS) == {"cleanup.policy": "delete,compact"}
    assert incremental_changes({"cleanup.policy": "compact,delete"},
                               [("cleanup.policy", ConfigOperation.SUBTRACT, "delete")],
                               TOPIC_CONFIGS) == {"cleanup.policy": "compact"}
    # Deleting what is not set changes nothing.
    assert incremental_changes({}, [("retention.ms", ConfigOperation.DELETE, None)],
                               TOPIC_CONFIGS) == {}


@pytest.mark.parametrize("ops,error", [
    ([("retention.ms", ConfigOperation.APPEND, "5")], InvalidConfigError),
    ([("retention.ms", 1, None), ("retention.ms", 0, "5")], InvalidConfigRequestError),
    ([("retention.ms", 9, "5")], InvalidConfigRequestError),
    ([("retention.ms", ConfigOperation.SET, None)], InvalidConfigRequestError),
], ids=["append-to-long", "duplicate", "unknown-operation", "null-set"])
def test_bad_incremental_operations(ops: list, error: type) -> None:
    with pytest.raises(error):
        incremental_changes({}, ops, TOPIC_CONFIGS)


def test_alter_configs_replaces_the_whole_set() -> None:
    """Legacy AlterConfigs: configs the request does not name return to their defaults."""
    assert replacement_changes({"retention.ms": "1", "segment.ms": "2"},
                               [("retention.ms", "1"), ("segment.bytes", "3")]) == {
        "segment.ms": None, "segment.bytes": "3"}
    with pytest.raises(InvalidConfigRequestError):
        replacement_changes({}, [("retention.ms", None)])


def test_controller_turns_changes_into_config_records() -> None:
    image = _image(topics={"orders": 1})
    records = controller.alter_configs(
        image, CONFIG_RESOURCE_TOPIC, "orders",
        operations=[("retention.ms", ConfigOperation.SET, "1000")])
    assert records == [ConfigRecord(resource_type=CONFIG_RESOURCE_TOPIC, resource_name="orders",
                                    name="retention.ms", value="1000")]
    image = _commit(image, records)
    assert image.topic_configs("orders") == {"retention.ms": "1000"}
    records = controller.alter_configs(image, CONFIG_RESOURCE_TOPIC, "orders", replacement=[])
    assert [r.value for r in records] == [None]
    assert _commit(image, records).topic_configs("orders") == {}


@pytest.mark.parametrize("resource,ops,code", [
    ((CONFIG_RESOURCE_TOPIC, "missing"), [("retention.ms", 0, "1")],
     ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
    ((CONFIG_RESOURCE_TOPIC, "orders"), [("retention.ms", 0, "x")], ErrorCode.INVALID_CONFIG),
    ((CONFIG_RESOURCE_TOPIC, "orders"), [("bogus", 0, "1")], ErrorCode.INVALID_CONFIG),
    ((CONFIG_RESOURCE_BROKER, "1"), [("num.partitions", 0, "3")], ErrorCode.INVALID_CONFIG),
    ((CONFIG_RESOURCE_BROKER, "7"), [("log.retention.ms", 0, "3")], ErrorCode.INVALID_REQUEST),
    ((8, "1"), [("root", 0, "DEBUG")], ErrorCode.INVALID_REQUEST),
], ids=["unknown-topic", "bad-value", "unknown-name", "static-broker-config",
        "unknown-broker", "broker-logger"])
def test_controller_refuses_bad_changes(resource: tuple[int, str], ops: list,
                                        code: ErrorCode) -> None:
    image = _image(topics={"orders": 1})
    with pytest.raises(ControllerError) as raised:
        controller.alter_configs(image, *resource, operations=ops)
    assert raised.value.error_code == code


def test_broker_default_and_per_broker_configs_are_records_too() -> None:
    image = _image()
    for name in ("", "1"):
        records = controller.alter_configs(
            image, CONFIG_RESOURCE_BROKER, name,
            operations=[("log.retention.ms", ConfigOperation.SET, "5000")])
        image = _commit(image, records)
    assert image.broker_configs("") == {"log.retention.ms": "5000"}
    assert image.broker_configs("1") == {"log.retention.ms": "5000"}


# ------------------------------------------------------------------------------ partitions


def test_create_partitions_adds_round_robin_partitions() -> None:
    image = _image(topics={"orders": 2})
    records = controller.create_partitions(image, "orders", 5, None, usable_broker_ids=[1])
    image = _commit(image, records)
    assert sorted(image.topics_by_name["orders"].partitions) == [0, 1, 2, 3, 4]
    assert image.topics_by_name["orders"].partitions[4].replicas == (1,)


@pytest.mark.parametrize("name,count,assignments,code", [
    ("missing", 3, None, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
    ("orders", 2, None, ErrorCode.INVALID_PARTITIONS),
    ("orders", 1, None, ErrorCode.INVALID_PARTITIONS),
    ("orders", 4, [[1]], ErrorCode.INVALID_REPLICA_ASSIGNMENT),
    ("orders", 3, [[9]], ErrorCode.INVALID_REPLICA_ASSIGNMENT),
    ("orders", 3, [[1, 1]], ErrorCode.INVALID_REPLICA_ASSIGNMENT),
], ids=["unknown-topic", "same-count", "decrease", "too-few-assignments", "unknown-broker",
        "duplicate-replica"])
def test_create_partitions_errors(name: str, count: int, assignments: list | None,
                                  code: ErrorCode) -> None:
    image = _image(topics={"orders": 2})
    with pytest.raises(ControllerError) as raised:
        controller.create_partitions(image, name, count, assignments, usable_broker_ids=[1])
    assert raised.value.error_code == code


# ------------------------------------------------------------------------------ runtime


def test_config_changes_reach_partition_logs_without_a_restart(tmp_path: Path) -> None:
    """Topic configs and dynamic broker defaults (cluster-wide, then per broker) flow from the
    image into every hosted log's LogConfig, and new partitions get logs."""
    config = BrokerConfig(data_dir=tmp_path)
    log_manager = LogManager(tmp_path, LogConfig(), clock_ms=lambda: 0)
    log_manager.open()
    replicas = ReplicaManager(log_manager, 1, {}, lambda: 0,
                              broker_layers=_broker_config_layers(config))
    image = _image(topics={"orders": 1})
    replicas.apply_image(None, image)
    log = replicas.get("orders", 0).log
    assert log.config.retention_ms == 604800000

    def change(resource_type: int, name: str, key: str, value: str | None) -> None:
        nonlocal image
        old = image
        image = _commit(image, controller.alter_configs(
            image, resource_type, name,
            operations=[(key, ConfigOperation.SET if value else ConfigOperation.DELETE, value)]))
        replicas.apply_image(old, image)

    change(CONFIG_RESOURCE_BROKER, "", "log.retention.ms", "5000")
    assert log.config.retention_ms == 5000
    change(CONFIG_RESOURCE_BROKER, "1", "log.retention.ms", "4000")
    assert log.config.retention_ms == 4000
    change(CONFIG_RESOURCE_TOPIC, "orders", "retention.ms", "3000")
    assert log.config.retention_ms == 3000
    assert replicas.get("orders", 0).effective_configs["retention.ms"] == "3000"
    change(CONFIG_RESOURCE_TOPIC, "orders", "retention.ms", None)
    assert log.config.retention_ms == 4000
    change(CONFIG_RESOURCE_TOPIC, "orders", "cleanup.policy", "compact")
    assert log.config.cleanup_policy == frozenset({"compact"})
    old = image
    image = _commit(image, controller.create_partitions(image, "orders", 3, None,
                                                        usable_broker_ids=[1]))
    replicas.apply_image(old, image)
    assert replicas.get("orders", 2).log.config.cleanup_policy == frozenset({"compact"})
    log_manager.close()
