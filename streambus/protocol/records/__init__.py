"""Kafka record batches (magic 2): headers, records, codecs and control markers.

Layering: ``batch`` (the 61-byte header, the broker's hot path, never decompresses) is below
``compression`` (codec registry), which is below ``record`` (record varint layout, building and
decoding whole batches), which is below ``control`` (transaction markers).  This package is
sans-I/O: it imports no asyncio, socket or os.  Everything public is re-exported here.
"""

from streambus.protocol.records.batch import BATCH_HEADER_SIZE as BATCH_HEADER_SIZE
from streambus.protocol.records.batch import COMPRESSION_MASK as COMPRESSION_MASK
from streambus.protocol.records.batch import CONTROL_MASK as CONTROL_MASK
from streambus.protocol.records.batch import LOG_OVERHEAD as LOG_OVERHEAD
from streambus.protocol.records.batch import MAGIC_V2 as MAGIC_V2
from streambus.protocol.records.batch import NO_PARTITION_LEADER_EPOCH as NO_PARTITION_LEADER_EPOCH
from streambus.protocol.records.batch import NO_PRODUCER_EPOCH as NO_PRODUCER_EPOCH
from streambus.protocol.records.batch import NO_PRODUCER_ID as NO_PRODUCER_ID
from streambus.protocol.records.batch import NO_SEQUENCE as NO_SEQUENCE
from streambus.protocol.records.batch import TIMESTAMP_TYPE_MASK as TIMESTAMP_TYPE_MASK
from streambus.protocol.records.batch import TRANSACTIONAL_MASK as TRANSACTIONAL_MASK
from streambus.protocol.records.batch import BatchHeader as BatchHeader
from streambus.protocol.records.batch import CorruptRecordError as CorruptRecordError
from streambus.protocol.records.batch import InvalidRecordError as InvalidRecordError
from streambus.protocol.records.batch import compute_crc as compute_crc
from streambus.protocol.records.batch import iter_batch_headers as iter_batch_headers
from streambus.protocol.records.batch import read_batch_header as read_batch_header
from streambus.protocol.records.batch import rewrite_base_offset as rewrite_base_offset
from streambus.protocol.records.batch import (
    rewrite_partition_leader_epoch as rewrite_partition_leader_epoch,
)
from streambus.protocol.records.batch import scan_valid_prefix as scan_valid_prefix
from streambus.protocol.records.batch import set_log_append_time as set_log_append_time
from streambus.protocol.records.batch import validate_batches as validate_batches
from streambus.protocol.records.compression import PRODUCER_COMPRESSION as PRODUCER_COMPRESSION
from streambus.protocol.records.compression import (
    TOPIC_COMPRESSION_TYPES as TOPIC_COMPRESSION_TYPES,
)
from streambus.protocol.records.compression import CompressionType as CompressionType
from streambus.protocol.records.compression import compress as compress
from streambus.protocol.records.compression import decompress as decompress
from streambus.protocol.records.compression import (
    topic_compression_type as topic_compression_type,
)
from streambus.protocol.records.control import ControlRecordType as ControlRecordType
from streambus.protocol.records.control import build_control_batch as build_control_batch
from streambus.protocol.records.control import parse_control_record as parse_control_record
from streambus.protocol.records.control import (
    read_control_record_type as read_control_record_type,
)
from streambus.protocol.records.record import DEFAULT_MAX_OUTPUT_BYTES as DEFAULT_MAX_OUTPUT_BYTES
from streambus.protocol.records.record import NO_TIMESTAMP as NO_TIMESTAMP
from streambus.protocol.records.record import Record as Record
from streambus.protocol.records.record import TimestampType as TimestampType
from streambus.protocol.records.record import build_batch as build_batch
from streambus.protocol.records.record import decode_records as decode_records
from streambus.protocol.records.record import iter_records as iter_records
from streambus.protocol.records.record import make_batch as make_batch
from streambus.protocol.records.record import recompress_batch as recompress_batch

__all__ = [
    "BATCH_HEADER_SIZE",
    "COMPRESSION_MASK",
    "CONTROL_MASK",
    "LOG_OVERHEAD",
    "MAGIC_V2",
    "NO_PARTITION_LEADER_EPOCH",
    "NO_PRODUCER_EPOCH",
    "NO_PRODUCER_ID",
    "NO_SEQUENCE",
    "TIMESTAMP_TYPE_MASK",
    "TRANSACTIONAL_MASK",
    "BatchHeader",
    "CorruptRecordError",
    "InvalidRecordError",
    "compute_crc",
    "iter_batch_headers",
    "read_batch_header",
    "rewrite_base_offset",
    "rewrite_partition_leader_epoch",
    "scan_valid_prefix",
    "set_log_append_time",
    "validate_batches",
    "PRODUCER_COMPRESSION",
    "TOPIC_COMPRESSION_TYPES",
    "CompressionType",
    "compress",
    "decompress",
    "topic_compression_type",
    "ControlRecordType",
    "build_control_batch",
    "parse_control_record",
    "read_control_record_type",
    "DEFAULT_MAX_OUTPUT_BYTES",
    "NO_TIMESTAMP",
    "Record",
    "TimestampType",
    "build_batch",
    "decode_records",
    "iter_records",
    "make_batch",
    "recompress_batch",
]
