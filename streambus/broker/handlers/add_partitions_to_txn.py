"""AddPartitionsToTxn (key 24): a producer adds partitions to its transaction (v0-v3), and a
partition leader asks whether partitions are in one (v4+, batched, KIP-890 ``verify_only``).

v0-v3 carry one transaction; v4+ carry many, each with ``verify_only``, and are meant for
brokers (Kafka requires CLUSTER_ACTION for them).  Every partition is answered: on an error
for the whole transaction every partition carries it; partitions that failed their own
checks (unknown topic, no WRITE) make the others OPERATION_NOT_ATTEMPTED, as Kafka does.
"""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.coordinator.txn.errors import for_version
from streambus.protocol.api_keys import ApiKey
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.add_partitions_to_txn import (
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse,
)
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize, authorize_cluster

_Response = AddPartitionsToTxnResponse
_TopicResult = AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult
_PartitionResult = AddPartitionsToTxnResponse.AddPartitionsToTxnPartitionResult


def _topic_results(results: dict[tuple[str, int], int]) -> list[_TopicResult]:
    by_topic: dict[str, list[_PartitionResult]] = {}
    for (topic, partition), code in results.items():
        by_topic.setdefault(topic, []).append(
            _PartitionResult(partition_index=partition, partition_error_code=code))
    return [_TopicResult(name=topic, results_by_partition=partitions)
            for topic, partitions in by_topic.items()]


def _one_transaction(ctx: RequestContext, transactional_id: str, producer_id: int,
                     producer_epoch: int, topics: list, verify_only: bool
                     ) -> dict[tuple[str, int], int]:
    version = ctx.api_version
    wanted = [(topic.name, partition) for topic in topics for partition in topic.partitions]
    if not authorize(ctx, AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, transactional_id):
        return {p: ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED for p in wanted}
    failed: dict[tuple[str, int], int] = {}
    image = ctx.node.image
    for topic in topics:
        allowed = authorize(ctx, AclOperation.WRITE, ResourceType.TOPIC, topic.name)
        known = image.topics_by_name.get(topic.name)
        for partition in topic.partitions:
            if not allowed:
                failed[(topic.name, partition)] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            elif known is None or partition not in known.partitions:
                failed[(topic.name, partition)] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    if failed:
        return {p: failed.get(p, ErrorCode.OPERATION_NOT_ATTEMPTED) for p in wanted}
    coordinator = ctx.node.txn_coordinator
    if verify_only:
        verified = coordinator.verify_partitions(transactional_id, producer_id, producer_epoch,
                                                 wanted)
        return {p: for_version(code, ApiKey.ADD_PARTITIONS_TO_TXN, version)
                for p, code in verified.items()}
    code = coordinator.add_partitions(transactional_id, producer_id, producer_epoch, wanted)
    code = for_version(code, ApiKey.ADD_PARTITIONS_TO_TXN, version)
    return {p: code for p in wanted}


def handle(ctx: RequestContext, request: AddPartitionsToTxnRequest) -> AddPartitionsToTxnResponse:
    if ctx.api_version <= 3:
        results = _one_transaction(ctx, request.v3_and_below_transactional_id,
                                   request.v3_and_below_producer_id,
                                   request.v3_and_below_producer_epoch,
                                   request.v3_and_below_topics, verify_only=False)
        return _Response(throttle_time_ms=0, results_by_topic_v3_and_below=_topic_results(results))
    if not authorize_cluster(ctx, AclOperation.CLUSTER_ACTION):
        return _Response(throttle_time_ms=0, error_code=ErrorCode.CLUSTER_AUTHORIZATION_FAILED)
    return _Response(throttle_time_ms=0, error_code=0, results_by_transaction=[
        _Response.AddPartitionsToTxnResult(
            transactional_id=transaction.transactional_id,
            topic_results=_topic_results(_one_transaction(
                ctx, transaction.transactional_id, transaction.producer_id,
                transaction.producer_epoch, transaction.topics, transaction.verify_only)))
        for transaction in request.transactions])
