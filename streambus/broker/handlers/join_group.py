"""JoinGroup (key 11), v0-v9: join or rejoin a classic group; may park until the join phase ends.

v0 has no rebalance timeout (it is the session timeout, as in Kafka); v4+ gets
MEMBER_ID_REQUIRED on a first join (KIP-394); ``protocol_name`` is nullable only from v7.
"""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize
from streambus.protocol.error_codes import ErrorCode
from streambus.coordinator.runtime import then
from streambus.protocol.messages.join_group import JoinGroupRequest, JoinGroupResponse

#: First version whose ``protocol_name`` may be null.
_NULLABLE_PROTOCOL_NAME_VERSION = 7


def handle(ctx: RequestContext, request: JoinGroupRequest):
    version = ctx.api_version
    if version == 0:
        request.rebalance_timeout_ms = request.session_timeout_ms
    client_id = ctx.header.client_id or ""
    if not authorize(ctx, AclOperation.READ, ResourceType.GROUP, request.group_id):
        return _for_version(JoinGroupResponse(
            error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED, member_id=request.member_id,
            protocol_name=None), version)

    def operation(shard, token, now_ms):
        return shard.join_group(token, request, api_version=version, client_id=client_id,
                                client_host=f"/{ctx.client_host}", now_ms=now_ms)

    outcome = ctx.node.group_coordinator.execute(
        request.group_id, operation,
        lambda error: JoinGroupResponse(error_code=error, member_id=request.member_id,
                                        protocol_name=None))
    return then(outcome, lambda response: _for_version(response, version))


def _for_version(response: JoinGroupResponse, version: int) -> JoinGroupResponse:
    if version < _NULLABLE_PROTOCOL_NAME_VERSION and response.protocol_name is None:
        response.protocol_name = ""
    return response
