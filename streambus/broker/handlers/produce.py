"""Produce (key 0): validate batches as bytes, append them, acknowledge per partition.

The hot path never builds per-record objects: batch headers are checked (sizes, magic, CRC,
counts), offsets are assigned by rewriting headers in the request buffer, and the same bytes
are written to the log.  Records are only decoded when a topic's ``compression.type`` differs
from the producer's and the batch must be recompressed.
"""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.broker.server import CLOSE_CONNECTION
from streambus.metadata.topic_config import LONG_MAX
from streambus.coordinator.txn.errors import for_version
from streambus.protocol.api_keys import ApiKey
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.produce import ProduceRequest, ProduceResponse
from streambus.protocol.records.batch import (
    CorruptRecordError,
    InvalidRecordError,
    validate_batches,
)
from streambus.protocol.records.compression import CompressionType
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize

# Bound once: an enum member lookup costs more than the (disabled) check itself.
_WRITE, _TOPIC = AclOperation.WRITE, ResourceType.TOPIC
from streambus.protocol.records.record import recompress_batch

_Partition = ProduceResponse.PartitionProduceResponse

#: Produce v0-v2 are advertised (old librdkafka only compresses when v0 is in range) but
#: rejected, as Kafka 4.0 does (KIP-896, KAFKA-18659).
_PRODUCE_VERSION_MIN_ACCEPTED = 3

_TOPIC_CODECS = {
    "uncompressed": CompressionType.NONE,
    "gzip": CompressionType.GZIP,
    "snappy": CompressionType.SNAPPY,
    "lz4": CompressionType.LZ4,
    "zstd": CompressionType.ZSTD,
}


def _error(index: int, code: ErrorCode, message: str | None, version: int) -> _Partition:
    if code == ErrorCode.INVALID_RECORD and version < 8:
        code = ErrorCode.CORRUPT_MESSAGE  # INVALID_RECORD arrived with Produce v8 (KIP-467)
    return _Partition(index=index, error_code=code, base_offset=-1, log_append_time_ms=-1,
                      log_start_offset=-1, error_message=message)


def _verify_transaction(ctx: RequestContext, topic: str, partition: object, headers: list,
                        transactional_id: str | None) -> tuple[int, str] | None:
    """KIP-890 part 1: a producer's first transactional write to a partition must belong to
    a transaction the coordinator knows includes the partition; otherwise a stray or late
    write would open a transaction nobody ever ends (a "hanging transaction")."""
    for header in headers:
        if not header.is_transactional:
            continue
        if transactional_id is None:
            return ErrorCode.INVALID_TXN_STATE, "transactional records need a transactional id"
        if partition.log.has_ongoing_transaction(header.producer_id) \
                or not ctx.node.config.transaction_partition_verification_enable:
            continue
        index = getattr(partition, "partition_index")
        verified = ctx.node.txn_coordinator.verify_partitions(
            transactional_id, header.producer_id, header.producer_epoch, [(topic, index)])
        code = verified.get((topic, index), ErrorCode.NONE)
        if code == ErrorCode.PRODUCER_FENCED:
            code = ErrorCode.INVALID_PRODUCER_EPOCH  # what producers expect from Produce
        if code != ErrorCode.NONE:
            return (for_version(code, ApiKey.PRODUCE, ctx.api_version),
                    f"partition {topic}-{index} is not part of the producer's transaction")
    return None


def _produce_partition(ctx: RequestContext, topic: str, data: ProduceRequest.PartitionProduceData,
                       now_ms: int, transactional_id: str | None = None) -> _Partition:
    version = ctx.api_version
    index = data.index
    replica_manager = ctx.node.replica_manager
    partition = replica_manager.get(topic, index)
    if partition is None:
        return _error(index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, None, version)
    records = data.records
    if not records:
        return _error(index, ErrorCode.INVALID_RECORD, "Produce request has no records", version)
    if isinstance(records, memoryview) and records.readonly or not isinstance(
        records, (memoryview, bytearray)
    ):
        records = bytearray(records)
    try:
        headers = validate_batches(records)
    except CorruptRecordError as exc:
        if ctx.node.metrics is not None:
            ctx.node.metrics.record_protocol_error("corrupt_record")
        return _error(index, ErrorCode.CORRUPT_MESSAGE, str(exc), version)
    except InvalidRecordError as exc:
        return _error(index, ErrorCode.INVALID_RECORD, str(exc), version)
    config = partition.config
    # The effective compression.type: the topic's own, else the broker's (KIP-226 layering).
    target_codec = _TOPIC_CODECS.get(partition.effective_configs.get("compression.type", ""))
    for header in headers:
        if header.size_bytes > config.max_message_bytes:
            return _error(index, ErrorCode.MESSAGE_TOO_LARGE,
                          f"batch of {header.size_bytes} bytes exceeds max.message.bytes "
                          f"{config.max_message_bytes}", version)
        if header.is_control:
            return _error(index, ErrorCode.INVALID_RECORD,
                          "clients may not produce control batches", version)
        if not header.is_log_append_time and (
            (partition.timestamp_before_max_ms < LONG_MAX
             and header.base_timestamp < now_ms - partition.timestamp_before_max_ms)
            or (partition.timestamp_after_max_ms < LONG_MAX
                and header.max_timestamp > now_ms + partition.timestamp_after_max_ms)
        ):
            return _error(index, ErrorCode.INVALID_TIMESTAMP,
                          "record timestamp is outside the topic's allowed range", version)
    refused = _verify_transaction(ctx, topic, partition, headers, transactional_id)
    if refused is not None:
        return _error(index, ErrorCode.for_code(int(refused[0])), refused[1], version)
    if target_codec is not None and any(h.compression != target_codec for h in headers):
        try:
            records = bytearray().join(
                recompress_batch(memoryview(records)[h.position:h.position + h.size_bytes], h,
                                 target_codec)
                for h in headers
            )
            headers = validate_batches(records, verify_crc=False)
        except CorruptRecordError as exc:
            return _error(index, ErrorCode.CORRUPT_MESSAGE, str(exc), version)
    try:
        result = partition.log.append_as_leader(records, headers,
                                                leader_epoch=partition.leader_epoch)
    except OSError as exc:
        return _error(index, ErrorCode.KAFKA_STORAGE_ERROR, str(exc), version)
    except Exception as exc:  # producer-state errors carry the Kafka code to return
        code = getattr(exc, "error_code", None)
        if code is None:
            raise
        return _error(index, ErrorCode.for_code(int(code)), str(exc), version)
    replica_manager.after_append(partition)
    metrics = ctx.node.metrics
    if metrics is not None and not result.duplicate:
        metrics.record_messages_in(topic, result.last_offset - result.base_offset + 1)
    return _Partition(
        index=index,
        error_code=0,
        base_offset=result.base_offset,
        log_append_time_ms=result.log_append_time_ms,
        log_start_offset=result.log_start_offset,
    )


def handle(ctx: RequestContext, request: ProduceRequest) -> ProduceResponse | None:
    version = ctx.api_version
    acks = request.acks
    now_ms = ctx.node.clock_ms()
    responses = []
    transactional_id = request.transactional_id if version >= 3 else None
    # Transactional writes need WRITE on the transactional id as well (KIP-98).
    transactional_id_allowed = transactional_id is None or authorize(
        ctx, AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, transactional_id)
    for topic_data in request.topic_data:
        partitions = []
        # One ACL check per topic, before anything else (unknown topics included, so
        # existence is never disclosed).
        allowed = authorize(ctx, _WRITE, _TOPIC, topic_data.name)
        if allowed and transactional_id is not None and not transactional_id_allowed:
            allowed = False  # reported below as TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        for data in topic_data.partition_data:
            if transactional_id is not None and not transactional_id_allowed:
                partitions.append(_error(data.index,
                                         ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, None,
                                         version))
            elif not allowed:
                partitions.append(_error(data.index, ErrorCode.TOPIC_AUTHORIZATION_FAILED, None,
                                         version))
            elif version < _PRODUCE_VERSION_MIN_ACCEPTED:
                partitions.append(_error(data.index, ErrorCode.UNSUPPORTED_VERSION,
                                         "Produce v0-v2 are no longer supported", version))
            elif acks not in (0, 1, -1):
                partitions.append(_error(data.index, ErrorCode.INVALID_REQUIRED_ACKS, None,
                                         version))
            else:
                partitions.append(_produce_partition(ctx, topic_data.name, data, now_ms,
                                                     transactional_id))
        responses.append(ProduceResponse.TopicProduceResponse(
            name=topic_data.name, partition_responses=partitions))
    if acks == 0:
        # The client reads no response.  Kafka closes the connection when an acks=0 produce
        # fails, the only way such a producer learns to refresh metadata and retry.
        if any(p.error_code for t in responses for p in t.partition_responses):
            return CLOSE_CONNECTION
        return None
    return ProduceResponse(responses=responses, throttle_time_ms=0)
