"""Malformed bytes from a peer raise RemoteProtocolError and nothing else.

Goal: the decoders are the broker's first contact with untrusted input, so every
failure must surface as RemoteProtocolError (never IndexError, struct.error or
UnicodeDecodeError), and absurd lengths must be rejected before anything is
allocated.

Method: encode a few realistic messages, then decode every truncated prefix;
hand-craft headers claiming huge or negative lengths, invalid UTF-8 and over-long
varints; and let Hypothesis throw random bytes at a spread of decoders.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streambus.protocol import codec, messages
from streambus.protocol.errors import RemoteProtocolError
from streambus.protocol.primitives import decode_uvarint, decode_varlong


def _produce_request() -> messages.ProduceRequest:
    return messages.ProduceRequest(
        transactional_id="txn",
        acks=-1,
        timeout_ms=1500,
        topic_data=[
            messages.ProduceRequest.TopicProduceData(
                name="orders", partition_data=[messages.ProduceRequest.PartitionProduceData(index=2, records=b"r" * 40)]
            )
        ],
    )


def _metadata_response() -> messages.MetadataResponse:
    partition = messages.MetadataResponse.MetadataResponsePartition(partition_index=0, replica_nodes=[1, 2], isr_nodes=[1])
    return messages.MetadataResponse(
        brokers=[messages.MetadataResponse.MetadataResponseBroker(node_id=1, host="h", port=9092)],
        cluster_id="c",
        topics=[messages.MetadataResponse.MetadataResponseTopic(name="t", partitions=[partition])],
    )


def _fetch_response(version: int) -> messages.FetchResponse:
    partition = messages.FetchResponse.PartitionData(partition_index=0, records=b"x" * 10)
    if version >= 12:  # current_leader is a tagged field from v12 and not ignorable
        partition.current_leader = messages.FetchResponse.LeaderIdAndEpoch(leader_id=1, leader_epoch=2)
    return messages.FetchResponse(
        responses=[messages.FetchResponse.FetchableTopicResponse(topic="t", partitions=[partition])]
    )


TRUNCATION_CASES = [
    pytest.param(messages.ProduceRequest, version, _produce_request(), id=f"ProduceRequest-v{version}")
    for version in (3, 7, 9, 11)
] + [
    pytest.param(messages.MetadataResponse, version, _metadata_response(), id=f"MetadataResponse-v{version}")
    for version in (1, 9, 12)
] + [
    pytest.param(messages.FetchResponse, version, _fetch_response(version), id=f"FetchResponse-v{version}")
    for version in (4, 12, 16)
]


@pytest.mark.parametrize(("cls", "version", "msg"), TRUNCATION_CASES)
def test_every_truncation_raises_remote_protocol_error(cls: type, version: int, msg: object) -> None:
    """Each strict prefix of a valid encoding fails with RemoteProtocolError."""
    data = codec.encode(msg, version)
    for cut in range(len(data)):
        with pytest.raises(RemoteProtocolError):
            codec.decode(cls, version, data[:cut])
        with pytest.raises(RemoteProtocolError):
            codec.decode(cls, version, memoryview(data)[:cut])


def test_huge_array_length_fails_before_allocating() -> None:
    """A 4-byte input claiming 2**31 - 1 array elements is rejected at once."""
    # SaslHandshakeResponse v0: error_code int16, mechanisms []string.
    data = struct.pack(">hi", 0, 2**31 - 1)
    with pytest.raises(RemoteProtocolError, match="array"):
        codec.decode(messages.SaslHandshakeResponse, 0, data)
    # MetadataRequest v1 is just an int32 array count.
    with pytest.raises(RemoteProtocolError, match="array"):
        codec.decode(messages.MetadataRequest, 1, struct.pack(">i", 2**31 - 1))


def test_huge_compact_array_length_fails_before_allocating() -> None:
    """A flexible (compact) array claiming ~2**32 elements is rejected at once."""
    # MetadataRequest v12: topics compact array; 0xffffffff as uvarint.
    data = b"\xff\xff\xff\xff\x0f"
    with pytest.raises(RemoteProtocolError):
        codec.decode(messages.MetadataRequest, 12, data)


def test_negative_lengths_are_rejected_for_non_nullable_fields() -> None:
    """-2 string lengths, -1 for non-nullable strings and -5 array lengths raise RemoteProtocolError."""
    # SaslHandshakeRequest v0: mechanism string (not nullable).
    for length in (-1, -2, -32768):
        with pytest.raises(RemoteProtocolError):
            codec.decode(messages.SaslHandshakeRequest, 0, struct.pack(">h", length))
    with pytest.raises(RemoteProtocolError):
        codec.decode(messages.SaslHandshakeResponse, 0, struct.pack(">hi", 0, -5))


def test_nullable_string_accepts_minus_one_as_null() -> None:
    """A nullable string with length -1 decodes to None (ProduceRequest.transactional_id)."""
    body = struct.pack(">hhii", -1, 1, 100, 0)
    decoded, end = codec.decode(messages.ProduceRequest, 3, body)
    assert decoded.transactional_id is None and end == len(body)


def test_invalid_utf8_raises_remote_protocol_error() -> None:
    """Strings must be valid UTF-8."""
    data = struct.pack(">h", 2) + b"\xff\xfe"
    with pytest.raises(RemoteProtocolError):
        codec.decode(messages.SaslHandshakeRequest, 0, data)


def test_over_long_varints_are_rejected() -> None:
    """Unsigned varints longer than 5 bytes and varlongs longer than 10 bytes raise RemoteProtocolError."""
    with pytest.raises(RemoteProtocolError):
        decode_uvarint(b"\x80\x80\x80\x80\x80\x01", 0)
    with pytest.raises(RemoteProtocolError):
        decode_varlong(b"\x80" * 10 + b"\x01", 0)
    # A 6-byte compact string length inside a flexible message.
    with pytest.raises(RemoteProtocolError):
        codec.decode(messages.ApiVersionsRequest, 3, b"\x80\x80\x80\x80\x80\x01")


def test_tagged_field_overrunning_the_buffer_is_rejected() -> None:
    """A tagged field whose declared size passes the end of the input raises RemoteProtocolError."""
    data = codec.encode(messages.ApiVersionsRequest(), 3)[:-1] + b"\x01\x00\x7f"
    with pytest.raises(RemoteProtocolError):
        codec.decode(messages.ApiVersionsRequest, 3, data)


def test_unknown_version_is_a_remote_error() -> None:
    """Decoding a version the schema does not define is the peer's fault."""
    with pytest.raises(RemoteProtocolError):
        codec.decode_request(18, 99, b"")
    with pytest.raises(RemoteProtocolError):
        codec.decode_request(9999, 0, b"")


FUZZ_TARGETS = [
    (messages.ProduceRequest, 9),
    (messages.ProduceRequest, 7),
    (messages.FetchRequest, 12),
    (messages.MetadataRequest, 12),
    (messages.ApiVersionsRequest, 3),
    (messages.JoinGroupRequest, 7),
    (messages.CreateTopicsRequest, 7),
    (messages.ConsumerGroupHeartbeatResponse, 0),
    (messages.DescribeTopicPartitionsRequest, 0),
]


@settings(max_examples=300, deadline=None, database=None)
@given(data=st.binary(max_size=64), target=st.sampled_from(FUZZ_TARGETS))
def test_random_bytes_raise_only_remote_protocol_error(data: bytes, target: tuple[type, int]) -> None:
    """Random input either decodes or raises RemoteProtocolError."""
    cls, version = target
    try:
        codec.decode(cls, version, data)
    except RemoteProtocolError:
        pass
