"""CreatePartitions (key 37, v0-3): add partitions to existing topics.

The controller validates the new count and placement and returns PartitionRecords; once they
commit, the replica manager creates the new partitions' logs from the image.
"""

from __future__ import annotations

from collections import Counter

from streambus.broker.context import RequestContext
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize
from streambus.metadata import controller
from streambus.metadata.controller import ControllerError
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.create_partitions import (
    CreatePartitionsRequest,
    CreatePartitionsResponse,
)

_Result = CreatePartitionsResponse.CreatePartitionsTopicResult


def handle(ctx: RequestContext, request: CreatePartitionsRequest) -> CreatePartitionsResponse:
    node = ctx.node
    counts = Counter(topic.name for topic in request.topics)
    results = []
    for topic in request.topics:
        code, message = ErrorCode.NONE, None
        if counts[topic.name] > 1:
            code, message = ErrorCode.INVALID_REQUEST, "Duplicate topic in request."
        elif not authorize(ctx, AclOperation.ALTER, ResourceType.TOPIC, topic.name):
            code, message = ErrorCode.TOPIC_AUTHORIZATION_FAILED, "Authorization failed."
        else:
            try:
                records = controller.create_partitions(
                    node.image, topic.name, topic.count,
                    [a.broker_ids for a in topic.assignments] if topic.assignments else None,
                    usable_broker_ids=node.usable_broker_ids())
                if not request.validate_only:
                    node.commit_metadata(records)
            except ControllerError as exc:
                code, message = exc.error_code, exc.message
        results.append(_Result(name=topic.name, error_code=int(code), error_message=message))
    return CreatePartitionsResponse(throttle_time_ms=0, results=results)
