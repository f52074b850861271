"""ListGroups (key 16), v0-v5: every group this node coordinates; v4 filters by state,
v5 by type (KIP-518, KIP-848)."""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize
from streambus.protocol.error_codes import ErrorCode
from streambus.coordinator.runtime import CoordinatorError
from streambus.protocol.messages.list_groups import ListGroupsRequest, ListGroupsResponse


def handle(ctx: RequestContext, request: ListGroupsRequest) -> ListGroupsResponse:
    try:
        shards = ctx.node.group_coordinator.loaded_shards()
    except CoordinatorError as exc:
        return ListGroupsResponse(error_code=exc.error_code)
    groups = []
    for shard in shards:
        groups += shard.list_groups(request.states_filter, request.types_filter)
    # CLUSTER DESCRIBE lists every group; otherwise only groups the caller may DESCRIBE.
    if not authorize(ctx, AclOperation.DESCRIBE, ResourceType.CLUSTER, "kafka-cluster",
                     audit=False):
        groups = [g for g in groups if authorize(ctx, AclOperation.DESCRIBE,
                                                 ResourceType.GROUP, g.group_id, audit=False)]
    return ListGroupsResponse(groups=sorted(groups, key=lambda g: g.group_id))
