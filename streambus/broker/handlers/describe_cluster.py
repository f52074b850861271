"""DescribeCluster (key 60): cluster id, controller and brokers (KIP-700)."""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.describe_cluster import (
    DescribeClusterRequest,
    DescribeClusterResponse,
)
from streambus.security.authorizer import CLUSTER_NAME, ResourceType, authorized_operations

_ENDPOINT_TYPE_BROKERS = 1
_CLUSTER_OPERATIONS_ALL = sum(1 << bit for bit in (5, 7, 8, 9, 10, 11, 12))


def _endpoint(ctx: RequestContext, broker) -> tuple[str, int]:
    if broker.broker_id == ctx.node.node_id:
        return ctx.node.advertised_endpoint(ctx.listener_name)
    endpoint = next((e for e in broker.endpoints if e[0] == ctx.listener_name),
                    broker.endpoints[0])
    return endpoint[1], endpoint[2]


def handle(ctx: RequestContext, request: DescribeClusterRequest) -> DescribeClusterResponse:
    node = ctx.node
    if ctx.api_version >= 1 and request.endpoint_type != _ENDPOINT_TYPE_BROKERS:
        return DescribeClusterResponse(
            error_code=ErrorCode.UNSUPPORTED_ENDPOINT_TYPE,
            error_message="Only broker endpoints are served by this listener",
            endpoint_type=request.endpoint_type, cluster_id=node.cluster_id)
    return DescribeClusterResponse(
        throttle_time_ms=0,
        error_code=0,
        endpoint_type=_ENDPOINT_TYPE_BROKERS,
        cluster_id=node.cluster_id,
        controller_id=node.controller_id(),
        brokers=[
            DescribeClusterResponse.DescribeClusterBroker(
                broker_id=b.broker_id, host=_endpoint(ctx, b)[0], port=_endpoint(ctx, b)[1],
                rack=b.rack)
            for b in sorted(node.image.brokers.values(), key=lambda b: b.broker_id)
            if not b.fenced and b.endpoints
        ],
        cluster_authorized_operations=(
            _CLUSTER_OPERATIONS_ALL if node.authorizer is None
            else authorized_operations(node.authorizer, ctx.principal, ctx.client_host,
                                       ResourceType.CLUSTER, CLUSTER_NAME))
        if request.include_cluster_authorized_operations else -2147483648,
    )
