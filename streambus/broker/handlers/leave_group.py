"""LeaveGroup (key 13), v0-v5: members leave; v3+ batches members and static ids (KIP-345).

v0-v2 name one member and report its error at the top level, as Kafka's LeaveGroupResponse
does for those versions.
"""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.leave_group import LeaveGroupRequest, LeaveGroupResponse

_BATCHED_VERSION = 3


def handle(ctx: RequestContext, request: LeaveGroupRequest) -> LeaveGroupResponse:
    version = ctx.api_version
    members = list(request.members) if version >= _BATCHED_VERSION else [
        LeaveGroupRequest.MemberIdentity(member_id=request.member_id)]
    if not authorize(ctx, AclOperation.READ, ResourceType.GROUP, request.group_id):
        return LeaveGroupResponse(error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED)
    response = ctx.node.group_coordinator.execute(
        request.group_id,
        lambda shard, token, now_ms: shard.leave_group(request.group_id, members, now_ms=now_ms),
        lambda error: LeaveGroupResponse(error_code=error), create_topic=False)
    if version < _BATCHED_VERSION:
        if response.error_code == ErrorCode.NONE:
            response.error_code = next(
                (m.error_code for m in response.members if m.error_code), ErrorCode.NONE)
        response.members = []
    return response
