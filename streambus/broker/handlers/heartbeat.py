"""Heartbeat (key 12), v0-v4: keeps a classic member alive; REBALANCE_IN_PROGRESS says rejoin."""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.heartbeat import HeartbeatRequest, HeartbeatResponse


def handle(ctx: RequestContext, request: HeartbeatRequest):
    if not authorize(ctx, AclOperation.READ, ResourceType.GROUP, request.group_id):
        return HeartbeatResponse(error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED)
    return ctx.node.group_coordinator.execute(
        request.group_id,
        lambda shard, token, now_ms: shard.heartbeat(request, now_ms=now_ms),
        lambda error: HeartbeatResponse(error_code=error), create_topic=False)
