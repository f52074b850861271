"""EndTxn (key 26): commit or abort a transaction.

The answer comes once the decision (PrepareCommit/PrepareAbort) is durable in
``__transaction_state``; the markers follow asynchronously, and until they land the
partitions' last stable offsets hold read_committed consumers before the transaction.  v5
(KIP-890 part 2) bumps the producer epoch on every transaction and returns the new one.
"""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.coordinator.txn.errors import for_version
from streambus.protocol.api_keys import ApiKey
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.end_txn import EndTxnRequest, EndTxnResponse
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize


def handle(ctx: RequestContext, request: EndTxnRequest) -> EndTxnResponse:
    version = ctx.api_version
    if not authorize(ctx, AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID,
                     request.transactional_id):
        return EndTxnResponse(throttle_time_ms=0,
                              error_code=ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    error, producer_id, producer_epoch = ctx.node.txn_coordinator.end_txn(
        request.transactional_id, request.producer_id, request.producer_epoch,
        request.committed, transaction_version=2 if version >= 5 else 1)
    response = EndTxnResponse(throttle_time_ms=0,
                              error_code=for_version(error, ApiKey.END_TXN, version))
    if version >= 5 and error == ErrorCode.NONE:
        response.producer_id = producer_id
        response.producer_epoch = producer_epoch
    return response
