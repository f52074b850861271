"""DescribeGroups (key 15), v0-v5: classic groups' state, protocol and members.

Unknown groups read as Dead without an error (v6 would say GROUP_ID_NOT_FOUND).  With
``include_authorized_operations`` (v3+) a group reports READ, DELETE and DESCRIBE: without
ACLs every principal may do all three.
"""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.security.authorizer import AclOperation, ResourceType, authorized_operations
from streambus.security.checks import authorize, authorizer_of
from streambus.protocol.error_codes import ErrorCode
from streambus.coordinator.runtime import CoordinatorError
from streambus.protocol.messages.describe_groups import DescribeGroupsRequest, DescribeGroupsResponse

#: Kafka's AclOperation codes READ (3), DELETE (6) and DESCRIBE (8) as a bit set.
_GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)


def handle(ctx: RequestContext, request: DescribeGroupsRequest) -> DescribeGroupsResponse:
    coordinator = ctx.node.group_coordinator
    described = []
    for group_id in request.groups:
        if not authorize(ctx, AclOperation.DESCRIBE, ResourceType.GROUP, group_id):
            described.append(DescribeGroupsResponse.DescribedGroup(
                group_id=group_id, error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED))
            continue
        try:
            _, shard = coordinator.shard_for(group_id, create_topic=False)
        except CoordinatorError as exc:
            described.append(DescribeGroupsResponse.DescribedGroup(
                group_id=group_id, error_code=exc.error_code))
            continue
        [group] = shard.describe_groups([group_id])
        described.append(group)
    if request.include_authorized_operations:
        for group in described:
            if not group.error_code and group.group_state != "Dead":
                authorizer = authorizer_of(ctx)
                group.authorized_operations = (
                    _GROUP_OPERATIONS if authorizer is None else authorized_operations(
                        authorizer, ctx.principal, ctx.client_host, ResourceType.GROUP,
                        group.group_id))
    return DescribeGroupsResponse(groups=described)
