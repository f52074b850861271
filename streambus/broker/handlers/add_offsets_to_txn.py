"""AddOffsetsToTxn (key 25): a producer adds a consumer group's offsets to its transaction.

The transaction gains the group's ``__consumer_offsets`` partition, which will receive the
transaction's marker; the offsets themselves come later with TxnOffsetCommit.
"""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.coordinator.runtime import OFFSETS_TOPIC
from streambus.coordinator.txn.errors import for_version
from streambus.protocol.api_keys import ApiKey
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.add_offsets_to_txn import (
    AddOffsetsToTxnRequest,
    AddOffsetsToTxnResponse,
)
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize


def offsets_partition(ctx: RequestContext, group_id: str) -> int | None:
    """The group's ``__consumer_offsets`` partition, creating the topic if needed."""
    groups = ctx.node.group_coordinator
    partition = groups.partition_for(group_id)
    if partition is None:
        try:
            groups.shard_for(group_id, create_topic=True)
        except Exception:
            return None
        partition = groups.partition_for(group_id)
    return partition


def handle(ctx: RequestContext, request: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse:
    version = ctx.api_version
    if not authorize(ctx, AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID,
                     request.transactional_id):
        code = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    elif not authorize(ctx, AclOperation.READ, ResourceType.GROUP, request.group_id):
        code = ErrorCode.GROUP_AUTHORIZATION_FAILED
    else:
        partition = offsets_partition(ctx, request.group_id)
        if partition is None:
            code = ErrorCode.COORDINATOR_NOT_AVAILABLE
        else:
            code = ctx.node.txn_coordinator.add_partitions(
                request.transactional_id, request.producer_id, request.producer_epoch,
                [(OFFSETS_TOPIC, partition)])
    return AddOffsetsToTxnResponse(throttle_time_ms=0,
                                   error_code=for_version(code, ApiKey.ADD_OFFSETS_TO_TXN, version))
