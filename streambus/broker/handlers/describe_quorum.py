"""DescribeQuorum (key 55): leader, epoch, high watermark and every voter's and observer's
progress in the metadata quorum (KIP-595, KIP-836).

Kafka's admin clients send it to any broker, which forwards it to the quorum leader; a single
node is its own leader.
"""

from __future__ import annotations

from typing import Any

from streambus.broker.cluster import describe_quorum_response
from streambus.broker.context import RequestContext
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.describe_quorum import (
    DescribeQuorumRequest,
    DescribeQuorumResponse,
)
from streambus.security.authorizer import AclOperation
from streambus.security.checks import authorize_cluster


def handle(ctx: RequestContext, request: DescribeQuorumRequest) -> Any:
    node = ctx.node
    if not authorize_cluster(ctx, AclOperation.DESCRIBE):  # as KafkaApis: CLUSTER DESCRIBE
        return DescribeQuorumResponse(error_code=ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
                                      error_message=ErrorCode.CLUSTER_AUTHORIZATION_FAILED.message)
    if node.cluster is not None:
        return node.cluster.describe_quorum(ctx.api_version)
    assert node.metadata is not None
    return describe_quorum_response(node.metadata, {}, ctx.api_version)
