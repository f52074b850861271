"""Metadata snapshots rebuild the image they were taken from, and the store uses them.

Method: build a rich image with the pure controller ops, encode it as a snapshot, decode it and
compare whole images; a guard fails when MetadataImage grows a field the snapshot writer does
not know.  Then a one-voter MetadataStore with a tiny snapshot threshold snapshots, trims its
log and reopens from the snapshot to the same image.
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

from streambus.metadata import controller
from streambus.metadata.controller import TopicSpec
from streambus.metadata.image import EMPTY_IMAGE, MetadataImage, apply_records
from streambus.metadata.store import MetadataStore, decode_metadata_record, encode_metadata_record
from streambus.protocol.metadata_records import (
    ConfigRecord,
    FeatureLevelRecord,
    RegisterBrokerRecord,
)
from streambus.raft.metadata.snapshot import IMAGE_FIELDS_COVERED, decode_snapshot, encode_snapshot
from streambus.raft.settings import QuorumSettings


def _rich_image() -> MetadataImage:
    records: list[object] = [
        FeatureLevelRecord(name="metadata.version", feature_level=21),
        RegisterBrokerRecord(broker_id=1, incarnation_id=uuid.uuid4(), broker_epoch=3,
                             end_points=[RegisterBrokerRecord.BrokerEndpoint(
                                 name="PLAINTEXT", host="h", port=9092, security_protocol=0)],
                             rack="r1", fenced=False),
        ConfigRecord(resource_type=4, resource_name="", name="log.retention.ms", value="5"),
    ]
    image = apply_records(EMPTY_IMAGE, records, 2)
    for name in ("orders", "payments"):
        topic_records, _, _ = controller.create_topic(
            image, TopicSpec(name=name, num_partitions=3, replication_factor=1,
                             configs={"retention.ms": "1000"}),
            usable_broker_ids=[1], default_num_partitions=1, default_replication_factor=1)
        image = apply_records(image, topic_records, image.offset + len(topic_records))
    pid_records, _ = controller.allocate_producer_ids(image, 1)
    return apply_records(image, pid_records, image.offset + 1)


def test_every_image_field_has_a_snapshot_writer() -> None:
    fields = {field.name for field in dataclasses.fields(MetadataImage)}
    assert fields <= IMAGE_FIELDS_COVERED, fields - IMAGE_FIELDS_COVERED


def test_a_snapshot_rebuilds_the_image() -> None:
    image = _rich_image()
    data = encode_snapshot(image, epoch=3, timestamp_ms=0, encode_record=encode_metadata_record)
    assert decode_snapshot(data, image.offset, decode_metadata_record) == image


def test_the_store_snapshots_trims_and_reopens_from_the_snapshot(tmp_path: Path) -> None:
    directory = tmp_path / "__cluster_metadata-0"
    quorum = QuorumSettings(node_id=1, voters={1: None}, snapshot_record_bytes=200)
    store = MetadataStore(directory, lambda: 1_700_000_000_000, quorum=quorum)
    store.open(clean_shutdown=True)
    for index in range(5):
        records, _, _ = controller.create_topic(
            store.image, TopicSpec(name=f"t{index}", num_partitions=2, replication_factor=1),
            usable_broker_ids=[1], default_num_partitions=1, default_replication_factor=1)
        store.commit(records)
    assert store.driver is not None and store.driver.node.snapshot_id is not None
    assert store.driver.node.log_start_offset > 0
    image = store.image
    store.close(clean=True)
    reopened = MetadataStore(directory, lambda: 1_700_000_000_000, quorum=quorum)
    reopened_image = reopened.open(clean_shutdown=True)
    # The new leader epoch's LeaderChangeMessage moved the offset on by one.
    assert reopened_image.offset == image.offset + 1
    assert dataclasses.replace(reopened_image, offset=image.offset) == image
    reopened.close()
