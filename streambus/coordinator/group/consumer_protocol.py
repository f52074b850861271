"""The embedded ConsumerProtocol payloads of JoinGroup and SyncGroup, read-only.

Layout (Kafka's ``ConsumerProtocol``): int16 version, then ConsumerProtocolSubscription or
ConsumerProtocolAssignment at that version.  Version 0 is a prefix of every later version, so a
version newer than we know is read as the newest we know and the rest ignored, exactly as
Kafka's coordinator parses subscriptions.  The broker never needs to *write* these bytes: the
classic protocol's assignment is computed by the group leader, client-side.
"""

from __future__ import annotations

import struct

from streambus.protocol import codec
from streambus.protocol.messages.consumer_protocol_assignment import ConsumerProtocolAssignment
from streambus.protocol.messages.consumer_protocol_subscription import (
    ConsumerProtocolSubscription,
)

__all__ = ["parse_subscription", "parse_assignment", "subscribed_topics", "assigned_partitions"]

_INT16 = struct.Struct(">h")


def _parse(cls: type, data: bytes | memoryview):
    if len(data) < 2:
        return None
    (version,) = _INT16.unpack_from(data, 0)
    if version < 0:
        return None
    version = min(version, cls.VALID_VERSIONS[1])
    try:
        parsed, _ = codec.decode(cls, version, data, 2)
    except Exception:  # malformed client bytes: report "unknown", never fail the request
        return None
    return parsed


def parse_subscription(data: bytes | memoryview) -> ConsumerProtocolSubscription | None:
    return _parse(ConsumerProtocolSubscription, data)


def parse_assignment(data: bytes | memoryview) -> ConsumerProtocolAssignment | None:
    return _parse(ConsumerProtocolAssignment, data)


def subscribed_topics(data: bytes | memoryview) -> list[str] | None:
    parsed = parse_subscription(data)
    return None if parsed is None else list(parsed.topics)


def assigned_partitions(data: bytes | memoryview) -> dict[str, list[int]] | None:
    """{topic: sorted partitions} of an assignment; {} for an empty payload (a member that got
    nothing), None when the bytes do not parse."""
    if not data:
        return {}
    parsed = parse_assignment(data)
    if parsed is None:
        return None
    out: dict[str, list[int]] = {}
    for item in parsed.assigned_partitions:
        out.setdefault(item.topic, []).extend(item.partitions)
    return {topic: sorted(partitions) for topic, partitions in out.items()}
