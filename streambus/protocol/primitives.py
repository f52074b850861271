"""Kafka wire primitives that are not a single ``struct`` format code.

This module owns the variable-length integers of the Kafka protocol and the
all-zero UUID. Fixed-width integers are packed with ``struct.Struct`` directly by
``codec.py``; only what ``struct`` cannot express lives here:

* UNSIGNED_VARINT: 7 bits per byte, least significant group first, high bit set
  on every byte but the last. Kafka caps it at 5 bytes (32 bits).
* VARINT / VARLONG: ZigZag-mapped signed values in the same layout, at most 5
  and 10 bytes. Record headers and record bodies use these.

Decoders take ``(data, pos)`` and return ``(value, new_pos)``; they raise
``RemoteProtocolError`` on truncation or an over-long encoding, never
``IndexError``. Encoders return ``bytes``.
"""

from __future__ import annotations

import uuid

from streambus.protocol.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "ZERO_UUID",
    "decode_uvarint",
    "decode_uvarlong",
    "decode_varint",
    "decode_varlong",
    "encode_uvarint",
    "encode_varint",
    "encode_varlong",
]

#: Kafka's ``Uuid.ZERO_UUID``: the "no topic id" value and every uuid field's default.
ZERO_UUID = uuid.UUID(int=0)

# One-byte encodings are by far the most common (lengths, tag counts), so they
# are precomputed rather than built per call.
_ONE_BYTE = tuple(bytes((n,)) for n in range(128))

_UVARINT_BYTES_MAX = 5
_UVARLONG_BYTES_MAX = 10


def encode_uvarint(value: int) -> bytes:
    """Encode an UNSIGNED_VARINT (0 <= value < 2**32).

    Raises:
        LocalProtocolError: value is negative or does not fit in 32 bits.
    """
    if 0 <= value < 128:
        return _ONE_BYTE[value]
    if value < 0 or value >> 32:
        raise LocalProtocolError(f"unsigned varint out of range: {value}")
    return _encode_unsigned(value)


def _encode_unsigned(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_varint(value: int) -> bytes:
    """Encode a ZigZag VARINT (signed 32-bit).

    Raises:
        LocalProtocolError: value does not fit in 32 bits.
    """
    if not -(1 << 31) <= value < (1 << 31):
        raise LocalProtocolError(f"varint out of range: {value}")
    zigzag = (value << 1) ^ (value >> 31)
    return _ONE_BYTE[zigzag] if zigzag < 128 else _encode_unsigned(zigzag)


def encode_varlong(value: int) -> bytes:
    """Encode a ZigZag VARLONG (signed 64-bit).

    Raises:
        LocalProtocolError: value does not fit in 64 bits.
    """
    if not -(1 << 63) <= value < (1 << 63):
        raise LocalProtocolError(f"varlong out of range: {value}")
    zigzag = (value << 1) ^ (value >> 63)
    return _ONE_BYTE[zigzag] if zigzag < 128 else _encode_unsigned(zigzag)


def _decode_unsigned(data: bytes | bytearray | memoryview, pos: int, bytes_max: int) -> tuple[int, int]:
    value = 0
    shift = 0
    end = len(data)
    for i in range(bytes_max):
        if pos >= end:
            raise RemoteProtocolError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if bytes_max == _UVARINT_BYTES_MAX and i == 4 and byte > 0x0F:
                raise RemoteProtocolError("unsigned varint exceeds 32 bits")
            return value, pos
        shift += 7
    raise RemoteProtocolError(f"varint longer than {bytes_max} bytes")


def decode_uvarint(data: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    """Decode an UNSIGNED_VARINT at ``pos``; returns ``(value, new_pos)``.

    Raises:
        RemoteProtocolError: truncated, longer than 5 bytes, or above 2**32 - 1.
    """
    if pos < len(data):
        byte = data[pos]
        if byte < 0x80:
            return byte, pos + 1
    return _decode_unsigned(data, pos, _UVARINT_BYTES_MAX)


def decode_uvarlong(data: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    """Decode an unsigned 64-bit varint at ``pos``; returns ``(value, new_pos)``.

    Raises:
        RemoteProtocolError: truncated or longer than 10 bytes.
    """
    return _decode_unsigned(data, pos, _UVARLONG_BYTES_MAX)


def decode_varint(data: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    """Decode a ZigZag VARINT at ``pos``; returns ``(value, new_pos)``.

    Raises:
        RemoteProtocolError: truncated or longer than 5 bytes.
    """
    raw, pos = decode_uvarint(data, pos)
    return (raw >> 1) ^ -(raw & 1), pos


def decode_varlong(data: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    """Decode a ZigZag VARLONG at ``pos``; returns ``(value, new_pos)``.

    Raises:
        RemoteProtocolError: truncated, longer than 10 bytes, or above 64 bits.
    """
    raw, pos = _decode_unsigned(data, pos, _UVARLONG_BYTES_MAX)
    if raw >> 64:
        raise RemoteProtocolError("varlong exceeds 64 bits")
    return (raw >> 1) ^ -(raw & 1), pos
