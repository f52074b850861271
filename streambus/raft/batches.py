"""Raft batches as Kafka v2 record batches: the bytes of the metadata log and of Fetch.

This module owns the mapping between :class:`~streambus.raft.messages.Batch` and the KRaft
on-disk / on-wire form (Kafka's ``__cluster_metadata`` layout): one v2 record batch per Raft
batch, ``base_offset`` and ``partition_leader_epoch`` = (base offset, epoch), one record per
record value.  Control batches (the LeaderChangeMessage a new leader writes, KIP-595) set the
control attribute bit and carry the control key ``(version 0, type 2)``.  It does no I/O.
"""

from __future__ import annotations

import struct
from typing import Iterable

from streambus.protocol.records.batch import validate_batches
from streambus.protocol.records.control import ControlRecordType
from streambus.protocol.records.record import build_batch, decode_records
from streambus.raft.messages import Batch

__all__ = ["encode_batch", "encode_batches", "decode_batches", "LEADER_CHANGE_KEY"]

#: Key of a LeaderChangeMessage control record: int16 version 0, int16 type LEADER_CHANGE.
LEADER_CHANGE_KEY = struct.pack(">hh", 0, ControlRecordType.LEADER_CHANGE)


def encode_batch(batch: Batch, timestamp_ms: int) -> bytes:
    key = LEADER_CHANGE_KEY if batch.control else None
    return build_batch([(key, record, [], timestamp_ms) for record in batch.records],
                       base_offset=batch.base_offset, partition_leader_epoch=batch.epoch,
                       is_control=batch.control)


def encode_batches(batches: Iterable[Batch], timestamp_ms: int) -> bytes:
    return b"".join(encode_batch(batch, timestamp_ms) for batch in batches)


def decode_batches(data: bytes | bytearray | memoryview) -> list[Batch]:
    """Decode back-to-back batches (CRC-checked).

    Raises:
        CorruptRecordError, InvalidRecordError: from ``streambus.protocol.records``.
    """
    view = memoryview(data)
    out = []
    for header in validate_batches(view):
        records = decode_records(view, header, verify_crc=False)
        out.append(Batch(header.base_offset, header.partition_leader_epoch,
                         tuple(bytes(r.value or b"") for r in records), header.is_control))
    return out
