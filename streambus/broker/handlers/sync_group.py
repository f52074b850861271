"""SyncGroup (key 14), v0-v5: the leader hands in assignments; followers wait for theirs."""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.sync_group import SyncGroupRequest, SyncGroupResponse


def handle(ctx: RequestContext, request: SyncGroupRequest):
    if not authorize(ctx, AclOperation.READ, ResourceType.GROUP, request.group_id):
        return SyncGroupResponse(error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED)
    return ctx.node.group_coordinator.execute(
        request.group_id,
        lambda shard, token, now_ms: shard.sync_group(token, request, now_ms=now_ms),
        lambda error: SyncGroupResponse(error_code=error))
