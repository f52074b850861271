"""DeleteGroups (key 42), v0-v2: delete empty groups and their committed offsets."""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.protocol.messages.delete_groups import DeleteGroupsRequest, DeleteGroupsResponse

_Result = DeleteGroupsResponse.DeletableGroupResult


def handle(ctx: RequestContext, request: DeleteGroupsRequest) -> DeleteGroupsResponse:
    coordinator = ctx.node.group_coordinator
    results = []
    for group_id in dict.fromkeys(request.groups_names):
        results += coordinator.execute(
            group_id,
            lambda shard, token, now_ms, g=group_id: shard.delete_groups([g]),
            lambda error, g=group_id: [_Result(group_id=g, error_code=error)],
            create_topic=False)
    return DeleteGroupsResponse(results=results)
