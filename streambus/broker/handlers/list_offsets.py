"""ListOffsets (key 2): earliest, latest, by timestamp, and max timestamp (KIP-734)."""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.list_offsets import ListOffsetsRequest, ListOffsetsResponse
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize

LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2
MAX_TIMESTAMP = -3  # KIP-734, v7+
EARLIEST_LOCAL_TIMESTAMP = -4  # KIP-405, v8+: no tiered storage, so the log start offset
LATEST_TIERED_TIMESTAMP = -5  # KIP-1005, v9+: nothing is tiered, so "none" (-1)
_READ_COMMITTED = 1

_Partition = ListOffsetsResponse.ListOffsetsPartitionResponse


def _partition(ctx: RequestContext, topic: str, request: ListOffsetsRequest.ListOffsetsPartition,
               isolation_level: int) -> _Partition:
    index = request.partition_index
    partition = ctx.node.replica_manager.get(topic, index)
    if partition is None:
        return _Partition(partition_index=index, error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    epoch = request.current_leader_epoch
    if epoch >= 0 and epoch != partition.leader_epoch:
        return _Partition(partition_index=index,
                          error_code=ErrorCode.FENCED_LEADER_EPOCH
                          if epoch < partition.leader_epoch else ErrorCode.UNKNOWN_LEADER_EPOCH)
    log = partition.log
    timestamp = request.timestamp
    found_timestamp, offset = -1, -1
    # read_committed consumers may not look past the last stable offset (KIP-98).
    fetchable = log.last_stable_offset if isolation_level == _READ_COMMITTED else log.high_watermark
    if timestamp == LATEST_TIMESTAMP:
        offset = fetchable
    elif timestamp in (EARLIEST_TIMESTAMP, EARLIEST_LOCAL_TIMESTAMP):
        offset = log.log_start_offset
    elif timestamp == LATEST_TIERED_TIMESTAMP:
        offset = -1
    elif timestamp == MAX_TIMESTAMP:
        found = log.max_timestamp_offset()
        if found is not None:
            offset, found_timestamp = found
    elif timestamp >= 0:
        found = log.offset_for_timestamp(timestamp)
        if found is not None and found[0] < fetchable:
            offset, found_timestamp = found
    else:
        return _Partition(partition_index=index, error_code=ErrorCode.INVALID_REQUEST)
    if ctx.api_version == 0:
        return _Partition(partition_index=index, error_code=0,
                          old_style_offsets=[offset] if offset >= 0 else [])
    return _Partition(partition_index=index, error_code=0, timestamp=found_timestamp,
                      offset=offset,
                      leader_epoch=partition.leader_epoch if ctx.api_version >= 4 else -1)


def handle(ctx: RequestContext, request: ListOffsetsRequest) -> ListOffsetsResponse:
    isolation_level = request.isolation_level if ctx.api_version >= 2 else 0
    return ListOffsetsResponse(
        throttle_time_ms=0,
        topics=[
            ListOffsetsResponse.ListOffsetsTopicResponse(
                name=topic.name,
                partitions=[_partition(ctx, topic.name, p, isolation_level)
                            for p in topic.partitions]
                if authorize(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, topic.name)
                else [_Partition(partition_index=p.partition_index,
                                 error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED)
                      for p in topic.partitions],
            )
            for topic in request.topics
        ],
    )
