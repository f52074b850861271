"""TxnOffsetCommit (key 28): a transactional producer commits a group's offsets inside its
transaction (the consume-transform-produce loop of KIP-98, member fencing of KIP-447).

The offsets are appended to the group's ``__consumer_offsets`` partition as the producer's
transactional batch and held as *pending*: the transaction's COMMIT marker makes them the
group's committed offsets, an ABORT drops them.  Before the first such write of a transaction
the partition is verified with the transaction coordinator (KIP-890), so offsets cannot land
in a transaction that AddOffsetsToTxn never opened.
"""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.broker.handlers.add_offsets_to_txn import offsets_partition
from streambus.coordinator.runtime import OFFSETS_TOPIC
from streambus.coordinator.txn.errors import for_version
from streambus.protocol.api_keys import ApiKey
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.txn_offset_commit import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
)
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize

_Topic = TxnOffsetCommitResponse.TxnOffsetCommitResponseTopic
_Partition = TxnOffsetCommitResponse.TxnOffsetCommitResponsePartition


def _all(request: TxnOffsetCommitRequest, code: int) -> TxnOffsetCommitResponse:
    return TxnOffsetCommitResponse(throttle_time_ms=0, topics=[
        _Topic(name=topic.name, partitions=[
            _Partition(partition_index=p.partition_index, error_code=code)
            for p in topic.partitions])
        for topic in request.topics])


def _verify(ctx: RequestContext, request: TxnOffsetCommitRequest) -> int:
    """KIP-890: the group's offsets partition must already be in the open transaction."""
    if not ctx.node.config.transaction_partition_verification_enable:
        return ErrorCode.NONE
    partition_index = offsets_partition(ctx, request.group_id)
    if partition_index is None:
        return ErrorCode.COORDINATOR_NOT_AVAILABLE
    partition = ctx.node.replica_manager.get(OFFSETS_TOPIC, partition_index)
    if partition is not None and partition.log.has_ongoing_transaction(request.producer_id):
        return ErrorCode.NONE
    verified = ctx.node.txn_coordinator.verify_partitions(
        request.transactional_id, request.producer_id, request.producer_epoch,
        [(OFFSETS_TOPIC, partition_index)])
    code = next(iter(verified.values()), ErrorCode.NONE)
    return ErrorCode.INVALID_PRODUCER_EPOCH if code == ErrorCode.PRODUCER_FENCED else code


def handle(ctx: RequestContext, request: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse:
    version = ctx.api_version
    if not authorize(ctx, AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID,
                     request.transactional_id):
        return _all(request, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    if not authorize(ctx, AclOperation.READ, ResourceType.GROUP, request.group_id):
        return _all(request, ErrorCode.GROUP_AUTHORIZATION_FAILED)
    denied = {topic.name for topic in request.topics
              if not authorize(ctx, AclOperation.READ, ResourceType.TOPIC, topic.name)}
    if version < 3:
        request.generation_id, request.member_id, request.group_instance_id = -1, "", None
    code = _verify(ctx, request)
    if code != ErrorCode.NONE:
        return _all(request, for_version(code, ApiKey.TXN_OFFSET_COMMIT, version))
    allowed = TxnOffsetCommitRequest(
        transactional_id=request.transactional_id, group_id=request.group_id,
        producer_id=request.producer_id, producer_epoch=request.producer_epoch,
        generation_id=request.generation_id, member_id=request.member_id,
        group_instance_id=request.group_instance_id,
        topics=[topic for topic in request.topics if topic.name not in denied])
    response = ctx.node.group_coordinator.execute_transactional(
        request.group_id, request.producer_id, request.producer_epoch,
        lambda shard, now_ms: shard.txn_offset_commit(allowed, now_ms=now_ms),
        lambda error: _all(allowed, error))
    for topic in response.topics:
        for partition in topic.partitions:
            partition.error_code = for_version(partition.error_code, ApiKey.TXN_OFFSET_COMMIT,
                                               version)
    response.topics += [_Topic(name=topic.name, partitions=[
        _Partition(partition_index=p.partition_index,
                   error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED) for p in topic.partitions])
        for topic in request.topics if topic.name in denied]
    return response
