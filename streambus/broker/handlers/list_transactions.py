"""ListTransactions (key 66, KIP-664; v1 adds the duration filter of KIP-994).

Unknown state names come back in ``unknown_state_filters``; ids the caller may not DESCRIBE
are left out, as Kafka does.
"""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.coordinator.txn.runtime import TxnCoordinatorError
from streambus.coordinator.txn.state import STATE_BY_NAME
from streambus.protocol.messages.list_transactions import (
    ListTransactionsRequest,
    ListTransactionsResponse,
)
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize


def handle(ctx: RequestContext, request: ListTransactionsRequest) -> ListTransactionsResponse:
    unknown = [name for name in request.state_filters if name not in STATE_BY_NAME]
    duration_ms = request.duration_filter if ctx.api_version >= 1 else -1
    try:
        listed = ctx.node.txn_coordinator.list(
            states=[name for name in request.state_filters if name in STATE_BY_NAME]
            if request.state_filters else [],
            producer_ids=request.producer_id_filters, duration_ms=duration_ms)
    except TxnCoordinatorError as exc:
        return ListTransactionsResponse(throttle_time_ms=0, error_code=exc.error_code,
                                        unknown_state_filters=unknown)
    if request.state_filters and not [n for n in request.state_filters if n in STATE_BY_NAME]:
        listed = []  # only unknown states asked for: nothing matches
    return ListTransactionsResponse(
        throttle_time_ms=0, error_code=0, unknown_state_filters=unknown,
        transaction_states=[
            ListTransactionsResponse.TransactionState(
                transactional_id=entry.transactional_id, producer_id=entry.producer_id,
                transaction_state=entry.state)
            for entry in listed
            if authorize(ctx, AclOperation.DESCRIBE, ResourceType.TRANSACTIONAL_ID,
                         entry.transactional_id, audit=False)])
