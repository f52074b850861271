"""Controller operations as pure functions: (image, request) -> records to append.

This module owns the rules for metadata changes — topic creation and deletion, partition
placement, producer-id block allocation — in the style of Kafka's ``ReplicationControlManager``
and ``ProducerIdControlManager``: each operation validates against the current
:class:`~streambus.metadata.image.MetadataImage` and returns the metadata records that make the
change, or raises :class:`ControllerError` with the Kafka error code.  Nothing is applied here;
the caller appends the records to the metadata log and publishes the resulting image, so the
same functions serve the Raft quorum unchanged.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Mapping, Sequence

from streambus.metadata.image import CONFIG_RESOURCE_BROKER, CONFIG_RESOURCE_TOPIC, MetadataImage
from streambus.metadata.topic_config import (
    BROKER_DYNAMIC_CONFIGS,
    TOPIC_CONFIGS,
    InvalidConfigError,
    InvalidConfigRequestError,
    apply_changes,
    incremental_changes,
    replacement_changes,
    validate_broker_configs,
    validate_topic_configs,
)
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.metadata_records import (
    ConfigRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RemoveTopicRecord,
    TopicRecord,
)

__all__ = [
    "ControllerError",
    "TopicSpec",
    "create_topic",
    "delete_topic",
    "allocate_producer_ids",
    "alter_configs",
    "create_partitions",
    "validate_topic_name",
    "PRODUCER_ID_BLOCK_SIZE",
    "TOPIC_NAME_LENGTH_MAX",
]

#: Kafka's ProducerIdManager hands out blocks of this many ids per ProducerIdsRecord.
PRODUCER_ID_BLOCK_SIZE = 1000
#: Kafka's Topic.MAX_NAME_LENGTH: a partition dir name must fit in 255 bytes.
TOPIC_NAME_LENGTH_MAX = 249
PARTITIONS_MAX = 100000

_LEGAL_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")


class ControllerError(Exception):
    """A metadata change was refused; carries the Kafka error code for the response."""

    def __init__(self, error_code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    num_partitions: int  # -1: the broker default (KIP-464)
    replication_factor: int  # -1: the broker default (KIP-464)
    assignments: Mapping[int, Sequence[int]] | None = None
    configs: Mapping[str, str | None] | None = None


def validate_topic_name(name: str) -> None:
    """Kafka's ``Topic.validate``: legal characters, length, not '.' or '..'."""
    if not name:
        raise ControllerError(ErrorCode.INVALID_TOPIC_EXCEPTION, "Topic name is illegal, it can't be empty")
    if name in (".", ".."):
        raise ControllerError(ErrorCode.INVALID_TOPIC_EXCEPTION, "Topic name cannot be \".\" or \"..\"")
    if len(name) > TOPIC_NAME_LENGTH_MAX:
        raise ControllerError(
            ErrorCode.INVALID_TOPIC_EXCEPTION,
            f"Topic name is illegal, it can't be longer than {TOPIC_NAME_LENGTH_MAX} characters",
        )
    if not _LEGAL_TOPIC_NAME.match(name):
        raise ControllerError(
            ErrorCode.INVALID_TOPIC_EXCEPTION,
            f"Topic name \"{name}\" is illegal, it contains a character other than "
            "ASCII alphanumerics, '.', '_' and '-'",
        )


def _collides(image: MetadataImage, name: str) -> str | None:
    # '.' and '_' map to the same metric names, so Kafka refuses topics differing only there.
    folded = name.replace(".", "_")
    for existing in image.topics_by_name:
        if existing != name and existing.replace(".", "_") == folded:
            return existing
    return None


def create_topic(
    image: MetadataImage,
    spec: TopicSpec,
    *,
    usable_broker_ids: Sequence[int],
    default_num_partitions: int,
    default_replication_factor: int,
    topic_id: uuid.UUID | None = None,
    replication_factor_max: int | None = None,
) -> tuple[list[object], int, int]:
    """Records that create ``spec.name``.

    ``replication_factor_max`` refuses larger factors with INVALID_REPLICATION_FACTOR (client
    requests pass 1 until partition replication exists).

    Returns:
        (records, num_partitions, replication_factor) as resolved from defaults.

    Raises:
        ControllerError: TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS,
            INVALID_REPLICATION_FACTOR, INVALID_REPLICA_ASSIGNMENT, INVALID_CONFIG.
    """
    validate_topic_name(spec.name)
    if spec.name in image.topics_by_name:
        raise ControllerError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{spec.name}' already exists.")
    other = _collides(image, spec.name)
    if other is not None:
        raise ControllerError(
            ErrorCode.INVALID_TOPIC_EXCEPTION,
            f"Topic '{spec.name}' collides with existing topic: {other}",
        )
    brokers = sorted(usable_broker_ids)
    if spec.assignments:
        if spec.num_partitions != -1 or spec.replication_factor != -1:
            raise ControllerError(
                ErrorCode.INVALID_REQUEST,
                "Both numPartitions or replicationFactor and replicasAssignments were set. "
                "Both cannot be used at the same time.",
            )
        assignments = {index: list(replicas) for index, replicas in spec.assignments.items()}
        if sorted(assignments) != list(range(len(assignments))):
            raise ControllerError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                                  "Partitions should be a consecutive 0-based integer sequence")
        for replicas in assignments.values():
            if not replicas or len(set(replicas)) != len(replicas) or any(
                r not in brokers for r in replicas
            ):
                raise ControllerError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                                      f"Invalid replica assignment {replicas}")
        num_partitions = len(assignments)
        replication_factor = len(assignments[0])
    else:
        num_partitions = default_num_partitions if spec.num_partitions == -1 else spec.num_partitions
        replication_factor = (
            default_replication_factor if spec.replication_factor == -1 else spec.replication_factor
        )
        if num_partitions <= 0 or num_partitions > PARTITIONS_MAX:
            raise ControllerError(ErrorCode.INVALID_PARTITIONS,
                                  "Number of partitions was set to an invalid non-positive value."
                                  if num_partitions <= 0 else
                                  f"Number of partitions is larger than {PARTITIONS_MAX}.")
        if replication_factor <= 0:
            raise ControllerError(ErrorCode.INVALID_REPLICATION_FACTOR,
                                  "Replication factor must be larger than 0.")
        if replication_factor > len(brokers):
            raise ControllerError(
                ErrorCode.INVALID_REPLICATION_FACTOR,
                f"Unable to replicate the partition {replication_factor} time(s): The target "
                f"replication factor of {replication_factor} cannot be reached because only "
                f"{len(brokers)} broker(s) are registered.",
            )
        # Round-robin placement with a per-partition shift so leaders spread over brokers.
        assignments = {
            index: [brokers[(index + r) % len(brokers)] for r in range(replication_factor)]
            for index in range(num_partitions)
        }
    if replication_factor_max is not None and replication_factor > replication_factor_max:
        raise ControllerError(
            ErrorCode.INVALID_REPLICATION_FACTOR,
            f"Replication factor {replication_factor} is not supported yet: partition "
            "replication is not available in StreamBus, every partition has exactly one "
            "replica. Create the topic with replication factor 1.")
    configs = dict(spec.configs or {})
    try:
        validate_topic_configs(configs)
    except InvalidConfigError as exc:
        raise ControllerError(ErrorCode.INVALID_CONFIG, str(exc)) from None

    topic_id = topic_id or uuid.uuid4()
    records: list[object] = [TopicRecord(name=spec.name, topic_id=topic_id)]
    for name, value in sorted(configs.items()):
        records.append(
            ConfigRecord(resource_type=CONFIG_RESOURCE_TOPIC, resource_name=spec.name,
                         name=name, value=value)
        )
    for index in range(num_partitions):
        replicas = assignments[index]
        records.append(
            PartitionRecord(
                partition_id=index,
                topic_id=topic_id,
                replicas=list(replicas),
                isr=list(replicas),
                leader=replicas[0],
                leader_epoch=0,
                partition_epoch=0,
            )
        )
    return records, num_partitions, replication_factor


def delete_topic(image: MetadataImage, *, name: str | None = None,
                 topic_id: uuid.UUID | None = None) -> tuple[list[object], str, uuid.UUID]:
    """Records that delete a topic named by ``name`` or ``topic_id``.

    Raises:
        ControllerError: UNKNOWN_TOPIC_OR_PARTITION or UNKNOWN_TOPIC_ID.
    """
    if topic_id is not None and topic_id.int != 0:
        topic = image.topics_by_id.get(topic_id)
        if topic is None:
            raise ControllerError(ErrorCode.UNKNOWN_TOPIC_ID, "This server does not host this topic ID.")
    else:
        topic = image.topics_by_name.get(name or "")
        if topic is None:
            raise ControllerError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                  "This server does not host this topic-partition.")
    return [RemoveTopicRecord(topic_id=topic.topic_id)], topic.name, topic.topic_id


def allocate_producer_ids(image: MetadataImage, broker_id: int,
                          block_size: int = PRODUCER_ID_BLOCK_SIZE) -> tuple[list[object], int]:
    """Records that reserve the next block of producer ids for ``broker_id``.

    Returns:
        (records, first id of the block); the block is [first, first + block_size).
    """
    first = image.next_producer_id
    record = ProducerIdsRecord(broker_id=broker_id, broker_epoch=-1,
                               next_producer_id=first + block_size)
    return [record], first


def _check_config_resource(image: MetadataImage, resource_type: int, resource_name: str) -> None:
    if resource_type == CONFIG_RESOURCE_TOPIC:
        if resource_name not in image.topics_by_name:
            raise ControllerError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                  f"Topic {resource_name} does not exist")
    elif resource_type == CONFIG_RESOURCE_BROKER:
        # "" is the cluster-wide default; otherwise the id of a registered broker.
        if resource_name and not (
            resource_name.isdigit() and int(resource_name) in image.brokers
        ):
            raise ControllerError(ErrorCode.INVALID_REQUEST,
                                  f"Unknown broker id or invalid broker resource name "
                                  f"'{resource_name}'")
    else:
        raise ControllerError(ErrorCode.INVALID_REQUEST,
                              f"Unsupported resource type {resource_type}")


def alter_configs(
    image: MetadataImage,
    resource_type: int,
    resource_name: str,
    *,
    replacement: Sequence[tuple[str, str | None]] | None = None,
    operations: Sequence[tuple[str, int, str | None]] | None = None,
) -> list[object]:
    """ConfigRecords that change one resource's explicit configs.

    Exactly one of ``replacement`` (AlterConfigs: the resource's configs become exactly these,
    everything else returns to its default) and ``operations`` (IncrementalAlterConfigs:
    SET/DELETE/APPEND/SUBTRACT of named configs) is given.  A record with a null value removes
    an explicit config.  The whole resulting set is validated before anything is returned, so
    a resource changes completely or not at all.

    Raises:
        ControllerError: UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST (unknown resource type or
            broker, duplicate names, null values), INVALID_CONFIG (unknown name, bad value, a
            broker config that cannot change at runtime).
    """
    assert (replacement is None) != (operations is None), "give replacement or operations"
    _check_config_resource(image, resource_type, resource_name)
    current = dict(image.configs.get((resource_type, resource_name), {}))
    is_topic = resource_type == CONFIG_RESOURCE_TOPIC
    try:
        if replacement is not None:
            changes = replacement_changes(current, replacement)
        else:
            assert operations is not None
            changes = incremental_changes(
                current, operations, TOPIC_CONFIGS if is_topic else BROKER_DYNAMIC_CONFIGS)
        result = apply_changes(current, changes)
        if is_topic:
            validate_topic_configs(result)
        else:
            validate_broker_configs({name: result[name] for name in changes if name in result})
    except InvalidConfigRequestError as exc:
        raise ControllerError(ErrorCode.INVALID_REQUEST, str(exc)) from None
    except InvalidConfigError as exc:
        raise ControllerError(ErrorCode.INVALID_CONFIG, str(exc)) from None
    return [
        ConfigRecord(resource_type=resource_type, resource_name=resource_name, name=name,
                     value=value)
        for name, value in sorted(changes.items())
    ]


def create_partitions(
    image: MetadataImage,
    name: str,
    count: int,
    assignments: Sequence[Sequence[int]] | None,
    *,
    usable_broker_ids: Sequence[int],
) -> list[object]:
    """PartitionRecords that grow topic ``name`` to ``count`` partitions (CreatePartitions).

    New partitions keep the topic's replication factor; without ``assignments`` they are
    placed round-robin like a new topic's, continuing from the existing partition count.

    Raises:
        ControllerError: UNKNOWN_TOPIC_OR_PARTITION, INVALID_PARTITIONS (not an increase, too
            many), INVALID_REPLICA_ASSIGNMENT.
    """
    topic = image.topics_by_name.get(name)
    if topic is None:
        raise ControllerError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                              f"The topic '{name}' does not exist.")
    current = len(topic.partitions)
    if count < current:
        raise ControllerError(ErrorCode.INVALID_PARTITIONS,
                              f"The topic {name} currently has {current} partition(s); {count} "
                              "would not be an increase.")
    if count == current:
        raise ControllerError(ErrorCode.INVALID_PARTITIONS,
                              f"Topic already has {current} partition(s).")
    if count > PARTITIONS_MAX:
        raise ControllerError(ErrorCode.INVALID_PARTITIONS,
                              f"Number of partitions is larger than {PARTITIONS_MAX}.")
    brokers = sorted(usable_broker_ids)
    replication_factor = max((len(p.replicas) for p in topic.partitions.values()), default=1)
    added = count - current
    if assignments:
        if len(assignments) != added:
            raise ControllerError(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                f"Attempted to add {added} additional partition(s), but only "
                f"{len(assignments)} assignment(s) were specified.")
        new_replicas = [list(replicas) for replicas in assignments]
        for replicas in new_replicas:
            if not replicas or len(set(replicas)) != len(replicas) or any(
                r not in brokers for r in replicas
            ):
                raise ControllerError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                                      f"Invalid replica assignment {replicas}")
            if len(replicas) != replication_factor:
                raise ControllerError(
                    ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                    f"The manual partition assignment includes a partition with "
                    f"{len(replicas)} replica(s), but this is not consistent with previous "
                    f"partitions, which have {replication_factor} replica(s).")
    else:
        if replication_factor > len(brokers):
            raise ControllerError(ErrorCode.INVALID_REPLICATION_FACTOR,
                                  f"Unable to replicate the partition {replication_factor} "
                                  f"time(s): only {len(brokers)} broker(s) are registered.")
        new_replicas = [
            [brokers[(index + r) % len(brokers)] for r in range(replication_factor)]
            for index in range(current, count)
        ]
    return [
        PartitionRecord(partition_id=current + offset, topic_id=topic.topic_id,
                        replicas=list(replicas), isr=list(replicas), leader=replicas[0],
                        leader_epoch=0, partition_epoch=0)
        for offset, replicas in enumerate(new_replicas)
    ]
