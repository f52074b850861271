"""OffsetFetch (key 9), v1-v9: committed offsets of one group (v1-v7) or several (v8+).

Shapes per version: v1 reports errors per partition, v2-v7 add a top-level error and take a
null topic list as "every committed offset", v8+ batch groups (KIP-709) and v9 names the
KIP-848 member and epoch.  A partition without a commit reads offset -1.
"""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize, authorizer_of
from streambus.coordinator.runtime import CoordinatorError
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.offset_fetch import OffsetFetchRequest, OffsetFetchResponse

_MULTI_GROUP_VERSION = 8
_TOP_LEVEL_ERROR_VERSION = 2


def _fetch(ctx: RequestContext, group_id: str, topics, member_id, member_epoch,
           require_stable: bool = False):
    """(error, [(topic, [FetchedOffset])]) for one group."""
    if not authorize(ctx, AclOperation.DESCRIBE, ResourceType.GROUP, group_id):
        return ErrorCode.GROUP_AUTHORIZATION_FAILED, None
    error, fetched = _fetch_authorized_group(ctx, group_id, topics, member_id, member_epoch,
                                             require_stable)
    if fetched is None or authorizer_of(ctx) is None:
        return error, fetched
    # Topics the caller may not DESCRIBE: their partitions say TOPIC_AUTHORIZATION_FAILED when
    # asked for by name, and are left out of "every committed offset" (Kafka's filtering).
    shown = []
    for name, offsets in fetched:
        if authorize(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, name, audit=topics is not None):
            shown.append((name, offsets))
        elif topics is not None:
            shown.append((name, [_errored(o.partition_index, ErrorCode.TOPIC_AUTHORIZATION_FAILED)
                                 for o in offsets]))
    return error, shown


def _fetch_authorized_group(ctx: RequestContext, group_id: str, topics, member_id,
                            member_epoch, require_stable: bool = False):
    coordinator = ctx.node.group_coordinator
    try:
        _, shard = coordinator.shard_for(group_id, create_topic=True)
    except CoordinatorError as exc:
        return exc.error_code, None
    wanted = None if topics is None else [(t.name, list(t.partition_indexes)) for t in topics]
    return shard.offset_fetch(group_id, wanted, member_id=member_id, member_epoch=member_epoch,
                              require_stable=require_stable)


def handle(ctx: RequestContext, request: OffsetFetchRequest) -> OffsetFetchResponse:
    if ctx.api_version >= _MULTI_GROUP_VERSION:
        groups = []
        for group in request.groups:
            error, topics = _fetch(ctx, group.group_id, group.topics, group.member_id,
                                   group.member_epoch, request.require_stable)
            groups.append(OffsetFetchResponse.OffsetFetchResponseGroup(
                group_id=group.group_id, error_code=error,
                topics=[OffsetFetchResponse.OffsetFetchResponseTopics(name=name, partitions=[
                    OffsetFetchResponse.OffsetFetchResponsePartitions(
                        partition_index=o.partition_index, committed_offset=o.committed_offset,
                        committed_leader_epoch=o.committed_leader_epoch, metadata=o.metadata,
                        error_code=o.error_code)
                    for o in offsets]) for name, offsets in topics or []]))
        return OffsetFetchResponse(groups=groups)
    error, topics = _fetch(ctx, request.group_id, request.topics, None, -1,
                           ctx.api_version >= 7 and request.require_stable)
    if topics is None and request.topics is not None:
        # Per-partition errors, which is all v1 can say (v2+ also set the top-level error).
        topics = [(t.name, [_errored(p, error) for p in t.partition_indexes])
                  for t in request.topics]
    response = OffsetFetchResponse(topics=[
        OffsetFetchResponse.OffsetFetchResponseTopic(name=name, partitions=[
            OffsetFetchResponse.OffsetFetchResponsePartition(
                partition_index=o.partition_index, committed_offset=o.committed_offset,
                committed_leader_epoch=o.committed_leader_epoch, metadata=o.metadata,
                error_code=o.error_code)
            for o in offsets]) for name, offsets in topics or []])
    if ctx.api_version >= _TOP_LEVEL_ERROR_VERSION:
        response.error_code = error
    return response


def _errored(partition: int, error: int):
    from streambus.coordinator.group.offsets import NO_OFFSET, FetchedOffset

    return FetchedOffset(partition, NO_OFFSET, -1, "", error or ErrorCode.NONE)
