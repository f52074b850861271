"""InitProducerId (key 22): producer ids for idempotent producers (KIP-98, KIP-360).

Non-transactional producers always get a fresh producer id with epoch 0, as Kafka's
ProducerIdManager does; transactional ids need the transaction coordinator, which is not part of
this broker yet, so they are refused rather than half-served.
"""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.init_producer_id import (
    InitProducerIdRequest,
    InitProducerIdResponse,
)
from streambus.security.authorizer import AclOperation
from streambus.security.checks import authorize_cluster, authorize_topic_type


def handle(ctx: RequestContext, request: InitProducerIdRequest) -> InitProducerIdResponse:
    if request.transactional_id is not None:
        return InitProducerIdResponse(throttle_time_ms=0,
                                      error_code=ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                                      producer_id=-1, producer_epoch=-1)
    # KIP-679: an idempotent producer needs CLUSTER IDEMPOTENT_WRITE, or WRITE on any topic.
    if not (authorize_cluster(ctx, AclOperation.IDEMPOTENT_WRITE, audit=False)
            or authorize_topic_type(ctx, AclOperation.WRITE)):
        authorize_cluster(ctx, AclOperation.IDEMPOTENT_WRITE)  # audit the denial once
        return InitProducerIdResponse(throttle_time_ms=0,
                                      error_code=ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
                                      producer_id=-1, producer_epoch=-1)
    return InitProducerIdResponse(throttle_time_ms=0, error_code=0,
                                  producer_id=ctx.node.next_producer_id(), producer_epoch=0)
