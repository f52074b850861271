"""Topic-level configs: Kafka's names, types, defaults, broker synonyms and validation.

This module owns the table of topic configs StreamBus understands.  A topic config that is not
set explicitly takes its value from the broker property named as its synonym (e.g.
``retention.ms`` from ``log.retention.ms``), exactly as Kafka's ``LogConfig`` does, so
DescribeConfigs can report the source and synonyms (KIP-226) and CreateTopics can validate.
Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Callable, Mapping

__all__ = [
    "ConfigType",
    "ConfigSource",
    "TopicConfigDef",
    "TOPIC_CONFIGS",
    "InvalidConfigError",
    "validate_topic_configs",
    "resolve_topic_config",
]

LONG_MAX = 9223372036854775807
INT_MAX = 2147483647


class ConfigType(IntEnum):
    """DescribeConfigs ``config_type`` (KIP-569)."""

    UNKNOWN = 0
    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


class ConfigSource(IntEnum):
    """DescribeConfigs ``config_source`` (KIP-226)."""

    UNKNOWN = 0
    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_LOGGER_CONFIG = 2
    DYNAMIC_BROKER_CONFIG = 3
    DYNAMIC_DEFAULT_BROKER_CONFIG = 4
    STATIC_BROKER_CONFIG = 5
    DEFAULT_CONFIG = 6
    DYNAMIC_CLIENT_METRICS_CONFIG = 7


class InvalidConfigError(ValueError):
    """A config name is unknown or its value is invalid (INVALID_CONFIG)."""


@dataclass(frozen=True, slots=True)
class TopicConfigDef:
    name: str
    config_type: ConfigType
    default: str
    broker_synonym: str | None
    minimum: float | None = None
    maximum: float | None = None
    choices: frozenset[str] | None = None


_COMPRESSION = frozenset({"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"})


def _d(name, config_type, default, synonym, minimum=None, maximum=None, choices=None):
    return TopicConfigDef(name, config_type, default, synonym, minimum, maximum, choices)


TOPIC_CONFIGS: Mapping[str, TopicConfigDef] = {
    d.name: d
    for d in (
        _d("cleanup.policy", ConfigType.LIST, "delete", "log.cleanup.policy",
           choices=frozenset({"delete", "compact"})),
        _d("compression.type", ConfigType.STRING, "producer", "compression.type",
           choices=_COMPRESSION),
        _d("delete.retention.ms", ConfigType.LONG, "86400000",
           "log.cleaner.delete.retention.ms", 0),
        _d("file.delete.delay.ms", ConfigType.LONG, "60000", "log.segment.delete.delay.ms", 0),
        _d("flush.messages", ConfigType.LONG, str(LONG_MAX), "log.flush.interval.messages", 1),
        _d("flush.ms", ConfigType.LONG, str(LONG_MAX), "log.flush.interval.ms", 0),
        _d("index.interval.bytes", ConfigType.INT, "4096", "log.index.interval.bytes", 0),
        _d("max.compaction.lag.ms", ConfigType.LONG, str(LONG_MAX),
           "log.cleaner.max.compaction.lag.ms", 1),
        _d("max.message.bytes", ConfigType.INT, "1048588", "message.max.bytes", 0),
        _d("message.timestamp.type", ConfigType.STRING, "CreateTime",
           "log.message.timestamp.type", choices=frozenset({"CreateTime", "LogAppendTime"})),
        _d("message.timestamp.before.max.ms", ConfigType.LONG, str(LONG_MAX),
           "log.message.timestamp.before.max.ms", 0),
        _d("message.timestamp.after.max.ms", ConfigType.LONG, str(LONG_MAX),
           "log.message.timestamp.after.max.ms", 0),
        _d("min.cleanable.dirty.ratio", ConfigType.DOUBLE, "0.5",
           "log.cleaner.min.cleanable.ratio", 0, 1),
        _d("min.compaction.lag.ms", ConfigType.LONG, "0", "log.cleaner.min.compaction.lag.ms", 0),
        _d("min.insync.replicas", ConfigType.INT, "1", "min.insync.replicas", 1),
        _d("preallocate", ConfigType.BOOLEAN, "false", "log.preallocate"),
        _d("retention.bytes", ConfigType.LONG, "-1", "log.retention.bytes"),
        _d("retention.ms", ConfigType.LONG, "604800000", "log.retention.ms", -1),
        _d("segment.bytes", ConfigType.INT, "1073741824", "log.segment.bytes", 14),
        _d("segment.index.bytes", ConfigType.INT, "10485760", "log.index.size.max.bytes", 4),
        _d("segment.jitter.ms", ConfigType.LONG, "0", "log.roll.jitter.ms", 0),
        _d("segment.ms", ConfigType.LONG, "604800000", "log.roll.ms", 1),
        _d("unclean.leader.election.enable", ConfigType.BOOLEAN, "false",
           "unclean.leader.election.enable"),
    )
}

_PARSERS: dict[ConfigType, Callable[[str], object]] = {
    ConfigType.INT: int,
    ConfigType.LONG: int,
    ConfigType.SHORT: int,
    ConfigType.DOUBLE: float,
}
_BOUNDS = {ConfigType.INT: (-INT_MAX - 1, INT_MAX), ConfigType.LONG: (-LONG_MAX - 1, LONG_MAX)}


def _validate_one(name: str, value: str | None) -> None:
    definition = TOPIC_CONFIGS.get(name)
    if definition is None:
        raise InvalidConfigError(f"Unknown topic config name: {name}")
    if value is None:
        raise InvalidConfigError(f"Null value not supported for topic config: {name}")
    kind = definition.config_type
    if kind is ConfigType.BOOLEAN:
        if value.strip().lower() not in ("true", "false"):
            raise InvalidConfigError(f"Invalid value {value} for configuration {name}: "
                                     "expected a boolean")
        return
    if kind is ConfigType.LIST:
        items = [item.strip() for item in value.split(",") if item.strip()]
        if definition.choices is not None and (
            not items or any(item not in definition.choices for item in items)
        ):
            raise InvalidConfigError(f"Invalid value {value} for configuration {name}: "
                                     f"must be a list of {sorted(definition.choices)}")
        return
    if kind is ConfigType.STRING:
        if definition.choices is not None and value not in definition.choices:
            raise InvalidConfigError(f"Invalid value {value} for configuration {name}: "
                                     f"String must be one of: {', '.join(sorted(definition.choices))}")
        return
    try:
        number = _PARSERS[kind](value.strip())
    except (ValueError, KeyError):
        raise InvalidConfigError(f"Invalid value {value} for configuration {name}: "
                                 f"not a number of type {kind.name}") from None
    low, high = _BOUNDS.get(kind, (None, None))
    if low is not None and not low <= number <= high:
        raise InvalidConfigError(f"Invalid value {value} for configuration {name}: "
                                 f"out of range for {kind.name}")
    if definition.minimum is not None and number < definition.minimum:
        raise InvalidConfigError(f"Invalid value {value} for configuration {name}: "
                                 f"Value must be at least {definition.minimum:g}")
    if definition.maximum is not None and number > definition.maximum:
        raise InvalidConfigError(f"Invalid value {value} for configuration {name}: "
                                 f"Value must be no more than {definition.maximum:g}")


def validate_topic_configs(configs: Mapping[str, str | None]) -> None:
    """Raise :class:`InvalidConfigError` for the first unknown name or invalid value."""
    for name, value in configs.items():
        _validate_one(name, value)


def resolve_topic_config(
    name: str, topic_configs: Mapping[str, str], broker_properties: Mapping[str, str]
) -> tuple[str, ConfigSource]:
    """The effective value of a topic config and where it came from."""
    if name in topic_configs:
        return topic_configs[name], ConfigSource.DYNAMIC_TOPIC_CONFIG
    definition = TOPIC_CONFIGS[name]
    if definition.broker_synonym and definition.broker_synonym in broker_properties:
        return broker_properties[definition.broker_synonym], ConfigSource.STATIC_BROKER_CONFIG
    return definition.default, ConfigSource.DEFAULT_CONFIG
