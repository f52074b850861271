"""DescribeProducers (key 61, KIP-664): the producer state a partition leader keeps (epochs,
last sequences, open transactions), for finding hanging transactions."""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.describe_producers import (
    DescribeProducersRequest,
    DescribeProducersResponse,
)
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize

_Partition = DescribeProducersResponse.PartitionResponse


def _partition(ctx: RequestContext, topic: str, index: int) -> _Partition:
    partition = ctx.node.replica_manager.get(topic, index)
    if partition is None:
        return _Partition(partition_index=index, error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    return _Partition(partition_index=index, error_code=0, active_producers=[
        DescribeProducersResponse.ProducerState(
            producer_id=entry.producer_id, producer_epoch=entry.producer_epoch,
            last_sequence=entry.last_sequence, last_timestamp=entry.last_timestamp,
            coordinator_epoch=entry.coordinator_epoch,
            current_txn_start_offset=(-1 if entry.current_txn_first_offset is None
                                      else entry.current_txn_first_offset))
        for entry in partition.log.producer_entries()])


def handle(ctx: RequestContext, request: DescribeProducersRequest) -> DescribeProducersResponse:
    topics = []
    for topic in request.topics:
        allowed = authorize(ctx, AclOperation.READ, ResourceType.TOPIC, topic.name)
        topics.append(DescribeProducersResponse.TopicResponse(name=topic.name, partitions=[
            _partition(ctx, topic.name, index) if allowed else
            _Partition(partition_index=index, error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED)
            for index in topic.partition_indexes]))
    return DescribeProducersResponse(throttle_time_ms=0, topics=topics)
