"""The cluster-metadata image: an immutable view of everything the metadata log says.

This module owns applying metadata records (TopicRecord, PartitionRecord, ConfigRecord,
RemoveTopicRecord, ProducerIdsRecord, RegisterBrokerRecord, FeatureLevelRecord, ...) to an
image, the way KRaft brokers build ``MetadataImage`` from ``MetadataDelta`` (KIP-500/KIP-631).
Handlers only ever read an image; nothing here does I/O, and an image is never mutated once
published: :func:`apply_records` returns a new one that shares unchanged parts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from streambus.security.authorizer import (
    AclBinding,
    AclOperation,
    PatternType,
    PermissionType,
    ResourceType,
)
from streambus.security.users import MECHANISM_BY_CODE, ScramCredential

__all__ = [
    "PartitionImage",
    "TopicImage",
    "BrokerImage",
    "MetadataImage",
    "apply_records",
    "EMPTY_IMAGE",
    "CONFIG_RESOURCE_TOPIC",
    "CONFIG_RESOURCE_BROKER",
]

#: ConfigResource.Type codes as DescribeConfigs and ConfigRecord use them.
CONFIG_RESOURCE_TOPIC = 2
CONFIG_RESOURCE_BROKER = 4

_EMPTY: Mapping[Any, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PartitionImage:
    partition_index: int
    leader: int
    leader_epoch: int
    partition_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TopicImage:
    name: str
    topic_id: uuid.UUID
    partitions: Mapping[int, PartitionImage]


@dataclass(frozen=True, slots=True)
class BrokerImage:
    broker_id: int
    broker_epoch: int
    incarnation_id: uuid.UUID
    endpoints: tuple[tuple[str, str, int, int], ...]
    """(listener name, host, port, security protocol) per listener."""
    rack: str | None
    fenced: bool


@dataclass(frozen=True, slots=True)
class MetadataImage:
    """Everything handlers need to know about the cluster, as of ``offset`` of the log."""

    offset: int = -1
    topics_by_name: Mapping[str, TopicImage] = field(default_factory=lambda: _EMPTY)
    topics_by_id: Mapping[uuid.UUID, TopicImage] = field(default_factory=lambda: _EMPTY)
    configs: Mapping[tuple[int, str], Mapping[str, str]] = field(default_factory=lambda: _EMPTY)
    """Explicitly set configs keyed by (resource type, resource name); '' names the default."""
    brokers: Mapping[int, BrokerImage] = field(default_factory=lambda: _EMPTY)
    features: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    next_producer_id: int = 0
    """First producer id not yet handed out in a block (ProducerIdsRecord.next_producer_id)."""
    acls: Mapping[uuid.UUID, AclBinding] = field(default_factory=lambda: _EMPTY)
    """ACLs by id (AccessControlEntryRecord / RemoveAccessControlEntryRecord)."""
    scram_credentials: Mapping[tuple[str, str], ScramCredential] = field(
        default_factory=lambda: _EMPTY)
    """SCRAM credentials by (user, mechanism name) (UserScramCredentialRecord)."""

    def topic_configs(self, topic: str) -> Mapping[str, str]:
        return self.configs.get((CONFIG_RESOURCE_TOPIC, topic), _EMPTY)

    def broker_configs(self, broker: str) -> Mapping[str, str]:
        return self.configs.get((CONFIG_RESOURCE_BROKER, broker), _EMPTY)


EMPTY_IMAGE = MetadataImage()


@dataclass(slots=True)
class _Delta:
    """Mutable working copies, made lazily so untouched maps are shared with the old image."""

    base: MetadataImage
    topics_by_name: dict[str, TopicImage] | None = None
    topics_by_id: dict[uuid.UUID, TopicImage] | None = None
    configs: dict[tuple[int, str], Mapping[str, str]] | None = None
    brokers: dict[int, BrokerImage] | None = None
    features: dict[str, int] | None = None
    next_producer_id: int = 0
    acls: dict[uuid.UUID, AclBinding] | None = None
    scram_credentials: dict[tuple[str, str], ScramCredential] | None = None
    touched_partitions: dict[uuid.UUID, dict[int, PartitionImage]] = field(default_factory=dict)

    def topics(self) -> tuple[dict[str, TopicImage], dict[uuid.UUID, TopicImage]]:
        if self.topics_by_name is None:
            self.topics_by_name = dict(self.base.topics_by_name)
            self.topics_by_id = dict(self.base.topics_by_id)
        assert self.topics_by_id is not None
        return self.topics_by_name, self.topics_by_id


def _replace_topic(delta: _Delta, topic: TopicImage) -> None:
    by_name, by_id = delta.topics()
    by_name[topic.name] = topic
    by_id[topic.topic_id] = topic


def apply_records(image: MetadataImage, records: Iterable[Any], offset: int) -> MetadataImage:
    """Return the image that results from applying ``records`` (generated metadata record
    objects) to ``image``; ``offset`` is the log offset of the last one.

    Unknown record types are ignored, as KRaft brokers skip records they do not use.
    """
    delta = _Delta(base=image, next_producer_id=image.next_producer_id)
    for record in records:
        handler = _APPLY.get(type(record).__name__)
        if handler is not None:
            handler(delta, record)
    for topic_id, partitions in delta.touched_partitions.items():
        _, by_id = delta.topics()
        topic = by_id.get(topic_id)
        if topic is None:
            continue  # partitions of a topic removed later in the same batch
        merged = dict(topic.partitions)
        merged.update(partitions)
        _replace_topic(delta, replace(topic, partitions=MappingProxyType(merged)))
    return MetadataImage(
        offset=offset,
        topics_by_name=_frozen(delta.topics_by_name, image.topics_by_name),
        topics_by_id=_frozen(delta.topics_by_id, image.topics_by_id),
        configs=_frozen(delta.configs, image.configs),
        brokers=_frozen(delta.brokers, image.brokers),
        features=_frozen(delta.features, image.features),
        next_producer_id=delta.next_producer_id,
        acls=_frozen(delta.acls, image.acls),
        scram_credentials=_frozen(delta.scram_credentials, image.scram_credentials),
    )


def _frozen(working: dict | None, original: Mapping) -> Mapping:
    return original if working is None else MappingProxyType(working)


def _apply_topic(delta: _Delta, record: Any) -> None:
    _replace_topic(
        delta, TopicImage(name=record.name, topic_id=record.topic_id, partitions=_EMPTY)
    )


def _apply_partition(delta: _Delta, record: Any) -> None:
    delta.touched_partitions.setdefault(record.topic_id, {})[record.partition_id] = (
        PartitionImage(
            partition_index=record.partition_id,
            leader=record.leader,
            leader_epoch=record.leader_epoch,
            partition_epoch=record.partition_epoch,
            replicas=tuple(record.replicas),
            isr=tuple(record.isr),
        )
    )


def _apply_partition_change(delta: _Delta, record: Any) -> None:
    _, by_id = delta.topics()
    topic = by_id.get(record.topic_id)
    pending = delta.touched_partitions.setdefault(record.topic_id, {})
    current = pending.get(record.partition_id)
    if current is None and topic is not None:
        current = topic.partitions.get(record.partition_id)
    if current is None:
        return
    leader = current.leader if record.leader == -2 else record.leader
    changed = replace(
        current,
        leader=leader,
        isr=current.isr if record.isr is None else tuple(record.isr),
        replicas=current.replicas if record.replicas is None else tuple(record.replicas),
        # A leader change bumps the leader epoch; any change bumps the partition epoch.
        leader_epoch=current.leader_epoch + (1 if record.leader != -2 else 0),
        partition_epoch=current.partition_epoch + 1,
    )
    pending[record.partition_id] = changed


def _apply_remove_topic(delta: _Delta, record: Any) -> None:
    by_name, by_id = delta.topics()
    topic = by_id.pop(record.topic_id, None)
    delta.touched_partitions.pop(record.topic_id, None)
    if topic is None:
        return
    by_name.pop(topic.name, None)
    if delta.configs is None:
        delta.configs = dict(delta.base.configs)
    delta.configs.pop((CONFIG_RESOURCE_TOPIC, topic.name), None)


def _apply_config(delta: _Delta, record: Any) -> None:
    if delta.configs is None:
        delta.configs = dict(delta.base.configs)
    key = (record.resource_type, record.resource_name)
    values = dict(delta.configs.get(key, _EMPTY))
    if record.value is None:
        values.pop(record.name, None)
    else:
        values[record.name] = record.value
    delta.configs[key] = MappingProxyType(values)


def _apply_producer_ids(delta: _Delta, record: Any) -> None:
    delta.next_producer_id = max(delta.next_producer_id, record.next_producer_id)


def _apply_register_broker(delta: _Delta, record: Any) -> None:
    if delta.brokers is None:
        delta.brokers = dict(delta.base.brokers)
    delta.brokers[record.broker_id] = BrokerImage(
        broker_id=record.broker_id,
        broker_epoch=record.broker_epoch,
        incarnation_id=record.incarnation_id,
        endpoints=tuple(
            (e.name, e.host, e.port, e.security_protocol) for e in record.end_points
        ),
        rack=record.rack,
        fenced=record.fenced,
    )


def _apply_fence(delta: _Delta, record: Any, fenced: bool) -> None:
    if delta.brokers is None:
        delta.brokers = dict(delta.base.brokers)
    broker = delta.brokers.get(record.id)
    if broker is not None:
        delta.brokers[record.id] = replace(broker, fenced=fenced)


def _apply_feature_level(delta: _Delta, record: Any) -> None:
    if delta.features is None:
        delta.features = dict(delta.base.features)
    delta.features[record.name] = record.feature_level


def _apply_acl(delta: _Delta, record: Any) -> None:
    if delta.acls is None:
        delta.acls = dict(delta.base.acls)
    try:
        binding = AclBinding(
            resource_type=ResourceType(record.resource_type),
            resource_name=record.resource_name,
            pattern_type=PatternType(record.pattern_type),
            principal=record.principal,
            host=record.host,
            operation=AclOperation(record.operation),
            permission_type=PermissionType(record.permission_type),
        )
    except ValueError:
        return  # a code this build does not know: it can never match, as in Kafka
    delta.acls[record.id] = binding


def _apply_remove_acl(delta: _Delta, record: Any) -> None:
    if delta.acls is None:
        delta.acls = dict(delta.base.acls)
    delta.acls.pop(record.id, None)


def _apply_scram(delta: _Delta, record: Any) -> None:
    mechanism = MECHANISM_BY_CODE.get(record.mechanism)
    if mechanism is None:
        return
    if delta.scram_credentials is None:
        delta.scram_credentials = dict(delta.base.scram_credentials)
    delta.scram_credentials[(record.name, mechanism)] = ScramCredential(
        mechanism=mechanism, salt=bytes(record.salt), iterations=record.iterations,
        stored_key=bytes(record.stored_key), server_key=bytes(record.server_key))


def _apply_remove_scram(delta: _Delta, record: Any) -> None:
    mechanism = MECHANISM_BY_CODE.get(record.mechanism)
    if delta.scram_credentials is None:
        delta.scram_credentials = dict(delta.base.scram_credentials)
    delta.scram_credentials.pop((record.name, mechanism), None)


_APPLY = {
    "TopicRecord": _apply_topic,
    "PartitionRecord": _apply_partition,
    "PartitionChangeRecord": _apply_partition_change,
    "RemoveTopicRecord": _apply_remove_topic,
    "ConfigRecord": _apply_config,
    "ProducerIdsRecord": _apply_producer_ids,
    "RegisterBrokerRecord": _apply_register_broker,
    "FenceBrokerRecord": lambda delta, record: _apply_fence(delta, record, True),
    "UnfenceBrokerRecord": lambda delta, record: _apply_fence(delta, record, False),
    "FeatureLevelRecord": _apply_feature_level,
    "AccessControlEntryRecord": _apply_acl,
    "RemoveAccessControlEntryRecord": _apply_remove_acl,
    "UserScramCredentialRecord": _apply_scram,
    "RemoveUserScramCredentialRecord": _apply_remove_scram,
}
