"""InitProducerId (key 22): producer ids for idempotent and transactional producers (KIP-98,
KIP-360, KIP-588).

Without a transactional id a producer gets a fresh producer id at epoch 0, as Kafka's
ProducerIdManager hands out.  With one, the transaction coordinator bumps the id's epoch
(fencing any older producer and aborting its open transaction), recognises v3+ retries of an
earlier bump, and rotates to a new producer id when the epoch is exhausted.
"""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.coordinator.txn.errors import for_version
from streambus.protocol.api_keys import ApiKey
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.init_producer_id import (
    InitProducerIdRequest,
    InitProducerIdResponse,
)
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize, authorize_cluster, authorize_topic_type


def _error(code: int) -> InitProducerIdResponse:
    return InitProducerIdResponse(throttle_time_ms=0, error_code=code, producer_id=-1,
                                  producer_epoch=-1)


def handle(ctx: RequestContext, request: InitProducerIdRequest) -> InitProducerIdResponse:
    version = ctx.api_version
    transactional_id = request.transactional_id
    if transactional_id is not None:
        if not authorize(ctx, AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, transactional_id):
            return _error(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
        expected = None
        if version >= 3 and (request.producer_id, request.producer_epoch) != (-1, -1):
            expected = (request.producer_id, request.producer_epoch)
        error, producer_id, producer_epoch = ctx.node.txn_coordinator.init_producer_id(
            transactional_id, request.transaction_timeout_ms, expected)
        if error != ErrorCode.NONE:
            return _error(for_version(error, ApiKey.INIT_PRODUCER_ID, version))
        return InitProducerIdResponse(throttle_time_ms=0, error_code=0, producer_id=producer_id,
                                      producer_epoch=producer_epoch)
    # KIP-679: an idempotent producer needs CLUSTER IDEMPOTENT_WRITE, or WRITE on any topic.
    if not (authorize_cluster(ctx, AclOperation.IDEMPOTENT_WRITE, audit=False)
            or authorize_topic_type(ctx, AclOperation.WRITE)):
        authorize_cluster(ctx, AclOperation.IDEMPOTENT_WRITE)  # audit the denial once
        return _error(ErrorCode.CLUSTER_AUTHORIZATION_FAILED)
    return InitProducerIdResponse(throttle_time_ms=0, error_code=0,
                                  producer_id=ctx.node.next_producer_id(), producer_epoch=0)
