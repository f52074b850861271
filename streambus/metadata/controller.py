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

from streambus.metadata.image import CONFIG_RESOURCE_TOPIC, MetadataImage
from streambus.metadata.topic_config import InvalidConfigError, validate_topic_configs
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
) -> tuple[list[object], int, int]:
    """Records that create ``spec.name``.

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
