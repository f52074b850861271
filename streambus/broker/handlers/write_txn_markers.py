"""WriteTxnMarkers (key 27): transaction coordinators tell partition leaders to append COMMIT
or ABORT markers (KIP-98).

This module owns the partition-leader side (append each marker, then tell the group
coordinator when the partition is one of ``__consumer_offsets``, so the transaction's offsets
become committed or are dropped) and the coordinator's sending side, :func:`marker_writer_for`:
markers for partitions this node leads go through the very same function as a received
request, markers for other leaders as a WriteTxnMarkers request to them.  Only brokers may send
it (CLUSTER_ACTION).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from streambus.broker.context import RequestContext
from streambus.coordinator.runtime import OFFSETS_TOPIC
from streambus.coordinator.txn.coordinator import MarkerJob
from streambus.log.errors import LogError
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.write_txn_markers import (
    WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
)
from streambus.security.authorizer import AclOperation
from streambus.security.checks import authorize_cluster

__all__ = ["handle", "write_markers", "marker_writer_for"]

logger = logging.getLogger(__name__)

_Result = WriteTxnMarkersResponse.WritableTxnMarkerResult
_TopicResult = WriteTxnMarkersResponse.WritableTxnMarkerTopicResult
_PartitionResult = WriteTxnMarkersResponse.WritableTxnMarkerPartitionResult
_REMOTE_TIMEOUT_MS = 10_000


def _append_marker(node: Any, marker: WriteTxnMarkersRequest.WritableTxnMarker, topic: str,
                   index: int) -> int:
    partition = node.replica_manager.get(topic, index)
    if partition is None:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    try:
        partition.log.append_control_marker(
            producer_id=marker.producer_id, producer_epoch=marker.producer_epoch,
            coordinator_epoch=marker.coordinator_epoch, commit=marker.transaction_result,
            leader_epoch=partition.leader_epoch)
    except LogError as exc:
        logger.warning("marker on %s-%d failed: %s", topic, index, exc)
        return ErrorCode.KAFKA_STORAGE_ERROR
    except OSError:
        return ErrorCode.KAFKA_STORAGE_ERROR
    except Exception as exc:  # producer-state refusals carry their Kafka code
        code = getattr(exc, "error_code", None)
        if code is None:
            raise
        return int(code)
    node.replica_manager.after_append(partition)
    if topic == OFFSETS_TOPIC:
        groups = node.group_coordinator
        complete = getattr(groups, "complete_transaction", None)
        if complete is not None:
            complete(index, marker.producer_id, marker.transaction_result)
    return ErrorCode.NONE


def write_markers(node: Any, request: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse:
    """Append every marker of ``request`` to this node's partitions."""
    results = []
    for marker in request.markers:
        topics = []
        for topic in marker.topics:
            topics.append(_TopicResult(name=topic.name, partitions=[
                _PartitionResult(partition_index=index,
                                 error_code=_append_marker(node, marker, topic.name, index))
                for index in topic.partition_indexes]))
        results.append(_Result(producer_id=marker.producer_id, topics=topics))
    return WriteTxnMarkersResponse(markers=results)


def handle(ctx: RequestContext, request: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse:
    if not authorize_cluster(ctx, AclOperation.CLUSTER_ACTION):
        return WriteTxnMarkersResponse(markers=[
            _Result(producer_id=marker.producer_id, topics=[
                _TopicResult(name=topic.name, partitions=[
                    _PartitionResult(partition_index=index,
                                     error_code=ErrorCode.CLUSTER_AUTHORIZATION_FAILED)
                    for index in topic.partition_indexes])
                for topic in marker.topics])
            for marker in request.markers])
    return write_markers(ctx.node, request)


def _request(job: MarkerJob, partitions: list[tuple[str, int]]) -> WriteTxnMarkersRequest:
    by_topic: dict[str, list[int]] = {}
    for topic, index in partitions:
        by_topic.setdefault(topic, []).append(index)
    return WriteTxnMarkersRequest(markers=[WriteTxnMarkersRequest.WritableTxnMarker(
        producer_id=job.producer_id, producer_epoch=job.producer_epoch,
        transaction_result=job.commit, coordinator_epoch=job.coordinator_epoch,
        topics=[WriteTxnMarkersRequest.WritableTxnMarkerTopic(name=topic, partition_indexes=ids)
                for topic, ids in sorted(by_topic.items())])])


def _results(response: WriteTxnMarkersResponse) -> dict[tuple[str, int], ErrorCode]:
    return {(topic.name, partition.partition_index): ErrorCode.for_code(partition.error_code)
            for marker in response.markers for topic in marker.topics
            for partition in topic.partitions}


def marker_writer_for(node: Any):  # type: ignore[no-untyped-def]
    """The transaction coordinator's marker channel for ``node`` (Kafka's
    ``TransactionMarkerChannelManager``): one WriteTxnMarkers request per partition leader."""

    async def write(job: MarkerJob, partitions: list[tuple[str, int]]
                    ) -> dict[tuple[str, int], ErrorCode]:
        image = node.image
        by_leader: dict[int, list[tuple[str, int]]] = {}
        results: dict[tuple[str, int], ErrorCode] = {}
        for topic, index in partitions:
            topic_image = image.topics_by_name.get(topic)
            partition_image = None if topic_image is None else topic_image.partitions.get(index)
            if partition_image is None:
                results[(topic, index)] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            elif partition_image.leader < 0:
                results[(topic, index)] = ErrorCode.LEADER_NOT_AVAILABLE
            else:
                by_leader.setdefault(partition_image.leader, []).append((topic, index))
        for leader, targets in sorted(by_leader.items()):
            request = _request(job, targets)
            if leader == node.node_id:
                results.update(_results(write_markers(node, request)))
            else:
                results.update(await _send_remote(node, leader, request, targets))
        return results

    return write


async def _send_remote(node: Any, leader: int, request: WriteTxnMarkersRequest,
                       targets: list[tuple[str, int]]) -> dict[tuple[str, int], ErrorCode]:
    """WriteTxnMarkers to another broker over its PLAINTEXT listener."""
    from streambus.client.connection import BrokerConnection

    broker = node.image.brokers.get(leader)
    endpoint = None if broker is None else next(
        (e for e in broker.endpoints if e[3] == 0), None)  # security protocol 0: PLAINTEXT
    if endpoint is None:
        return {target: ErrorCode.NOT_LEADER_OR_FOLLOWER for target in targets}

    def exchange() -> WriteTxnMarkersResponse:
        with BrokerConnection.open((endpoint[1], endpoint[2]), timeout_ms=_REMOTE_TIMEOUT_MS,
                                   client_id=f"txn-markers-{node.node_id}") as connection:
            return connection.send(request, 1)

    try:
        return _results(await asyncio.to_thread(exchange))
    except Exception as exc:
        logger.info("WriteTxnMarkers to broker %d failed: %s", leader, exc)
        return {target: ErrorCode.NETWORK_EXCEPTION for target in targets}
