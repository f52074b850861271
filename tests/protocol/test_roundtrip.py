"""Every generated class round-trips through the codec at every version it supports.

Goal: decode(encode(x)) == x for each api key x version (requests and responses),
the non-API message structures, and the metadata and coordinator records, with
values covering the full range of each wire type (nulls, negative ints, unicode,
empty and non-empty arrays, nested and tagged structs).

Method: a Hypothesis strategy is derived from each class's generated FIELDS
table for one version: fields the version carries get arbitrary values of their
type (None only where the field is nullable in that version); fields it lacks stay
at their defaults, because the wire cannot carry them. A few examples per
(class, version) keep the whole file well under a minute.
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streambus.protocol import codec, coordinator_records, messages, metadata_records
from streambus.protocol.codec import FieldSpec
from streambus.protocol.errors import LocalProtocolError

_INT_BOUNDS = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
}


def _scalar(element: str) -> st.SearchStrategy:
    if element in _INT_BOUNDS:
        low, high = _INT_BOUNDS[element]
        return st.integers(low, high)
    if element == "bool":
        return st.booleans()
    if element == "float64":
        return st.floats(allow_nan=False)
    if element == "string":
        return st.text(max_size=12)
    if element in ("bytes", "records"):
        return st.binary(max_size=24)
    if element == "uuid":
        return st.one_of(st.just(codec.ZERO_UUID), st.uuids())
    raise AssertionError(element)


def _field(spec: FieldSpec, version: int, depth: int) -> st.SearchStrategy:
    if spec.is_array:
        element = message_strategy(spec.struct, version, depth + 1) if spec.struct else _scalar(spec.element)
        strategy = st.lists(element, max_size=3 if depth < 2 else 1)
    elif spec.struct is not None:
        strategy = message_strategy(spec.struct, version, depth + 1)
    else:
        strategy = _scalar(spec.element)
    if spec.nullable(version):
        strategy = st.one_of(st.none(), strategy)
    return strategy


def message_strategy(cls: type, version: int, depth: int = 0) -> st.SearchStrategy:
    """Instances of ``cls`` whose every field is representable at ``version``."""
    kwargs = {spec.attr: _field(spec, version, depth) for spec in codec.field_specs(cls) if spec.present(version)}
    return st.builds(cls, **kwargs)


def _all_classes() -> list[type]:
    classes = []
    for module in (messages, metadata_records, coordinator_records):
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type) and hasattr(obj, "FIELDS"):
                classes.append(obj)
    return classes


CASES = [
    pytest.param(cls, version, id=f"{cls.__name__}-v{version}")
    for cls in _all_classes()
    for version in range(cls.VALID_VERSIONS[0], cls.VALID_VERSIONS[1] + 1)
]


def test_every_api_key_and_version_is_covered() -> None:
    """Every request and response version from the specs is in the round-trip table."""
    covered = {(cls, version) for cls, version in (p.values for p in CASES)}
    for table in (messages.REQUESTS, messages.RESPONSES):
        for cls in table.values():
            low, high = cls.VALID_VERSIONS
            assert all((cls, v) in covered for v in range(low, high + 1))
    assert len(messages.REQUESTS) == len(messages.RESPONSES) >= 80


@pytest.mark.parametrize(("cls", "version"), CASES)
def test_roundtrip_preserves_every_field(cls: type, version: int) -> None:
    """decode(encode(x)) == x and consumes exactly the encoded bytes."""

    @settings(max_examples=4, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(msg=message_strategy(cls, version))
    def check(msg: object) -> None:
        data = codec.encode(msg, version)
        decoded, end = codec.decode(cls, version, data)
        assert end == len(data)
        assert decoded == msg
        # memoryview input goes through the other decoder variant and must agree.
        assert codec.decode(cls, version, memoryview(data))[0] == msg

    check()


@pytest.mark.parametrize(("cls", "version"), CASES)
def test_default_instance_roundtrips(cls: type, version: int) -> None:
    """A default-constructed message encodes at every version and decodes back equal."""
    msg = cls()
    decoded, end = codec.decode(cls, version, codec.encode(msg, version))
    assert decoded == msg


def test_records_decode_as_zero_copy_memoryview() -> None:
    """Produce records come back as a slice of the input buffer, not a copy."""
    request = messages.ProduceRequest(
        acks=-1,
        timeout_ms=1000,
        topic_data=[
            messages.ProduceRequest.TopicProduceData(
                name="t", partition_data=[messages.ProduceRequest.PartitionProduceData(index=0, records=b"\x01" * 100)]
            )
        ],
    )
    data = bytearray(codec.encode(request, 9))
    decoded, _ = codec.decode(messages.ProduceRequest, 9, data)
    records = decoded.topic_data[0].partition_data[0].records
    assert isinstance(records, memoryview)
    assert records.obj is data
    assert records == b"\x01" * 100


def test_null_records_decode_as_none() -> None:
    """A null records field (length -1) decodes to None at flexible and classic versions."""
    partition = messages.FetchResponse.PartitionData(partition_index=3, records=None)
    response = messages.FetchResponse(
        responses=[messages.FetchResponse.FetchableTopicResponse(topic="t", partitions=[partition])]
    )
    for version in (4, 11, 12):
        decoded, _ = codec.decode(messages.FetchResponse, version, codec.encode(response, version))
        assert decoded.responses[0].partitions[0].records is None


def test_encode_parts_hands_large_records_through_uncopied() -> None:
    """encode_parts returns the records buffer itself, and the parts join to encode()'s bytes."""
    blob = memoryview(bytes(range(256)) * 256)
    response = messages.FetchResponse(
        responses=[
            messages.FetchResponse.FetchableTopicResponse(
                topic="t", partitions=[messages.FetchResponse.PartitionData(partition_index=0, records=blob)]
            )
        ]
    )
    parts = codec.encode_parts(response, 12)
    assert any(part is blob for part in parts)
    assert b"".join(parts) == codec.encode(response, 12)


def test_non_ignorable_field_missing_from_version_raises_local_error() -> None:
    """Setting a field the target version lacks raises LocalProtocolError unless it is ignorable."""
    # ProduceRequest.transactional_id exists only from v3 and is not ignorable.
    request = messages.ProduceRequest(transactional_id="txn-1")
    with pytest.raises(LocalProtocolError, match="transactional_id"):
        codec.encode(request, 2)
    assert codec.decode(messages.ProduceRequest, 3, codec.encode(request, 3))[0] == request


def test_ignorable_field_missing_from_version_is_dropped() -> None:
    """An ignorable field is silently omitted by versions that lack it and decodes as its default."""
    # ProduceResponse.PartitionProduceResponse.error_message is ignorable and starts at v8.
    partition = messages.ProduceResponse.PartitionProduceResponse(index=1, error_message="boom")
    response = messages.ProduceResponse(
        responses=[messages.ProduceResponse.TopicProduceResponse(name="t", partition_responses=[partition])]
    )
    decoded, _ = codec.decode(messages.ProduceResponse, 7, codec.encode(response, 7))
    assert decoded.responses[0].partition_responses[0].error_message is None
    assert dataclasses.replace(partition, error_message=None) == decoded.responses[0].partition_responses[0]


def test_tagged_field_is_written_only_when_it_differs_from_its_default() -> None:
    """FetchResponse v12 partitions carry current_leader as tag 1 only when it is set."""
    partition = messages.FetchResponse.PartitionData(partition_index=0, records=b"")
    response = messages.FetchResponse(
        responses=[messages.FetchResponse.FetchableTopicResponse(topic="t", partitions=[partition])]
    )
    plain = codec.encode(response, 12)
    partition.current_leader = messages.FetchResponse.LeaderIdAndEpoch(leader_id=2, leader_epoch=9)
    tagged = codec.encode(response, 12)
    # tag 1, size 9 (two int32 + empty tag section), then the struct.
    assert len(tagged) == len(plain) + 2 + 9
    decoded, _ = codec.decode(messages.FetchResponse, 12, tagged)
    assert decoded == response


def test_unknown_tagged_fields_are_skipped() -> None:
    """A tag the schema does not know (from a newer peer) is skipped, not rejected."""
    request = messages.ApiVersionsRequest(client_software_name="c", client_software_version="1")
    data = codec.encode(request, 3)
    assert data.endswith(b"\x00")
    # Replace the empty top-level tag section with one unknown tag 99 of 3 bytes.
    patched = data[:-1] + b"\x01\x63\x03abc"
    assert codec.decode(messages.ApiVersionsRequest, 3, patched) == (request, len(patched))


def test_uuid_fields_default_to_the_zero_uuid() -> None:
    """uuid fields default to ZERO_UUID and decode to the same instance when zero."""
    topic = messages.MetadataResponse.MetadataResponseTopic(name="t")
    assert topic.topic_id == uuid.UUID(int=0) == codec.ZERO_UUID
    response = messages.MetadataResponse(topics=[topic])
    decoded, _ = codec.decode(messages.MetadataResponse, 12, codec.encode(response, 12))
    assert decoded.topics[0].topic_id is codec.ZERO_UUID


def test_request_and_response_entry_points_check_the_message_class() -> None:
    """encode_request refuses a response object; decode_request resolves the class by api key."""
    request = messages.ApiVersionsRequest()
    with pytest.raises(LocalProtocolError):
        codec.encode_request(18, 0, messages.ApiVersionsResponse())
    data = codec.encode_request(18, 3, request)
    assert codec.decode_request(18, 3, data) == request
    response = messages.ApiVersionsResponse(error_code=35)
    assert codec.decode_response(18, 0, codec.encode_response(18, 0, response)) == response


def test_coordinator_and_metadata_record_tables_point_at_generated_classes() -> None:
    """Record-type tables map to the generated key/value classes."""
    assert coordinator_records.GROUP_COORDINATOR_RECORDS[1] == (
        coordinator_records.OffsetCommitKey,
        coordinator_records.OffsetCommitValue,
    )
    assert coordinator_records.GROUP_COORDINATOR_RECORDS[2][0] is coordinator_records.GroupMetadataKey
    assert coordinator_records.TRANSACTION_LOG_RECORDS[0][0] is coordinator_records.TransactionLogKey
    assert metadata_records.METADATA_RECORDS[2] is metadata_records.TopicRecord
    assert metadata_records.METADATA_RECORDS[3] is metadata_records.PartitionRecord


@pytest.mark.parametrize(
    "msg",
    [
        messages.SaslHandshakeRequest(mechanism=None),  # non-nullable string set to None
        messages.ProduceRequest(acks=1 << 15),  # int16 out of range
        messages.MetadataRequest(topics=[messages.MetadataRequest.MetadataRequestTopic(name="\ud800")]),  # lone surrogate
    ],
    ids=["null-in-non-nullable", "int16-overflow", "unencodable-string"],
)
def test_values_the_wire_cannot_carry_raise_local_protocol_error(msg: object) -> None:
    """Encoding errors surface as LocalProtocolError, never as TypeError/struct.error."""
    with pytest.raises(LocalProtocolError):
        codec.encode(msg, 1)


def test_encoding_an_unknown_version_raises_local_protocol_error() -> None:
    """Versions outside VALID_VERSIONS are refused before any bytes are produced."""
    with pytest.raises(LocalProtocolError, match="no version 99"):
        codec.encode(messages.ApiVersionsRequest(), 99)


@pytest.mark.parametrize("version", [1, 9, 12])
def test_long_arrays_and_strings_take_the_general_path_and_roundtrip(version: int) -> None:
    """Elements with >= 127 entries (multi-byte compact lengths) still encode correctly."""
    partition = messages.MetadataResponse.MetadataResponsePartition(
        partition_index=1, replica_nodes=list(range(300)), isr_nodes=[5] * 130, offline_replicas=[]
    )
    broker = messages.MetadataResponse.MetadataResponseBroker(node_id=1, host="h" * 200, port=1)
    response = messages.MetadataResponse(
        brokers=[broker], topics=[messages.MetadataResponse.MetadataResponseTopic(name="t", partitions=[partition] * 2)]
    )
    decoded, _ = codec.decode(messages.MetadataResponse, version, codec.encode(response, version))
    assert decoded == response
