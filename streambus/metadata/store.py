"""The node-local metadata log: persists metadata records and publishes the image.

This module owns the ``__cluster_metadata-0`` partition on this node and the current
:class:`~streambus.metadata.image.MetadataImage`.  Each committed change is one record batch
whose records carry KRaft-framed metadata records (value = uvarint frame version, uvarint
record type, uvarint record version, record body — Kafka's ``MetadataRecordSerde``).  On start
the log is replayed to rebuild the image.  Single node today; the Raft quorum replaces the
append path without changing what handlers see.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Iterable

from streambus.log.config import LogConfig
from streambus.log.partition_log import PartitionLog
from streambus.metadata.image import EMPTY_IMAGE, MetadataImage, apply_records
from streambus.protocol import codec
from streambus.protocol.metadata_records import METADATA_RECORDS
from streambus.protocol.records.batch import validate_batches
from streambus.protocol.records.record import build_batch, decode_records

__all__ = ["MetadataStore", "encode_metadata_record", "decode_metadata_record", "METADATA_TOPIC"]

METADATA_TOPIC = "__cluster_metadata"
_FRAME_VERSION = 1
_RECORD_TYPE_BY_CLASS = {cls: api_key for api_key, cls in METADATA_RECORDS.items()}

logger = logging.getLogger(__name__)


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_uvarint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data) or shift > 28:
            raise ValueError("malformed metadata record frame")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def encode_metadata_record(record: object) -> bytes:
    record_type = _RECORD_TYPE_BY_CLASS[type(record)]
    version = type(record).VALID_VERSIONS[1]
    return (
        _uvarint(_FRAME_VERSION)
        + _uvarint(record_type)
        + _uvarint(version)
        + codec.encode(record, version)
    )


def decode_metadata_record(data: bytes) -> object:
    frame_version, position = _read_uvarint(data, 0)
    if frame_version != _FRAME_VERSION:
        raise ValueError(f"unknown metadata frame version {frame_version}")
    record_type, position = _read_uvarint(data, position)
    version, position = _read_uvarint(data, position)
    cls = METADATA_RECORDS[record_type]
    record, _ = codec.decode(cls, version, data, position)
    return record


class MetadataStore:
    """Owns the metadata log and the published image.

    Args:
        directory: the ``__cluster_metadata-0`` directory.
        clock_ms: wall clock in ms.
    """

    def __init__(self, directory: Path, clock_ms: Callable[[], int]) -> None:
        self._directory = directory
        self._clock_ms = clock_ms
        self._log: PartitionLog | None = None
        self.image: MetadataImage = EMPTY_IMAGE
        self._listeners: list[Callable[[MetadataImage, MetadataImage], None]] = []

    def open(self, *, clean_shutdown: bool) -> MetadataImage:
        self._directory.mkdir(parents=True, exist_ok=True)
        self._log = PartitionLog.open(
            self._directory,
            LogConfig(segment_bytes=64 * 1024 * 1024),
            clock_ms=self._clock_ms,
            clean_shutdown=clean_shutdown,
        )
        image = EMPTY_IMAGE
        offset = self._log.log_start_offset
        while offset < self._log.log_end_offset:
            result = self._log.read(offset, 4 * 1024 * 1024)
            data = result.records
            if not data:
                break
            for header in validate_batches(data):
                records = [
                    decode_metadata_record(bytes(r.value))
                    for r in decode_records(memoryview(data)[header.position:header.position + header.size_bytes], header)
                    if r.value is not None
                ]
                image = apply_records(image, records, header.last_offset)
                offset = header.last_offset + 1
        self.image = image
        logger.info("metadata log replayed to offset %d: %d topics",
                    image.offset, len(image.topics_by_name))
        return image

    def subscribe(self, listener: Callable[[MetadataImage, MetadataImage], None]) -> None:
        """Call ``listener(old_image, new_image)`` after each published change."""
        self._listeners.append(listener)

    def commit(self, records: Iterable[object]) -> MetadataImage:
        """Durably append ``records`` as one batch, then apply and publish them atomically."""
        assert self._log is not None, "open() first"
        records = list(records)
        if not records:
            return self.image
        now_ms = self._clock_ms()
        batch = bytearray(
            build_batch([(None, encode_metadata_record(r), [], now_ms) for r in records])
        )
        headers = validate_batches(batch)
        result = self._log.append_as_leader(batch, headers, leader_epoch=0)
        # Metadata changes are rare and everything depends on them: make each one durable
        # before anyone observes it.
        self._log.flush()
        self._log.high_watermark = self._log.log_end_offset
        old = self.image
        self.image = apply_records(old, records, result.last_offset)
        for listener in self._listeners:
            listener(old, self.image)
        return self.image

    def close(self, *, clean: bool = True) -> None:
        if self._log is not None:
            self._log.close(clean=clean)
            self._log = None
