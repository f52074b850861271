"""Topic and broker configs: Kafka's names, types, defaults, synonyms, layers and validation.

This module owns the table of topic configs StreamBus understands, the table of broker configs
that can change at runtime, and the rules that turn the configuration layers into effective
values with their source (KIP-226).  Pure: no I/O, no metadata log; the controller turns the
changes computed here into ConfigRecords.

Precedence, highest first, exactly as Kafka resolves it::

    topic config                 DYNAMIC_TOPIC_CONFIG           ConfigRecord(TOPIC, "<topic>")
    broker synonym, this broker  DYNAMIC_BROKER_CONFIG          ConfigRecord(BROKER, "<node id>")
    broker synonym, cluster      DYNAMIC_DEFAULT_BROKER_CONFIG  ConfigRecord(BROKER, "")
    broker synonym, file/flags   STATIC_BROKER_CONFIG           YAML/env/--override
    Kafka's default              DEFAULT_CONFIG

A topic config that is not set explicitly takes its value from the broker property named as its
synonym (``retention.ms`` from ``log.retention.ms``), as Kafka's ``LogConfig`` does.
DescribeConfigs lists every layer that holds a value as a synonym, highest first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from types import MappingProxyType
from typing import Callable, Iterable, Mapping, Sequence

__all__ = [
    "ConfigType",
    "ConfigSource",
    "ConfigOperation",
    "TopicConfigDef",
    "ConfigEntry",
    "BrokerConfigLayers",
    "TOPIC_CONFIGS",
    "BROKER_DYNAMIC_CONFIGS",
    "InvalidConfigError",
    "InvalidConfigRequestError",
    "validate_topic_configs",
    "validate_broker_configs",
    "resolve_topic_config",
    "describe_topic_config",
    "describe_broker_config",
    "broker_config_names",
    "incremental_changes",
    "replacement_changes",
    "apply_changes",
    "effective_topic_configs",
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
    """DescribeConfigs/CreateTopics ``config_source`` on the wire (KIP-226): the values of
    Kafka's ``DescribeConfigsResponse.ConfigSource``, not the order of the admin client's enum."""

    UNKNOWN = 0
    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5
    DYNAMIC_BROKER_LOGGER_CONFIG = 6
    DYNAMIC_CLIENT_METRICS_CONFIG = 7
    DYNAMIC_GROUP_CONFIG = 8


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
    _validate_value(definition, value)


def _validate_value(definition: TopicConfigDef, value: str) -> None:
    """Raise :class:`InvalidConfigError` unless ``value`` parses as the definition's type and
    lies within its bounds or choices."""
    name = definition.name
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
    """Raise :class:`InvalidConfigError` for the first unknown name or invalid value, or for
    values that contradict each other (Kafka's ``LogConfig.validateValues``)."""
    for name, value in configs.items():
        _validate_one(name, value)
    _validate_compaction_lags(configs)


def _validate_compaction_lags(configs: Mapping[str, str | None]) -> None:
    minimum = configs.get("min.compaction.lag.ms")
    maximum = configs.get("max.compaction.lag.ms")
    if minimum is not None and maximum is not None and int(maximum) < int(minimum):
        raise InvalidConfigError(
            f"conflict topic config setting max.compaction.lag.ms ({maximum}) < "
            f"min.compaction.lag.ms ({minimum})"
        )


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


# --------------------------------------------------------------------------- broker configs


class InvalidConfigRequestError(ValueError):
    """A config change request is malformed (INVALID_REQUEST): duplicate keys, a null value
    where one is required, or an unknown operation."""


class ConfigOperation(IntEnum):
    """IncrementalAlterConfigs ``config_operation`` (KIP-339)."""

    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


_DOUBLE_MAX = repr(1.7976931348623157e308)  # Double.MAX_VALUE: no throttle

#: Broker configs that AlterConfigs may change at runtime, per broker ("<node id>") or
#: cluster-wide (""): every topic config's broker synonym (Kafka's
#: ``DynamicLogConfig.ReconfigurableConfigs``) plus the log cleaner's settings
#: (``LogCleaner.ReconfigurableConfigs``).  Anything else is read-only, as in Kafka.
BROKER_DYNAMIC_CONFIGS: Mapping[str, TopicConfigDef] = MappingProxyType({
    **{
        d.broker_synonym: TopicConfigDef(d.broker_synonym, d.config_type, d.default, None,
                                         d.minimum, d.maximum, d.choices)
        for d in TOPIC_CONFIGS.values()
        if d.broker_synonym is not None
    },
    **{
        d.name: d
        for d in (
            # One cleaner runs per broker; 0 turns it off (as log.cleaner.enable=false).
            _d("log.cleaner.threads", ConfigType.INT, "1", None, 0, 1),
            _d("log.cleaner.io.max.bytes.per.second", ConfigType.DOUBLE, _DOUBLE_MAX, None, 0),
            _d("log.cleaner.dedupe.buffer.size", ConfigType.LONG, "134217728", None, 1024),
            _d("log.cleaner.io.buffer.size", ConfigType.INT, "524288", None, 0),
            _d("log.cleaner.io.buffer.load.factor", ConfigType.DOUBLE, "0.9", None, 0.01, 1),
            _d("log.cleaner.backoff.ms", ConfigType.LONG, "15000", None, 0),
        )
    },
})


def validate_broker_configs(configs: Mapping[str, str | None]) -> None:
    """Raise :class:`InvalidConfigError` unless every name is a dynamic broker config and
    every value fits its type and bounds."""
    for name, value in configs.items():
        definition = BROKER_DYNAMIC_CONFIGS.get(name)
        if definition is None:
            raise InvalidConfigError(f"Cannot update these configs dynamically: {name}")
        if value is None:
            raise InvalidConfigError(f"Null value not supported for broker config: {name}")
        _validate_value(definition, value)


_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    """One config as DescribeConfigs reports it."""

    name: str
    value: str | None
    source: ConfigSource
    config_type: ConfigType
    read_only: bool
    synonyms: tuple[tuple[str, str | None, ConfigSource], ...]
    """(name, value, source) of every layer holding a value, highest precedence first; the
    first one is where ``value`` came from."""


@dataclass(frozen=True, slots=True)
class BrokerConfigLayers:
    """The broker's configuration layers, lowest first: Kafka's defaults, the static config
    (file, environment, flags) and the dynamic configs from the metadata image.

    Args:
        static_defaults: every broker property's value when nobody set it.
        static_explicit: the properties the operator set in the file, environment or flags.
        dynamic_default: ConfigRecords for resource name "" (cluster-wide defaults).
        dynamic_node: ConfigRecords for resource name "<node id>" (this broker only).
    """

    static_defaults: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    static_explicit: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    dynamic_default: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    dynamic_node: Mapping[str, str] = field(default_factory=lambda: _EMPTY)

    def with_dynamic(self, dynamic_default: Mapping[str, str],
                     dynamic_node: Mapping[str, str]) -> BrokerConfigLayers:
        return BrokerConfigLayers(self.static_defaults, self.static_explicit,
                                  dynamic_default, dynamic_node)

    def synonyms(self, name: str) -> list[tuple[str, ConfigSource]]:
        """(value, source) of each layer that holds ``name``, highest precedence first."""
        found: list[tuple[str, ConfigSource]] = []
        for layer, source in (
            (self.dynamic_node, ConfigSource.DYNAMIC_BROKER_CONFIG),
            (self.dynamic_default, ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG),
            (self.static_explicit, ConfigSource.STATIC_BROKER_CONFIG),
        ):
            if name in layer:
                found.append((layer[name], source))
        default = self.static_defaults.get(name)
        if default is None and name in BROKER_DYNAMIC_CONFIGS:
            default = BROKER_DYNAMIC_CONFIGS[name].default
        if default is not None:
            found.append((default, ConfigSource.DEFAULT_CONFIG))
        return found

    def resolve(self, name: str) -> tuple[str | None, ConfigSource]:
        """The effective value of a broker property and the layer it came from."""
        found = self.synonyms(name)
        return found[0] if found else (None, ConfigSource.UNKNOWN)

    def effective(self) -> dict[str, str]:
        """Every broker property's effective value (the names of :func:`broker_config_names`)."""
        values = {}
        for name in broker_config_names(self):
            value, _ = self.resolve(name)
            if value is not None:
                values[name] = value
        return values


def broker_config_names(layers: BrokerConfigLayers) -> list[str]:
    """Every broker property any layer knows of, sorted."""
    names = set(layers.static_defaults) | set(layers.static_explicit) | set(BROKER_DYNAMIC_CONFIGS)
    names |= set(layers.dynamic_default) | set(layers.dynamic_node)
    return sorted(names)


def _broker_config_type(name: str, value: str | None) -> ConfigType:
    definition = BROKER_DYNAMIC_CONFIGS.get(name)
    if definition is not None:
        return definition.config_type
    if value in ("true", "false"):
        return ConfigType.BOOLEAN
    try:
        int(value or "")
        return ConfigType.LONG
    except ValueError:
        pass
    try:
        float(value or "")
        return ConfigType.DOUBLE
    except ValueError:
        return ConfigType.STRING


def describe_broker_config(name: str, layers: BrokerConfigLayers) -> ConfigEntry:
    """A broker property as DescribeConfigs(BROKER) reports it."""
    found = layers.synonyms(name)
    value, source = found[0] if found else (None, ConfigSource.UNKNOWN)
    return ConfigEntry(
        name=name, value=value, source=source, config_type=_broker_config_type(name, value),
        read_only=name not in BROKER_DYNAMIC_CONFIGS,
        synonyms=tuple((name, synonym_value, synonym_source)
                       for synonym_value, synonym_source in found),
    )


def describe_topic_config(name: str, topic_configs: Mapping[str, str],
                          layers: BrokerConfigLayers) -> ConfigEntry:
    """A topic config as DescribeConfigs(TOPIC) reports it: the topic's own value if set, else
    its broker synonym's effective value, else Kafka's default."""
    definition = TOPIC_CONFIGS[name]
    synonyms: list[tuple[str, str | None, ConfigSource]] = []
    if name in topic_configs:
        synonyms.append((name, topic_configs[name], ConfigSource.DYNAMIC_TOPIC_CONFIG))
    synonym = definition.broker_synonym
    if synonym is not None:
        synonyms.extend((synonym, value, source) for value, source in layers.synonyms(synonym))
    if not synonyms or synonyms[-1][2] is not ConfigSource.DEFAULT_CONFIG:
        synonyms.append((synonym or name, definition.default, ConfigSource.DEFAULT_CONFIG))
    _, value, source = synonyms[0]
    return ConfigEntry(name=name, value=value, source=source,
                       config_type=definition.config_type, read_only=False,
                       synonyms=tuple(synonyms))


def effective_topic_configs(topic_configs: Mapping[str, str],
                            layers: BrokerConfigLayers) -> dict[str, str]:
    """Every topic config's effective value for a topic with ``topic_configs`` set."""
    return {
        name: describe_topic_config(name, topic_configs, layers).value or ""
        for name in TOPIC_CONFIGS
    }


# --------------------------------------------------------------------------- changes


def _check_unique_names(names: Iterable[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidConfigRequestError(f"Error due to duplicate config keys: {name}")
        seen.add(name)


def _list_items(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def replacement_changes(current: Mapping[str, str],
                        configs: Sequence[tuple[str, str | None]]) -> dict[str, str | None]:
    """Changes that make a resource's explicit configs exactly ``configs`` (AlterConfigs:
    every config not named is reset to its default).

    Returns:
        name -> new value, or None to delete the explicit value.

    Raises:
        InvalidConfigRequestError: a name appears twice or a value is null.
    """
    _check_unique_names(name for name, _ in configs)
    changes: dict[str, str | None] = {name: None for name in current}
    for name, value in configs:
        if value is None:
            raise InvalidConfigRequestError(f"Null value not supported for : {name}")
        changes[name] = value
    return {name: value for name, value in changes.items() if current.get(name) != value}


def incremental_changes(
    current: Mapping[str, str],
    operations: Sequence[tuple[str, int, str | None]],
    definitions: Mapping[str, TopicConfigDef],
) -> dict[str, str | None]:
    """Changes that apply IncrementalAlterConfigs ``operations`` (name, op, value) to a
    resource whose explicit configs are ``current``.

    APPEND and SUBTRACT work on LIST configs only and start from the explicit value, or from
    Kafka's default when none is set (``ConfigurationControlManager``); APPEND skips items
    already present.  DELETE of a config that is not set does nothing.

    Returns:
        name -> new value, or None to delete the explicit value; unchanged names left out.

    Raises:
        InvalidConfigRequestError: duplicate names, an unknown operation, or a null value for
            SET, APPEND or SUBTRACT.
        InvalidConfigError: APPEND/SUBTRACT on a config that is not a list, or on an unknown
            config.
    """
    _check_unique_names(name for name, _, _ in operations)
    changes: dict[str, str | None] = {}
    for name, operation, value in operations:
        if operation not in ConfigOperation._value2member_map_:
            raise InvalidConfigRequestError(f"Unknown config operation {operation} for {name}")
        operation = ConfigOperation(operation)
        if operation is ConfigOperation.DELETE:
            changes[name] = None
            continue
        if value is None:
            raise InvalidConfigRequestError(
                f"Null value not supported for {operation.name} of {name}")
        if operation is ConfigOperation.SET:
            changes[name] = value
            continue
        definition = definitions.get(name)
        if definition is None:
            raise InvalidConfigError(f"Unknown config name: {name}")
        if definition.config_type is not ConfigType.LIST:
            raise InvalidConfigError(
                f"Can't {operation.name} to key {name} because its type is not LIST.")
        items = _list_items(current.get(name, definition.default))
        if operation is ConfigOperation.APPEND:
            items += [item for item in _list_items(value) if item not in items]
        else:
            removed = set(_list_items(value))
            items = [item for item in items if item not in removed]
        changes[name] = ",".join(items)
    return {name: value for name, value in changes.items() if current.get(name) != value}


def apply_changes(current: Mapping[str, str],
                  changes: Mapping[str, str | None]) -> dict[str, str]:
    """The explicit configs after ``changes``."""
    result = dict(current)
    for name, value in changes.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result
