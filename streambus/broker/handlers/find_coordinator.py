"""FindCoordinator (key 10): which broker coordinates a group or transactional id.  v4+
batches keys (KIP-699).

On a single node, this node coordinates every group and transactional id.  In a cluster the
coordinator is the leader of the key's partition of ``__consumer_offsets`` (groups) or
``__transaction_state`` (transactional ids), partitioned by Java's ``String.hashCode`` as
Kafka does.  While the topic does not exist yet (its creation is then requested from the
active controller) or the partition has no live leader, the answer is
COORDINATOR_NOT_AVAILABLE, which clients retry.
"""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.coordinator.runtime import OFFSETS_TOPIC, partition_for
from streambus.coordinator.txn.runtime import TRANSACTION_STATE_TOPIC
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

#: (error code, node id, host, port) of one key's answer.
_Answer = tuple[int, int, str, int]


def _authorized(ctx: RequestContext, key_type: int, key: str) -> bool:
    resource_type = ResourceType.GROUP if key_type == 0 else ResourceType.TRANSACTIONAL_ID
    return authorize(ctx, AclOperation.DESCRIBE, resource_type, key)


def _not_available() -> _Answer:
    return int(ErrorCode.COORDINATOR_NOT_AVAILABLE), -1, "", -1


def _coordinator(ctx: RequestContext, key_type: int, key: str) -> _Answer:
    """The coordinator of ``key`` as seen by this node's metadata image."""
    node = ctx.node
    if node.cluster is None:
        return (0, node.node_id, *node.advertised_endpoint(ctx.listener_name))
    if key_type == 0:
        topic_name, runtime = OFFSETS_TOPIC, node.group_coordinator
    else:
        topic_name, runtime = TRANSACTION_STATE_TOPIC, node.txn_coordinator
    image = node.image
    topic = image.topics_by_name.get(topic_name)
    if topic is None or not topic.partitions:
        runtime.ensure_topic()
        return _not_available()
    partition = topic.partitions.get(partition_for(key, len(topic.partitions)))
    leader = -1 if partition is None else partition.leader
    if leader == node.node_id:
        return (0, leader, *node.advertised_endpoint(ctx.listener_name))
    broker = image.brokers.get(leader)
    if broker is None or broker.fenced:
        return _not_available()
    endpoint = next((e for e in broker.endpoints if e[0] == ctx.listener_name), None)
    if endpoint is None:
        return _not_available()
    return 0, leader, endpoint[1], endpoint[2]


def _answer(ctx: RequestContext, key_type: int, key: str) -> _Answer:
    if key_type not in _KEY_TYPES:
        return int(ErrorCode.INVALID_REQUEST), -1, "", -1
    if not _authorized(ctx, key_type, key):
        return int(_DENIED[key_type]), -1, "", -1
    return _coordinator(ctx, key_type, key)


def handle(ctx: RequestContext, request: FindCoordinatorRequest) -> FindCoordinatorResponse:
    key_type = request.key_type if ctx.api_version >= 1 else 0
    if ctx.api_version >= 4:
        coordinators = []
        for key in request.coordinator_keys:
            code, node_id, host, port = _answer(ctx, key_type, key)
            coordinators.append(FindCoordinatorResponse.Coordinator(
                key=key, node_id=node_id, host=host, port=port, error_code=code,
                error_message=None))
        return FindCoordinatorResponse(throttle_time_ms=0, coordinators=coordinators)
    code, node_id, host, port = _answer(ctx, key_type, request.key)
    return FindCoordinatorResponse(
        throttle_time_ms=0, error_code=code, error_message=None, node_id=node_id, host=host,
        port=port)
