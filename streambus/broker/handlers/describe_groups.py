"""DescribeGroups (key 15), v0-v5: classic groups' state, protocol and members.

Unknown groups read as Dead without an error (v6 would say GROUP_ID_NOT_FOUND).  With
``include_authorized_operations`` (v3+) a group reports READ, DELETE and DESCRIBE: without
ACLs every principal may do all three.
"""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.coordinator.runtime import CoordinatorError
from streambus.protocol.messages.describe_groups import DescribeGroupsRequest, DescribeGroupsResponse

#: Kafka's AclOperation codes READ (3), DELETE (6) and DESCRIBE (8) as a bit set.
_GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)


def handle(ctx: RequestContext, request: DescribeGroupsRequest) -> DescribeGroupsResponse:
    coordinator = ctx.node.group_coordinator
    described = []
    for group_id in request.groups:
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
                group.authorized_operations = _GROUP_OPERATIONS
    return DescribeGroupsResponse(groups=described)
