"""``__consumer_offsets`` records: constructors and the key/value byte layout.

Layout, as Kafka writes it (``CoordinatorRecordSerde``)::

    key   = int16 record type | key struct at version = record type
    value = int16 value version | value struct at that version        (absent: a tombstone)

Record types (``GROUP_COORDINATOR_RECORDS``): 0/1 OffsetCommit (we write 1), 2 GroupMetadata,
3 ConsumerGroupMetadata, 4 ConsumerGroupPartitionMetadata, 5 ConsumerGroupMemberMetadata,
6 ConsumerGroupTargetAssignmentMetadata, 7 ConsumerGroupTargetAssignmentMember,
8 ConsumerGroupCurrentMemberAssignment.  Value versions follow Kafka's record helpers:
OffsetCommitValue v1 when the commit carries an expire timestamp (OffsetCommit v2-v4
``retention_time_ms``) and v3 otherwise; GroupMetadataValue v3; KIP-848 values v0.

Pure: builds generated record objects and bytes, never touches a log.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from streambus.coordinator.result import CoordinatorRecord
from streambus.protocol import codec
from streambus.protocol.coordinator_records import (
    GROUP_COORDINATOR_RECORDS,
    ConsumerGroupCurrentMemberAssignmentKey,
    ConsumerGroupCurrentMemberAssignmentValue,
    ConsumerGroupMemberMetadataKey,
    ConsumerGroupMemberMetadataValue,
    ConsumerGroupMetadataKey,
    ConsumerGroupMetadataValue,
    ConsumerGroupPartitionMetadataKey,
    ConsumerGroupPartitionMetadataValue,
    ConsumerGroupTargetAssignmentMemberKey,
    ConsumerGroupTargetAssignmentMemberValue,
    ConsumerGroupTargetAssignmentMetadataKey,
    ConsumerGroupTargetAssignmentMetadataValue,
    GroupMetadataKey,
    GroupMetadataValue,
    OffsetCommitKey,
    OffsetCommitValue,
)

__all__ = [
    "OffsetAndMetadata",
    "RecordFormatError",
    "encode_record",
    "decode_record",
    "offset_commit_record",
    "offset_commit_tombstone",
    "group_metadata_record",
    "empty_group_metadata_record",
    "group_metadata_tombstone",
    "consumer_group_epoch_record",
    "consumer_group_epoch_tombstone",
    "consumer_group_subscription_metadata_record",
    "consumer_group_subscription_metadata_tombstone",
    "consumer_group_member_record",
    "consumer_group_member_tombstone",
    "consumer_group_target_assignment_record",
    "consumer_group_target_assignment_tombstone",
    "consumer_group_target_assignment_epoch_record",
    "consumer_group_target_assignment_epoch_tombstone",
    "consumer_group_current_assignment_record",
    "consumer_group_current_assignment_tombstone",
]

_INT16 = struct.Struct(">h")

#: Highest record type this coordinator reads and writes (9+ are share-group records).
RECORD_TYPE_MAX = 8
#: The record type (= key version) we write for each key class.
KEY_VERSIONS: dict[type, int] = {}
for _record_type, (_key_class, _) in sorted(GROUP_COORDINATOR_RECORDS.items()):
    if _record_type <= RECORD_TYPE_MAX:
        KEY_VERSIONS[_key_class] = _record_type  # the higher type wins: OffsetCommitKey -> 1

#: Values Kafka writes without an expire timestamp (v3 adds leader_epoch) and with one (v1).
OFFSET_COMMIT_VALUE_VERSION = 3
OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY = 1
GROUP_METADATA_VALUE_VERSION = 3

Assignment = Mapping[uuid.UUID, "frozenset[int] | set[int]"]


class RecordFormatError(ValueError):
    """Stored bytes are not a record this coordinator can read."""


@dataclass(frozen=True, slots=True)
class OffsetAndMetadata:
    """One committed offset as the coordinator keeps it (Kafka's ``OffsetAndMetadata``)."""

    committed_offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp_ms: int
    expire_timestamp_ms: int | None = None


# -- bytes ------------------------------------------------------------------------------------


def encode_record(record: CoordinatorRecord) -> tuple[bytes, bytes | None]:
    """The (key, value) bytes of ``record``; value None for a tombstone."""
    key_version = KEY_VERSIONS[type(record.key)]
    key = _INT16.pack(key_version) + codec.encode(record.key, key_version)
    if record.value is None:
        return key, None
    value = _INT16.pack(record.value_version) + codec.encode(record.value, record.value_version)
    return key, value


def decode_record(key: bytes | memoryview, value: bytes | memoryview | None) -> CoordinatorRecord | None:
    """Parse stored key/value bytes; None for a record type this coordinator does not use
    (share-group records, or types from a newer version), which loading skips as Kafka does.

    Raises:
        RecordFormatError: truncated or malformed bytes, or a value version we cannot read.
    """
    if len(key) < 2:
        raise RecordFormatError("record key shorter than its version prefix")
    (record_type,) = _INT16.unpack_from(key, 0)
    classes = GROUP_COORDINATOR_RECORDS.get(record_type)
    if classes is None or record_type > RECORD_TYPE_MAX:
        return None
    key_class, value_class = classes
    try:
        parsed_key, _ = codec.decode(key_class, record_type, key, 2)
        if value is None:
            return CoordinatorRecord(parsed_key, None)
        if len(value) < 2:
            raise RecordFormatError("record value shorter than its version prefix")
        (value_version,) = _INT16.unpack_from(value, 0)
        low, high = value_class.VALID_VERSIONS
        if not low <= value_version <= high:
            raise RecordFormatError(
                f"{value_class.__name__} version {value_version} is outside {low}-{high}")
        parsed_value, _ = codec.decode(value_class, value_version, value, 2)
    except RecordFormatError:
        raise
    except Exception as exc:  # the codec's RemoteProtocolError and friends
        raise RecordFormatError(f"malformed {key_class.__name__} record: {exc}") from exc
    return CoordinatorRecord(parsed_key, parsed_value, value_version)


# -- offsets ----------------------------------------------------------------------------------


def offset_commit_record(group_id: str, topic: str, partition: int,
                         offset: OffsetAndMetadata) -> CoordinatorRecord:
    key = OffsetCommitKey(group=group_id, topic=topic, partition=partition)
    if offset.expire_timestamp_ms is not None:
        value = OffsetCommitValue(offset=offset.committed_offset, metadata=offset.metadata,
                                  commit_timestamp=offset.commit_timestamp_ms,
                                  expire_timestamp=offset.expire_timestamp_ms)
        return CoordinatorRecord(key, value, OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY)
    value = OffsetCommitValue(offset=offset.committed_offset, leader_epoch=offset.leader_epoch,
                              metadata=offset.metadata,
                              commit_timestamp=offset.commit_timestamp_ms)
    return CoordinatorRecord(key, value, OFFSET_COMMIT_VALUE_VERSION)


def offset_commit_tombstone(group_id: str, topic: str, partition: int) -> CoordinatorRecord:
    return CoordinatorRecord(OffsetCommitKey(group=group_id, topic=topic, partition=partition), None)


def offset_from_value(value: OffsetCommitValue) -> OffsetAndMetadata:
    return OffsetAndMetadata(
        committed_offset=value.offset,
        leader_epoch=value.leader_epoch,
        metadata=value.metadata,
        commit_timestamp_ms=value.commit_timestamp,
        expire_timestamp_ms=None if value.expire_timestamp == -1 else value.expire_timestamp,
    )


# -- classic groups ---------------------------------------------------------------------------


def group_metadata_record(group: Any, assignment: Mapping[str, bytes]) -> CoordinatorRecord:
    """The GroupMetadata record of a classic group with members (Kafka's newGroupMetadataRecord).

    Args:
        group: a :class:`~streambus.coordinator.group.classic.ClassicGroup` with a protocol.
        assignment: member id -> assignment bytes to store (missing members store b"").
    """
    members = []
    for member in group.members.values():
        subscription = member.metadata(group.protocol_name)
        assert subscription is not None, "a non-empty group record needs a selected protocol"
        members.append(GroupMetadataValue.MemberMetadata(
            member_id=member.member_id,
            group_instance_id=member.group_instance_id,
            client_id=member.client_id,
            client_host=member.client_host,
            rebalance_timeout=member.rebalance_timeout_ms,
            session_timeout=member.session_timeout_ms,
            subscription=subscription,
            assignment=assignment.get(member.member_id, b""),
        ))
    value = GroupMetadataValue(
        protocol_type=group.protocol_type or "",
        generation=group.generation_id,
        protocol=group.protocol_name,
        leader=group.leader_id,
        current_state_timestamp=group.state_timestamp_ms,
        members=members,
    )
    return CoordinatorRecord(GroupMetadataKey(group=group.group_id), value,
                             GROUP_METADATA_VALUE_VERSION)


def empty_group_metadata_record(group: Any) -> CoordinatorRecord:
    value = GroupMetadataValue(
        protocol_type=group.protocol_type or "",
        generation=group.generation_id,
        protocol=None,
        leader=None,
        current_state_timestamp=group.state_timestamp_ms,
        members=[],
    )
    return CoordinatorRecord(GroupMetadataKey(group=group.group_id), value,
                             GROUP_METADATA_VALUE_VERSION)


def group_metadata_tombstone(group_id: str) -> CoordinatorRecord:
    return CoordinatorRecord(GroupMetadataKey(group=group_id), None)


# -- KIP-848 consumer groups ------------------------------------------------------------------


def _topic_partitions(cls: type, assignment: Assignment) -> list:
    return [cls(topic_id=topic_id, partitions=sorted(partitions))
            for topic_id, partitions in sorted(assignment.items(), key=lambda item: str(item[0]))
            if partitions]


def consumer_group_epoch_record(group_id: str, epoch: int) -> CoordinatorRecord:
    return CoordinatorRecord(ConsumerGroupMetadataKey(group_id=group_id),
                             ConsumerGroupMetadataValue(epoch=epoch))


def consumer_group_epoch_tombstone(group_id: str) -> CoordinatorRecord:
    return CoordinatorRecord(ConsumerGroupMetadataKey(group_id=group_id), None)


def consumer_group_subscription_metadata_record(
    group_id: str, topics: Mapping[str, tuple[uuid.UUID, int]]
) -> CoordinatorRecord:
    """Subscribed topics: name -> (topic id, partition count)."""
    value = ConsumerGroupPartitionMetadataValue(topics=[
        ConsumerGroupPartitionMetadataValue.TopicMetadata(
            topic_id=topic_id, topic_name=name, num_partitions=count)
        for name, (topic_id, count) in sorted(topics.items())
    ])
    return CoordinatorRecord(ConsumerGroupPartitionMetadataKey(group_id=group_id), value)


def consumer_group_subscription_metadata_tombstone(group_id: str) -> CoordinatorRecord:
    return CoordinatorRecord(ConsumerGroupPartitionMetadataKey(group_id=group_id), None)


def consumer_group_member_record(group_id: str, member: Any) -> CoordinatorRecord:
    value = ConsumerGroupMemberMetadataValue(
        instance_id=member.instance_id,
        rack_id=member.rack_id,
        client_id=member.client_id,
        client_host=member.client_host,
        subscribed_topic_names=sorted(member.subscribed_topic_names),
        subscribed_topic_regex=member.subscribed_topic_regex,
        rebalance_timeout_ms=member.rebalance_timeout_ms,
        server_assignor=member.server_assignor,
    )
    return CoordinatorRecord(
        ConsumerGroupMemberMetadataKey(group_id=group_id, member_id=member.member_id), value)


def consumer_group_member_tombstone(group_id: str, member_id: str) -> CoordinatorRecord:
    return CoordinatorRecord(
        ConsumerGroupMemberMetadataKey(group_id=group_id, member_id=member_id), None)


def consumer_group_target_assignment_record(group_id: str, member_id: str,
                                            assignment: Assignment) -> CoordinatorRecord:
    value = ConsumerGroupTargetAssignmentMemberValue(topic_partitions=_topic_partitions(
        ConsumerGroupTargetAssignmentMemberValue.TopicPartition, assignment))
    return CoordinatorRecord(
        ConsumerGroupTargetAssignmentMemberKey(group_id=group_id, member_id=member_id), value)


def consumer_group_target_assignment_tombstone(group_id: str, member_id: str) -> CoordinatorRecord:
    return CoordinatorRecord(
        ConsumerGroupTargetAssignmentMemberKey(group_id=group_id, member_id=member_id), None)


def consumer_group_target_assignment_epoch_record(group_id: str, epoch: int) -> CoordinatorRecord:
    return CoordinatorRecord(ConsumerGroupTargetAssignmentMetadataKey(group_id=group_id),
                             ConsumerGroupTargetAssignmentMetadataValue(assignment_epoch=epoch))


def consumer_group_target_assignment_epoch_tombstone(group_id: str) -> CoordinatorRecord:
    return CoordinatorRecord(ConsumerGroupTargetAssignmentMetadataKey(group_id=group_id), None)


def consumer_group_current_assignment_record(group_id: str, member: Any) -> CoordinatorRecord:
    cls = ConsumerGroupCurrentMemberAssignmentValue.TopicPartitions
    value = ConsumerGroupCurrentMemberAssignmentValue(
        member_epoch=member.member_epoch,
        previous_member_epoch=member.previous_member_epoch,
        state=int(member.state),
        assigned_partitions=_topic_partitions(cls, member.assigned),
        partitions_pending_revocation=_topic_partitions(cls, member.pending_revocation),
    )
    return CoordinatorRecord(
        ConsumerGroupCurrentMemberAssignmentKey(group_id=group_id, member_id=member.member_id),
        value)


def consumer_group_current_assignment_tombstone(group_id: str, member_id: str) -> CoordinatorRecord:
    return CoordinatorRecord(
        ConsumerGroupCurrentMemberAssignmentKey(group_id=group_id, member_id=member_id), None)


def assignment_from_topic_partitions(items: Sequence[Any]) -> dict[uuid.UUID, set[int]]:
    """{topic id: partitions} from generated ``TopicPartition(s)`` structs."""
    out: dict[uuid.UUID, set[int]] = {}
    for item in items:
        if item.partitions:
            out.setdefault(item.topic_id, set()).update(item.partitions)
    return out
