"""DescribeTransactions (key 65, KIP-664): the coordinator's view of transactional ids."""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.describe_transactions import (
    DescribeTransactionsRequest,
    DescribeTransactionsResponse,
)
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize

_State = DescribeTransactionsResponse.TransactionState


def _describe(ctx: RequestContext, transactional_id: str) -> _State:
    if not authorize(ctx, AclOperation.DESCRIBE, ResourceType.TRANSACTIONAL_ID, transactional_id):
        return _State(transactional_id=transactional_id,
                      error_code=ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    found = ctx.node.txn_coordinator.describe(transactional_id)
    if isinstance(found, ErrorCode):
        return _State(transactional_id=transactional_id, error_code=found)
    topics: dict[str, list[int]] = {}
    for topic, partition in found.partitions:
        topics.setdefault(topic, []).append(partition)
    return _State(
        error_code=0, transactional_id=transactional_id, transaction_state=found.state,
        transaction_timeout_ms=found.txn_timeout_ms,
        transaction_start_time_ms=found.txn_start_timestamp_ms,
        producer_id=found.producer_id, producer_epoch=found.producer_epoch,
        topics=[DescribeTransactionsResponse.TopicData(topic=topic, partitions=partitions)
                for topic, partitions in topics.items()])


def handle(ctx: RequestContext,
           request: DescribeTransactionsRequest) -> DescribeTransactionsResponse:
    return DescribeTransactionsResponse(throttle_time_ms=0, transaction_states=[
        _describe(ctx, transactional_id) for transactional_id in request.transactional_ids])
