"""FindCoordinator (key 10): on a single node, this node coordinates every group and
transactional id.  v4+ batches keys (KIP-699)."""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.find_coordinator import (
    FindCoordinatorRequest,
    FindCoordinatorResponse,
)

_KEY_TYPES = (0, 1)  # GROUP, TRANSACTION


def handle(ctx: RequestContext, request: FindCoordinatorRequest) -> FindCoordinatorResponse:
    node = ctx.node
    host, port = node.advertised_host, node.advertised_port
    key_type = request.key_type if ctx.api_version >= 1 else 0
    error = 0 if key_type in _KEY_TYPES else ErrorCode.INVALID_REQUEST
    if ctx.api_version >= 4:
        return FindCoordinatorResponse(throttle_time_ms=0, coordinators=[
            FindCoordinatorResponse.Coordinator(
                key=key, node_id=node.node_id if not error else -1,
                host=host if not error else "", port=port if not error else -1,
                error_code=error, error_message=None)
            for key in request.coordinator_keys
        ])
    return FindCoordinatorResponse(
        throttle_time_ms=0, error_code=error, error_message=None,
        node_id=node.node_id if not error else -1, host=host if not error else "",
        port=port if not error else -1)
