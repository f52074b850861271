"""OffsetDelete (key 47), v0: delete a group's committed offsets of topics it no longer reads."""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.offset_delete import OffsetDeleteRequest, OffsetDeleteResponse


def handle(ctx: RequestContext, request: OffsetDeleteRequest) -> OffsetDeleteResponse:
    if not authorize(ctx, AclOperation.DELETE, ResourceType.GROUP, request.group_id):
        return OffsetDeleteResponse(error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED)
    return ctx.node.group_coordinator.execute(
        request.group_id,
        lambda shard, token, now_ms: shard.offset_delete(request),
        lambda error: OffsetDeleteResponse(error_code=error), create_topic=False)
