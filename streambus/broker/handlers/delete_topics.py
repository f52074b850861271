"""DeleteTopics (key 20): remove topics by name (v1-5) or by name or id (v6+)."""

from __future__ import annotations

import uuid

from streambus.broker.context import RequestContext
from streambus.metadata import controller
from streambus.metadata.controller import ControllerError
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.delete_topics import DeleteTopicsRequest, DeleteTopicsResponse
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize

_Result = DeleteTopicsResponse.DeletableTopicResult
_ZERO = uuid.UUID(int=0)


def handle(ctx: RequestContext, request: DeleteTopicsRequest) -> DeleteTopicsResponse:
    node = ctx.node
    if ctx.api_version >= 6:
        wanted = [(t.name, t.topic_id) for t in request.topics]
    else:
        wanted = [(name, _ZERO) for name in request.topic_names]
    results = []
    for name, topic_id in wanted:
        known = node.image.topics_by_id.get(topic_id) if not name else None
        resource_name = name or (known.name if known is not None else "")
        if ctx.node.authorizer is not None and not name and known is None:
            results.append(_Result(name=None, topic_id=topic_id,
                                   error_code=ErrorCode.UNKNOWN_TOPIC_ID, error_message=None))
            continue
        if not authorize(ctx, AclOperation.DELETE, ResourceType.TOPIC, resource_name):
            results.append(_Result(name=name, topic_id=topic_id,
                                   error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED,
                                   error_message="Authorization failed."))
            continue
        try:
            records, resolved_name, resolved_id = controller.delete_topic(
                node.image, name=name, topic_id=topic_id)
        except ControllerError as exc:
            results.append(_Result(name=name, topic_id=topic_id, error_code=int(exc.error_code),
                                   error_message=exc.message))
            continue
        node.commit_metadata(records)
        results.append(_Result(name=resolved_name, topic_id=resolved_id, error_code=0))
    return DeleteTopicsResponse(throttle_time_ms=0, responses=results)
