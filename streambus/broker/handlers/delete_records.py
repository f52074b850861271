"""DeleteRecords (key 21, v0-2): move partitions' log start offsets forward (KIP-107).

``offset`` -1 means the high watermark.  Whole segments below the new log start are deleted at
once; consumers positioned below it get OFFSET_OUT_OF_RANGE and reset as their
``auto.offset.reset`` says.  The rules live in ``streambus.log.retention.delete_records``.
"""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize
from streambus.log.retention import DeleteRecordsError, delete_records
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.delete_records import (
    DeleteRecordsRequest,
    DeleteRecordsResponse,
)

_Partition = DeleteRecordsResponse.DeleteRecordsPartitionResult


def _partition(ctx: RequestContext, topic: str,
               request: DeleteRecordsRequest.DeleteRecordsPartition) -> _Partition:
    index = request.partition_index
    partition = ctx.node.replica_manager.get(topic, index)
    if partition is None:
        return _Partition(partition_index=index, low_watermark=-1,
                          error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    try:
        low_watermark = delete_records(partition.log, request.offset)
    except DeleteRecordsError as exc:
        return _Partition(partition_index=index, low_watermark=-1, error_code=exc.error_code)
    return _Partition(partition_index=index, low_watermark=low_watermark, error_code=0)


def handle(ctx: RequestContext, request: DeleteRecordsRequest) -> DeleteRecordsResponse:
    topics = [
        DeleteRecordsResponse.DeleteRecordsTopicResult(
            name=topic.name, partitions=[_partition(ctx, topic.name, p) for p in topic.partitions]
            if authorize(ctx, AclOperation.DELETE, ResourceType.TOPIC, topic.name)
            else [_Partition(partition_index=p.partition_index, low_watermark=-1,
                             error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED)
                  for p in topic.partitions])
        for topic in request.topics
    ]
    # A crash must not bring deleted records back: persist the new log start offsets now
    # rather than at the next periodic checkpoint.
    ctx.node.log_manager.checkpoint()
    return DeleteRecordsResponse(throttle_time_ms=0, topics=topics)
