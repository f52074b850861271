"""Metadata image and controller: records applied to an image give the cluster they describe.

Method: build records with the pure controller functions, apply them with apply_records, and
compare the resulting image (and the untouched previous image) with what Kafka's KRaft would
show; error paths raise ControllerError with Kafka's codes.
"""

import uuid

import pytest

from streambus.metadata import controller
from streambus.metadata.controller import ControllerError, TopicSpec
from streambus.metadata.image import EMPTY_IMAGE, apply_records
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.metadata_records import ConfigRecord


def _create(image, name, partitions=3, replication=1, brokers=(1,), configs=None):
    records, _, _ = controller.create_topic(
        image, TopicSpec(name=name, num_partitions=partitions, replication_factor=replication,
                         configs=configs),
        usable_broker_ids=list(brokers), default_num_partitions=2,
        default_replication_factor=1)
    return apply_records(image, records, image.offset + len(records))


def test_created_topic_has_every_partition_led_by_a_replica() -> None:
    image = _create(EMPTY_IMAGE, "orders", partitions=4, replication=2, brokers=(1, 2, 3))
    topic = image.topics_by_name["orders"]
    assert image.topics_by_id[topic.topic_id] is topic
    assert sorted(topic.partitions) == [0, 1, 2, 3]
    leaders = [p.leader for p in topic.partitions.values()]
    assert len(set(leaders)) == 3  # leaders spread over brokers
    for p in topic.partitions.values():
        assert p.leader == p.replicas[0] and len(p.replicas) == 2 and p.isr == p.replicas


def test_applying_records_never_mutates_the_previous_image() -> None:
    before = _create(EMPTY_IMAGE, "a")
    after = _create(before, "b")
    assert set(before.topics_by_name) == {"a"}
    assert set(after.topics_by_name) == {"a", "b"}


def test_defaults_apply_when_partitions_and_replication_are_minus_one() -> None:
    image = _create(EMPTY_IMAGE, "d", partitions=-1, replication=-1)
    assert len(image.topics_by_name["d"].partitions) == 2


def test_delete_removes_topic_and_its_configs() -> None:
    image = _create(EMPTY_IMAGE, "gone", configs={"retention.ms": "1000"})
    assert image.topic_configs("gone") == {"retention.ms": "1000"}
    records, name, topic_id = controller.delete_topic(image, name="gone")
    image = apply_records(image, records, image.offset + 1)
    assert "gone" not in image.topics_by_name and topic_id not in image.topics_by_id
    assert image.topic_configs("gone") == {}


def test_config_record_with_null_value_deletes_the_config() -> None:
    image = _create(EMPTY_IMAGE, "t", configs={"retention.ms": "1000"})
    image = apply_records(image, [ConfigRecord(resource_type=2, resource_name="t",
                                               name="retention.ms", value=None)], 99)
    assert image.topic_configs("t") == {}


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        (TopicSpec("exists", 1, 1), ErrorCode.TOPIC_ALREADY_EXISTS),
        (TopicSpec("bad name!", 1, 1), ErrorCode.INVALID_TOPIC_EXCEPTION),
        (TopicSpec("..", 1, 1), ErrorCode.INVALID_TOPIC_EXCEPTION),
        (TopicSpec("x" * 250, 1, 1), ErrorCode.INVALID_TOPIC_EXCEPTION),
        (TopicSpec("ex_ists", 1, 1), ErrorCode.INVALID_TOPIC_EXCEPTION),  # collides with ex.ists
        (TopicSpec("zero", 0, 1), ErrorCode.INVALID_PARTITIONS),
        (TopicSpec("rf", 1, 3), ErrorCode.INVALID_REPLICATION_FACTOR),
        (TopicSpec("cfg", 1, 1, configs={"no.such.config": "1"}), ErrorCode.INVALID_CONFIG),
        (TopicSpec("cfg2", 1, 1, configs={"retention.ms": "soon"}), ErrorCode.INVALID_CONFIG),
        (TopicSpec("cfg3", 1, 1, configs={"cleanup.policy": "shred"}), ErrorCode.INVALID_CONFIG),
    ],
    ids=lambda v: getattr(v, "name", str(v)),
)
def test_invalid_topics_are_refused_with_kafkas_error(spec: TopicSpec, code: ErrorCode) -> None:
    image = _create(_create(EMPTY_IMAGE, "exists"), "ex.ists")
    with pytest.raises(ControllerError) as raised:
        controller.create_topic(image, spec, usable_broker_ids=[1], default_num_partitions=1,
                                default_replication_factor=1)
    assert raised.value.error_code == code


def test_deleting_unknown_topic_reports_unknown() -> None:
    with pytest.raises(ControllerError) as by_name:
        controller.delete_topic(EMPTY_IMAGE, name="nope")
    with pytest.raises(ControllerError) as by_id:
        controller.delete_topic(EMPTY_IMAGE, topic_id=uuid.uuid4())
    assert by_name.value.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert by_id.value.error_code == ErrorCode.UNKNOWN_TOPIC_ID


def test_producer_id_blocks_never_overlap() -> None:
    image = EMPTY_IMAGE
    starts = []
    for _ in range(3):
        records, first = controller.allocate_producer_ids(image, broker_id=1)
        image = apply_records(image, records, image.offset + 1)
        starts.append(first)
    assert starts == [0, controller.PRODUCER_ID_BLOCK_SIZE, 2 * controller.PRODUCER_ID_BLOCK_SIZE]
