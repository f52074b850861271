"""ConsumerGroupDescribe (key 69), v0: members, epochs and assignments of KIP-848 groups."""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.protocol.error_codes import ErrorCode
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize
from streambus.coordinator.runtime import CoordinatorError
from streambus.protocol.messages.consumer_group_describe import (
    ConsumerGroupDescribeRequest,
    ConsumerGroupDescribeResponse,
)

#: Kafka's AclOperation codes READ (3), DELETE (6) and DESCRIBE (8) as a bit set.
_GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)


def handle(ctx: RequestContext, request: ConsumerGroupDescribeRequest) -> ConsumerGroupDescribeResponse:
    coordinator = ctx.node.group_coordinator
    described = []
    for group_id in request.group_ids:
        if not authorize(ctx, AclOperation.DESCRIBE, ResourceType.GROUP, group_id):
            described.append(ConsumerGroupDescribeResponse.DescribedGroup(
                group_id=group_id, error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED))
            continue
        try:
            _, shard = coordinator.shard_for(group_id, create_topic=False)
        except CoordinatorError as exc:
            described.append(ConsumerGroupDescribeResponse.DescribedGroup(
                group_id=group_id, error_code=exc.error_code))
            continue
        [group] = shard.consumer_group_describe([group_id])
        if request.include_authorized_operations and not group.error_code:
            group.authorized_operations = _GROUP_OPERATIONS
        described.append(group)
    return ConsumerGroupDescribeResponse(groups=described)
