"""__consumer_offsets records: Kafka's byte layout, version choices, round trips, tombstones.

Method: golden bytes written by hand from the JSON schemas for the two classic records Kafka
clients and tools read (OffsetCommit, GroupMetadata), then a round trip of every record type
the coordinator writes.
"""

import uuid

import pytest

from streambus.coordinator.group import records as r
from streambus.coordinator.group.consumer import ConsumerMember
from streambus.coordinator.group.state import MemberState
from streambus.coordinator.result import CoordinatorRecord
from streambus.protocol.coordinator_records import GroupMetadataKey, OffsetCommitKey


def test_offset_commit_key_and_value_bytes_match_kafka_layout() -> None:
    record = r.offset_commit_record("g", "t", 3, r.OffsetAndMetadata(10, 5, "m", 123))
    key, value = r.encode_record(record)
    # key: int16 version 1 | group | topic | int32 partition
    assert key == b"\x00\x01" + b"\x00\x01g" + b"\x00\x01t" + b"\x00\x00\x00\x03"
    # value v3: offset int64 | leader_epoch int32 | metadata | commit_timestamp int64
    assert value == (b"\x00\x03" + (10).to_bytes(8, "big") + (5).to_bytes(4, "big")
                     + b"\x00\x01m" + (123).to_bytes(8, "big"))


def test_commit_with_expiry_is_written_as_value_v1() -> None:
    record = r.offset_commit_record("g", "t", 0, r.OffsetAndMetadata(7, -1, "", 100, 900))
    _, value = r.encode_record(record)
    assert value[:2] == b"\x00\x01"
    decoded = r.decode_record(*r.encode_record(record))
    assert r.offset_from_value(decoded.value) == r.OffsetAndMetadata(7, -1, "", 100, 900)


def test_group_metadata_key_is_type_2_and_tombstone_has_no_value() -> None:
    key, value = r.encode_record(r.group_metadata_tombstone("grp"))
    assert key == b"\x00\x02\x00\x03grp" and value is None
    assert r.decode_record(key, None) == CoordinatorRecord(GroupMetadataKey(group="grp"), None)


def _member() -> ConsumerMember:
    topic = uuid.UUID(int=7)
    return ConsumerMember(member_id="m", instance_id="i", client_id="c", client_host="/h",
                          subscribed_topic_names=frozenset({"t"}), rebalance_timeout_ms=5000,
                          member_epoch=3, previous_member_epoch=2,
                          state=MemberState.UNREVOKED_PARTITIONS,
                          assigned={topic: {0, 1}}, pending_revocation={topic: {2}})


RECORDS = [
    r.offset_commit_record("g", "t", 1, r.OffsetAndMetadata(1, 0, "meta", 5)),
    r.offset_commit_tombstone("g", "t", 1),
    r.group_metadata_tombstone("g"),
    r.consumer_group_epoch_record("g", 4),
    r.consumer_group_subscription_metadata_record("g", {"t": (uuid.UUID(int=7), 3)}),
    r.consumer_group_member_record("g", _member()),
    r.consumer_group_target_assignment_record("g", "m", {uuid.UUID(int=7): {0, 2}}),
    r.consumer_group_target_assignment_epoch_record("g", 4),
    r.consumer_group_current_assignment_record("g", _member()),
    r.consumer_group_current_assignment_tombstone("g", "m"),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda rec: type(rec.key).__name__ + (
    "-tombstone" if rec.value is None else ""))
def test_every_record_round_trips(record: CoordinatorRecord) -> None:
    assert r.decode_record(*r.encode_record(record)) == record


def test_share_group_and_unknown_record_types_are_skipped() -> None:
    assert r.decode_record(b"\x00\x0b\x00\x01g", None) is None  # ShareGroupMetadataKey
    assert r.decode_record(b"\x00\x63\x00\x01g", None) is None  # type 99


@pytest.mark.parametrize("key, value", [
    (b"\x00", None),
    (b"\x00\x01\x00\x05g", None),
    (r.encode_record(RECORDS[0])[0], b"\x00\x09" + b"\x00" * 30),
])
def test_malformed_records_raise_record_format_error(key: bytes, value: bytes | None) -> None:
    with pytest.raises(r.RecordFormatError):
        r.decode_record(key, value)


def test_offset_commit_key_v0_is_read_like_v1() -> None:
    key = b"\x00\x00" + b"\x00\x01g" + b"\x00\x01t" + b"\x00\x00\x00\x02"
    assert r.decode_record(key, None).key == OffsetCommitKey(group="g", topic="t", partition=2)
