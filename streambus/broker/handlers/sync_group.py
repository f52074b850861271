"""SyncGroup (key 14), v0-v5: the leader hands in assignments; followers wait for theirs."""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.protocol.messages.sync_group import SyncGroupRequest, SyncGroupResponse


def handle(ctx: RequestContext, request: SyncGroupRequest):
    return ctx.node.group_coordinator.execute(
        request.group_id,
        lambda shard, token, now_ms: shard.sync_group(token, request, now_ms=now_ms),
        lambda error: SyncGroupResponse(error_code=error))
