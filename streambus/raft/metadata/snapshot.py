"""Metadata snapshots: a MetadataImage as the records that rebuild it, and back (KIP-630).

This module owns the content of ``<end offset>-<epoch>.checkpoint`` files of the metadata
log: record batches holding KRaft-framed metadata records (the same framing as the log,
``metadata/store.py``), in dependency order (features, brokers, topics, partitions, configs,
producer ids, ACLs, SCRAM credentials) so that replaying them onto an empty image yields the
image again.  (Kafka frames a snapshot with SnapshotHeader/SnapshotFooter control records; the checkpoint
file name carries all we need, so we write only the state records.)

Every field of :class:`~streambus.metadata.image.MetadataImage` must appear here;
``tests/raft/test_raft_metadata_snapshot.py`` fails when a new field is added without a writer.
"""

from __future__ import annotations

from typing import Any, Callable

from streambus.metadata.image import EMPTY_IMAGE, MetadataImage, apply_records
from streambus.protocol.metadata_records import (
    AccessControlEntryRecord,
    ConfigRecord,
    FeatureLevelRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RegisterBrokerRecord,
    TopicRecord,
    UserScramCredentialRecord,
)
from streambus.raft.batches import decode_batches, encode_batches
from streambus.raft.messages import Batch

__all__ = ["image_records", "encode_snapshot", "decode_snapshot", "IMAGE_FIELDS_COVERED"]

#: The MetadataImage fields this module writes (a test compares it with the dataclass).
IMAGE_FIELDS_COVERED = frozenset({
    "offset", "topics_by_name", "topics_by_id", "configs", "brokers", "features",
    "next_producer_id", "acls", "scram_credentials",
})
RECORDS_PER_BATCH = 1000


def image_records(image: MetadataImage) -> list[Any]:
    """Records that rebuild ``image`` from an empty one."""
    records: list[Any] = []
    for name, level in sorted(image.features.items()):
        records.append(FeatureLevelRecord(name=name, feature_level=level))
    for broker in sorted(image.brokers.values(), key=lambda b: b.broker_id):
        records.append(RegisterBrokerRecord(
            broker_id=broker.broker_id, incarnation_id=broker.incarnation_id,
            broker_epoch=broker.broker_epoch, rack=broker.rack, fenced=broker.fenced,
            end_points=[RegisterBrokerRecord.BrokerEndpoint(
                name=name, host=host, port=port, security_protocol=protocol)
                for name, host, port, protocol in broker.endpoints]))
    for topic in sorted(image.topics_by_name.values(), key=lambda t: t.name):
        records.append(TopicRecord(name=topic.name, topic_id=topic.topic_id))
        for partition in sorted(topic.partitions.values(), key=lambda p: p.partition_index):
            records.append(PartitionRecord(
                partition_id=partition.partition_index, topic_id=topic.topic_id,
                replicas=list(partition.replicas), isr=list(partition.isr),
                leader=partition.leader, leader_epoch=partition.leader_epoch,
                partition_epoch=partition.partition_epoch))
    for (resource_type, resource_name), values in sorted(image.configs.items()):
        for name, value in sorted(values.items()):
            records.append(ConfigRecord(resource_type=resource_type,
                                        resource_name=resource_name, name=name, value=value))
    if image.next_producer_id:
        records.append(ProducerIdsRecord(broker_id=-1, broker_epoch=-1,
                                         next_producer_id=image.next_producer_id))
    for acl_id, binding in sorted(getattr(image, "acls", {}).items(),
                                  key=lambda item: str(item[0])):
        records.append(AccessControlEntryRecord(
            id=acl_id, resource_type=int(binding.resource_type),
            resource_name=binding.resource_name, pattern_type=int(binding.pattern_type),
            principal=binding.principal, host=binding.host,
            operation=int(binding.operation), permission_type=int(binding.permission_type)))
    for (user, mechanism), credential in sorted(getattr(image, "scram_credentials", {}).items()):
        records.append(UserScramCredentialRecord(
            name=user, mechanism=_mechanism_code(mechanism), salt=credential.salt,
            stored_key=credential.stored_key, server_key=credential.server_key,
            iterations=credential.iterations))
    return records


def _mechanism_code(mechanism: str) -> int:
    from streambus.security.users import MECHANISM_CODES

    return MECHANISM_CODES[mechanism]


def encode_snapshot(image: MetadataImage, epoch: int, timestamp_ms: int,
                    encode_record: Callable[[Any], bytes]) -> bytes:
    """The bytes of a snapshot of ``image`` (which is as of offset ``image.offset``)."""
    values = [encode_record(record) for record in image_records(image)]
    batches = []
    for start in range(0, len(values), RECORDS_PER_BATCH):
        chunk = tuple(values[start:start + RECORDS_PER_BATCH])
        batches.append(Batch(start, epoch, chunk))
    return encode_batches(batches, timestamp_ms)


def decode_snapshot(data: bytes, offset: int,
                    decode_record: Callable[[bytes], Any]) -> MetadataImage:
    """The image a snapshot describes, as of log offset ``offset`` (its end offset - 1)."""
    records: list[Any] = []
    for batch in decode_batches(data):
        records.extend(decode_record(value) for value in batch.records)
    return apply_records(EMPTY_IMAGE, records, offset)
