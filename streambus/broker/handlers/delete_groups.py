"""DeleteGroups (key 42), v0-v2: delete empty groups and their committed offsets."""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.delete_groups import DeleteGroupsRequest, DeleteGroupsResponse

_Result = DeleteGroupsResponse.DeletableGroupResult


def handle(ctx: RequestContext, request: DeleteGroupsRequest) -> DeleteGroupsResponse:
    coordinator = ctx.node.group_coordinator
    results = []
    for group_id in dict.fromkeys(request.groups_names):
        if not authorize(ctx, AclOperation.DELETE, ResourceType.GROUP, group_id):
            results.append(_Result(group_id=group_id,
                                   error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED))
            continue
        results += coordinator.execute(
            group_id,
            lambda shard, token, now_ms, g=group_id: shard.delete_groups([g]),
            lambda error, g=group_id: [_Result(group_id=g, error_code=error)],
            create_topic=False)
    return DeleteGroupsResponse(results=results)
