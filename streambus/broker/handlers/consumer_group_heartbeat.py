"""ConsumerGroupHeartbeat (key 68), v0-v1: the KIP-848 consumer group protocol.

v1 (KIP-1082) has clients generate their member id; v0 lets the coordinator pick one.
"""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.protocol.error_codes import ErrorCode
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize
from streambus.protocol.messages.consumer_group_heartbeat import (
    ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
)


def handle(ctx: RequestContext, request: ConsumerGroupHeartbeatRequest) -> ConsumerGroupHeartbeatResponse:
    version = ctx.api_version
    client_id = ctx.header.client_id or ""
    if not authorize(ctx, AclOperation.READ, ResourceType.GROUP, request.group_id):
        return ConsumerGroupHeartbeatResponse(error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED)

    def operation(shard, token, now_ms):
        return shard.consumer_group_heartbeat(request, api_version=version, client_id=client_id,
                                              client_host=f"/{ctx.client_host}", now_ms=now_ms)

    return ctx.node.group_coordinator.execute(
        request.group_id, operation,
        lambda error: ConsumerGroupHeartbeatResponse(error_code=error))
