"""OffsetCommit (key 8), v2-v9: store committed offsets, answered once they are appended.

v2-v4 carry ``retention_time_ms`` (an explicit expiry); v9 is the KIP-848 form where the
generation is the member epoch.  Errors that concern the whole request (coordinator loading,
unknown member, illegal generation) are reported on every partition.
"""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize
from streambus.coordinator.runtime import then
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.offset_commit import OffsetCommitRequest, OffsetCommitResponse


def _all_partitions(request: OffsetCommitRequest, error: ErrorCode) -> OffsetCommitResponse:
    return OffsetCommitResponse(topics=[
        OffsetCommitResponse.OffsetCommitResponseTopic(name=topic.name, partitions=[
            OffsetCommitResponse.OffsetCommitResponsePartition(
                partition_index=p.partition_index, error_code=error)
            for p in topic.partitions])
        for topic in request.topics])


def handle(ctx: RequestContext, request: OffsetCommitRequest) -> OffsetCommitResponse:
    version = ctx.api_version
    if not authorize(ctx, AclOperation.READ, ResourceType.GROUP, request.group_id):
        return _all_partitions(request, ErrorCode.GROUP_AUTHORIZATION_FAILED)
    denied = [t for t in request.topics
              if not authorize(ctx, AclOperation.READ, ResourceType.TOPIC, t.name)]
    if denied:
        # Kafka answers TOPIC_AUTHORIZATION_FAILED for those and commits the rest.
        refused = _all_partitions(OffsetCommitRequest(topics=denied),
                                  ErrorCode.TOPIC_AUTHORIZATION_FAILED).topics
        request.topics = [t for t in request.topics if t not in denied]
        if not request.topics:
            return OffsetCommitResponse(topics=refused)
        return then(_commit(ctx, request, version),
                    lambda response: OffsetCommitResponse(
                        throttle_time_ms=response.throttle_time_ms,
                        topics=list(response.topics) + refused))
    return _commit(ctx, request, version)


def _commit(ctx: RequestContext, request: OffsetCommitRequest, version: int):
    return ctx.node.group_coordinator.execute(
        request.group_id,
        lambda shard, token, now_ms: shard.offset_commit(request, api_version=version,
                                                         now_ms=now_ms),
        lambda error: _all_partitions(request, error))
