"""``__transaction_state`` records: TransactionLogKey/Value bytes and metadata <-> record.

Layout, as Kafka writes it (``TransactionLog``)::

    key   = int16 version (0) | TransactionLogKey v0 (transactional_id string)
    value = int16 version     | TransactionLogValue at that version   (absent: a tombstone)

We write value version 1 (flexible; its tagged fields carry the previous and next producer
ids and the client's transaction version) and read 0 and 1.  Partitions are stored grouped by
topic, sorted, so equal metadata always encodes to equal bytes.

Pure: builds generated record objects and bytes, never touches a log.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from streambus.coordinator.result import CoordinatorRecord
from streambus.protocol import codec
from streambus.protocol.coordinator_records import TransactionLogKey, TransactionLogValue

__all__ = [
    "TRANSACTION_LOG_VALUE_VERSION",
    "RecordFormatError",
    "decode_record",
    "encode_record",
    "partitions_from_value",
    "partitions_to_value",
]

_INT16 = struct.Struct(">h")
_KEY_VERSION = 0
TRANSACTION_LOG_VALUE_VERSION = 1


class RecordFormatError(ValueError):
    """Stored bytes are not a transaction log record this coordinator can read."""


def encode_record(record: CoordinatorRecord) -> tuple[bytes, bytes | None]:
    """The (key, value) bytes of ``record``; value None for a tombstone."""
    assert isinstance(record.key, TransactionLogKey)
    key = _INT16.pack(_KEY_VERSION) + codec.encode(record.key, _KEY_VERSION)
    if record.value is None:
        return key, None
    version = record.value_version
    return key, _INT16.pack(version) + codec.encode(record.value, version)


def decode_record(key: bytes | memoryview, value: bytes | memoryview | None) -> CoordinatorRecord:
    """Parse stored key/value bytes.

    Raises:
        RecordFormatError: truncated or malformed bytes, or versions we cannot read.
    """
    if len(key) < 2:
        raise RecordFormatError("record key shorter than its version prefix")
    (key_version,) = _INT16.unpack_from(key, 0)
    if key_version != _KEY_VERSION:
        raise RecordFormatError(f"TransactionLogKey version {key_version} is not 0")
    try:
        parsed_key, _ = codec.decode(TransactionLogKey, key_version, key, 2)
        if value is None:
            return CoordinatorRecord(parsed_key, None)
        if len(value) < 2:
            raise RecordFormatError("record value shorter than its version prefix")
        (value_version,) = _INT16.unpack_from(value, 0)
        low, high = TransactionLogValue.VALID_VERSIONS
        if not low <= value_version <= high:
            raise RecordFormatError(f"TransactionLogValue version {value_version} is outside "
                                    f"{low}-{high}")
        parsed_value, _ = codec.decode(TransactionLogValue, value_version, value, 2)
    except RecordFormatError:
        raise
    except Exception as exc:  # the codec's protocol errors
        raise RecordFormatError(f"malformed transaction log record: {exc}") from exc
    return CoordinatorRecord(parsed_key, parsed_value, value_version)


def partitions_to_value(partitions: Iterable[tuple[str, int]]
                        ) -> list[TransactionLogValue.PartitionsSchema]:
    by_topic: dict[str, list[int]] = {}
    for topic, partition in partitions:
        by_topic.setdefault(topic, []).append(partition)
    return [TransactionLogValue.PartitionsSchema(topic=topic, partition_ids=sorted(ids))
            for topic, ids in sorted(by_topic.items())]


def partitions_from_value(value: TransactionLogValue) -> set[tuple[str, int]]:
    return {(entry.topic, partition) for entry in value.transaction_partitions or ()
            for partition in entry.partition_ids}
