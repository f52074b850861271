"""Request header v0-2 and response header v0-1, including the ApiVersions special cases.

Goal: the broker must read the correlation id of any request (even one it cannot
serve) and answer with the header layout the client expects.

Method: a table of (api key, version) -> expected header versions drives the
version functions; golden byte strings pin the layouts; truncations of a valid
header must raise RemoteProtocolError.
"""

from __future__ import annotations

import pytest

from streambus.protocol import codec, headers, messages
from streambus.protocol.api_keys import ApiKey
from streambus.protocol.errors import RemoteProtocolError

HEADER_VERSIONS = [
    # (api key, api version, request header version, response header version)
    (ApiKey.PRODUCE, 7, 1, 0),
    (ApiKey.PRODUCE, 9, 2, 1),
    (ApiKey.FETCH, 11, 1, 0),
    (ApiKey.FETCH, 12, 2, 1),
    (ApiKey.METADATA, 8, 1, 0),
    (ApiKey.METADATA, 9, 2, 1),
    (ApiKey.API_VERSIONS, 0, 1, 0),
    (ApiKey.API_VERSIONS, 2, 1, 0),
    (ApiKey.API_VERSIONS, 3, 2, 0),  # KIP-511: ApiVersions responses stay header v0
    (ApiKey.API_VERSIONS, 4, 2, 0),
    (ApiKey.CONTROLLED_SHUTDOWN, 0, 0, 0),
    (ApiKey.SASL_AUTHENTICATE, 2, 2, 1),
    (ApiKey.DESCRIBE_CLUSTER, 0, 2, 1),
]


@pytest.mark.parametrize(("api_key", "api_version", "request_version", "response_version"), HEADER_VERSIONS)
def test_header_versions_follow_flexibility(
    api_key: int, api_version: int, request_version: int, response_version: int
) -> None:
    """Flexible APIs use request header v2 / response header v1, except ApiVersions responses."""
    assert headers.request_header_version(api_key, api_version) == request_version
    assert headers.response_header_version(api_key, api_version) == response_version


def test_unknown_api_key_or_version_reads_as_header_v1() -> None:
    """Unknown keys and out-of-range versions decode as v1 so the broker can still answer."""
    assert headers.request_header_version(9999, 0) == 1
    assert headers.request_header_version(ApiKey.API_VERSIONS, 99) == 1
    frame = b"\x00\x12\x00\x63\x00\x00\x00\x07\x00\x03cli" + b"garbage"
    header, body_offset = headers.decode_request_header(frame)
    assert header == headers.RequestHeader(18, 99, 7, "cli", 1)
    assert body_offset == 13


def test_api_versions_v3_request_uses_header_v2_with_non_compact_client_id() -> None:
    """ApiVersions v3: int16-length client_id, then the tagged-field section, then the compact body."""
    body = codec.encode(messages.ApiVersionsRequest(client_software_name="kp", client_software_version="3"), 3)
    frame = headers.encode_request_header(ApiKey.API_VERSIONS, 3, 42, "my-client") + body
    assert frame[:19] == b"\x00\x12\x00\x03\x00\x00\x00\x2a\x00\x09my-client"
    assert frame[19:20] == b"\x00"  # empty tagged fields
    header, body_offset = headers.decode_request_header(frame)
    assert header == headers.RequestHeader(ApiKey.API_VERSIONS, 3, 42, "my-client", 2)
    assert body_offset == 20
    request = codec.decode_request(ApiKey.API_VERSIONS, 3, frame, body_offset)
    assert request == messages.ApiVersionsRequest(client_software_name="kp", client_software_version="3")


def test_api_versions_v3_response_header_is_v0() -> None:
    """The response header for ApiVersions v3 is just the correlation id."""
    version = headers.response_header_version(ApiKey.API_VERSIONS, 3)
    assert headers.encode_response_header(42, version) == b"\x00\x00\x00\x2a"


def test_response_header_v1_appends_empty_tagged_fields() -> None:
    """Response header v1 is the correlation id followed by 0x00."""
    assert headers.encode_response_header(7, 1) == b"\x00\x00\x00\x07\x00"
    assert headers.decode_response_header(b"\x00\x00\x00\x07\x00body", 1) == (7, 5)
    assert headers.decode_response_header(b"\x00\x00\x00\x07body", 0) == (7, 4)


def test_null_client_id_roundtrips() -> None:
    """A null client_id is int16 -1 on the wire and None after decoding."""
    frame = headers.encode_request_header(ApiKey.METADATA, 4, 1, None)
    assert frame == b"\x00\x03\x00\x04\x00\x00\x00\x01\xff\xff"
    assert headers.decode_request_header(frame) == (headers.RequestHeader(3, 4, 1, None, 1), len(frame))


def test_controlled_shutdown_v0_header_has_no_client_id() -> None:
    """ControlledShutdown v0 used request header v0: no client_id at all."""
    frame = headers.encode_request_header(ApiKey.CONTROLLED_SHUTDOWN, 0, 5, "ignored")
    assert frame == b"\x00\x07\x00\x00\x00\x00\x00\x05"
    assert headers.decode_request_header(frame + b"\x00\x00\x00\x01") == (
        headers.RequestHeader(7, 0, 5, None, 0),
        8,
    )


def test_header_decode_honours_offset() -> None:
    """decode_request_header can start inside a larger buffer (after the size prefix)."""
    frame = b"\x00\x00\x00\x0c" + headers.encode_request_header(ApiKey.PRODUCE, 7, 9, "p")
    header, body_offset = headers.decode_request_header(frame, 4)
    assert header.correlation_id == 9 and body_offset == len(frame)


def test_unknown_header_tags_are_skipped() -> None:
    """Tagged fields in request header v2 that we do not know are skipped."""
    frame = b"\x00\x12\x00\x03\x00\x00\x00\x01\x00\x00" + b"\x01\x05\x02hi" + b"BODY"
    header, body_offset = headers.decode_request_header(frame)
    assert header.client_id == "" and frame[body_offset:] == b"BODY"


@pytest.mark.parametrize(
    "frame",
    [
        headers.encode_request_header(ApiKey.API_VERSIONS, 3, 42, "my-client"),
        headers.encode_request_header(ApiKey.PRODUCE, 7, 42, "producer"),
    ],
    ids=["v2", "v1"],
)
def test_truncated_request_header_raises_remote_protocol_error(frame: bytes) -> None:
    """Every strict prefix of a request header is rejected as the peer's fault."""
    for cut in range(len(frame)):
        with pytest.raises(RemoteProtocolError):
            headers.decode_request_header(frame[:cut])


def test_invalid_utf8_client_id_raises_remote_protocol_error() -> None:
    """client_id must be UTF-8."""
    with pytest.raises(RemoteProtocolError):
        headers.decode_request_header(b"\x00\x03\x00\x04\x00\x00\x00\x01\x00\x01\xff")


def test_generated_header_classes_agree_with_handwritten_headers() -> None:
    """The spec's RequestHeader v2 (via the codec) and headers.py produce the same bytes."""
    generated = messages.RequestHeader(
        request_api_key=18, request_api_version=3, correlation_id=42, client_id="my-client"
    )
    assert codec.encode(generated, 2) == headers.encode_request_header(18, 3, 42, "my-client")
    assert codec.encode(messages.ResponseHeader(correlation_id=7), 1) == headers.encode_response_header(7, 1)
