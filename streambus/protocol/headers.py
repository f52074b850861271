"""Kafka request and response headers (request header v0-2, response header v0-1).

This module owns the bytes that sit between the 4-byte size prefix and the message
body. It never decodes bodies (``codec.py`` does) and never reads sockets.

Layouts (big-endian)::

    request header v0:  api_key int16 | api_version int16 | correlation_id int32
    request header v1:  v0 | client_id nullable STRING (int16 length, -1 = null)
    request header v2:  v1 | tagged fields (uvarint count, then tag/size/payload)
    response header v0: correlation_id int32
    response header v1: correlation_id int32 | tagged fields (0x00 when empty)

Which header a message uses follows from its api key and version: flexible
versions use request header v2 and response header v1, others v1 and v0. Two
exceptions: ``client_id`` stays a non-compact int16 STRING even in header v2 (the
spec pins it with ``"flexibleVersions": "none"`` so any broker can read it before
knowing the version), and ApiVersions responses always use header v0, even for
the flexible v3+ (KIP-511), so a client can parse the answer to a version the
broker does not know. ControlledShutdown v0 used request header v0.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from streambus.protocol.api_keys import REQUEST_FLEXIBLE_MIN, RESPONSE_FLEXIBLE_MIN, VALID_VERSIONS, ApiKey
from streambus.protocol.errors import LocalProtocolError, RemoteProtocolError
from streambus.protocol.primitives import decode_uvarint

__all__ = [
    "RequestHeader",
    "decode_request_header",
    "decode_response_header",
    "encode_request_header",
    "encode_response_header",
    "request_header_version",
    "response_header_version",
]

_FIXED = struct.Struct(">hhi")
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_EMPTY_TAGGED_FIELDS = b"\x00"


class RequestHeader(NamedTuple):
    """The decoded request header.

    Attributes:
        api_key: the int16 request type (may be one we do not know).
        api_version: the int16 version the client used.
        correlation_id: echoed back in the response header.
        client_id: the client's self-chosen id; None when null or absent (header v0).
        header_version: 0, 1 or 2, as chosen by ``request_header_version``.
    """

    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    header_version: int = 1


def _header_versions() -> tuple[dict[tuple[int, int], int], dict[tuple[int, int], int]]:
    # Precomputed per (api key, version): the header choice sits on every request's path.
    request: dict[tuple[int, int], int] = {}
    response: dict[tuple[int, int], int] = {}
    for api_key, (low, high) in VALID_VERSIONS.items():
        for api_version in range(low, high + 1):
            first = REQUEST_FLEXIBLE_MIN[api_key]
            request[(api_key, api_version)] = 2 if first is not None and api_version >= first else 1
            first = RESPONSE_FLEXIBLE_MIN[api_key]
            response[(api_key, api_version)] = 1 if first is not None and api_version >= first else 0
    # ControlledShutdown v0 predates client_id in the header.
    request[(int(ApiKey.CONTROLLED_SHUTDOWN), 0)] = 0
    # KIP-511: ApiVersions responses are always header v0 so any client can read them.
    for key in response:
        if key[0] == ApiKey.API_VERSIONS:
            response[key] = 0
    return request, response


_REQUEST_HEADER_VERSIONS, _RESPONSE_HEADER_VERSIONS = _header_versions()


def request_header_version(api_key: int, api_version: int) -> int:
    """Request header version for a request: 2 if flexible, else 1.

    Unknown api keys and versions outside the spec range get 1, so the broker can
    still read the correlation id and answer UNSUPPORTED_VERSION.
    """
    return _REQUEST_HEADER_VERSIONS.get((api_key, api_version), 1)


def response_header_version(api_key: int, api_version: int) -> int:
    """Response header version for a response: 1 if flexible, else 0.

    ApiVersions is always 0 (KIP-511); unknown keys and versions get 0.
    """
    return _RESPONSE_HEADER_VERSIONS.get((api_key, api_version), 0)


def _skip_tagged_fields(data: bytes | bytearray | memoryview, pos: int) -> int:
    count, pos = decode_uvarint(data, pos)
    for _ in range(count):
        _, pos = decode_uvarint(data, pos)
        size, pos = decode_uvarint(data, pos)
        pos += size
        if pos > len(data):
            raise RemoteProtocolError("tagged field in header overruns the frame")
    return pos


def decode_request_header(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[RequestHeader, int]:
    """Decode the request header at ``data[offset:]`` (the frame without its size prefix).

    Returns:
        ``(header, body_offset)``: the offset where the request body starts.

    Raises:
        RemoteProtocolError: the header is truncated, its client id is not UTF-8,
            or its tagged-field section is malformed.
    """
    end = len(data)
    if end - offset < _FIXED.size:
        raise RemoteProtocolError("request header truncated")
    api_key, api_version, correlation_id = _FIXED.unpack_from(data, offset)
    pos = offset + _FIXED.size
    header_version = _REQUEST_HEADER_VERSIONS.get((api_key, api_version), 1)
    client_id = None
    if header_version >= 1:
        if end - pos < 2:
            raise RemoteProtocolError("request header truncated in client_id")
        length = (data[pos] << 8) | data[pos + 1]
        pos += 2
        if length < 0x8000:  # a negative int16 length means null
            if pos + length > end:
                raise RemoteProtocolError("request header client_id overruns the frame")
            try:
                client_id = str(data[pos : pos + length], "utf-8")
            except UnicodeDecodeError as exc:
                raise RemoteProtocolError("request header client_id is not UTF-8") from exc
            pos += length
    if header_version >= 2:
        if pos < end and data[pos] == 0:
            pos += 1  # the usual empty tagged-field section
        else:
            pos = _skip_tagged_fields(data, pos)
    return RequestHeader(api_key, api_version, correlation_id, client_id, header_version), pos


def encode_request_header(api_key: int, api_version: int, correlation_id: int, client_id: str | None) -> bytes:
    """Encode a request header in the version the request needs (for our client and CLI).

    Raises:
        LocalProtocolError: a value does not fit its int16/int32 field.
    """
    header_version = request_header_version(api_key, api_version)
    try:
        out = _FIXED.pack(api_key, api_version, correlation_id)
        if header_version >= 1:
            if client_id is None:
                out += b"\xff\xff"
            else:
                raw = client_id.encode()
                out += _INT16.pack(len(raw)) + raw
    except struct.error as exc:
        raise LocalProtocolError(f"cannot encode request header: {exc}") from exc
    if header_version >= 2:
        out += _EMPTY_TAGGED_FIELDS
    return out


def encode_response_header(correlation_id: int, header_version: int) -> bytes:
    """Encode a response header: v0 = correlation id, v1 = correlation id + empty tags."""
    try:
        out = _INT32.pack(correlation_id)
    except struct.error as exc:
        raise LocalProtocolError(f"cannot encode response header: {exc}") from exc
    if header_version == 0:
        return out
    if header_version == 1:
        return out + _EMPTY_TAGGED_FIELDS
    raise LocalProtocolError(f"no response header version {header_version}")


def decode_response_header(
    data: bytes | bytearray | memoryview, header_version: int, offset: int = 0
) -> tuple[int, int]:
    """Decode a response header; returns ``(correlation_id, body_offset)``.

    Raises:
        RemoteProtocolError: truncated or malformed header.
    """
    if len(data) - offset < 4:
        raise RemoteProtocolError("response header truncated")
    (correlation_id,) = _INT32.unpack_from(data, offset)
    pos = offset + 4
    if header_version >= 1:
        pos = _skip_tagged_fields(data, pos)
    return correlation_id, pos
