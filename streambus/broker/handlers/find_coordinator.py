"""FindCoordinator (key 10): on a single node, this node coordinates every group and
transactional id.  v4+ batches keys (KIP-699)."""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.find_coordinator import (
    FindCoordinatorRequest,
    FindCoordinatorResponse,
)
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize

_KEY_TYPES = (0, 1)  # GROUP, TRANSACTION
_DENIED = {0: ErrorCode.GROUP_AUTHORIZATION_FAILED,
           1: ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED}


def _authorized(ctx: RequestContext, key_type: int, key: str) -> bool:
    resource_type = ResourceType.GROUP if key_type == 0 else ResourceType.TRANSACTIONAL_ID
    return authorize(ctx, AclOperation.DESCRIBE, resource_type, key)


def handle(ctx: RequestContext, request: FindCoordinatorRequest) -> FindCoordinatorResponse:
    node = ctx.node
    host, port = node.advertised_endpoint(ctx.listener_name)
    key_type = request.key_type if ctx.api_version >= 1 else 0
    error = 0 if key_type in _KEY_TYPES else ErrorCode.INVALID_REQUEST
    if ctx.api_version >= 4:
        coordinators = []
        for key in request.coordinator_keys:
            code = error or (0 if _authorized(ctx, key_type, key) else _DENIED[key_type])
            coordinators.append(FindCoordinatorResponse.Coordinator(
                key=key, node_id=node.node_id if not code else -1,
                host=host if not code else "", port=port if not code else -1,
                error_code=code, error_message=None))
        return FindCoordinatorResponse(throttle_time_ms=0, coordinators=coordinators)
    if not error and not _authorized(ctx, key_type, request.key):
        error = _DENIED[key_type]
    return FindCoordinatorResponse(
        throttle_time_ms=0, error_code=error, error_message=None,
        node_id=node.node_id if not error else -1, host=host if not error else "",
        port=port if not error else -1)
