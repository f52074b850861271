"""Error codes of the transaction APIs, as each request version can receive them.

This module owns the one table of per-version downgrades (Kafka's ``KafkaApis`` rules): a
client that predates an error code gets the code its version understands.

* PRODUCER_FENCED (KIP-588) reaches InitProducerId v4+, AddPartitionsToTxn v2+,
  AddOffsetsToTxn v2+ and EndTxn v2+; older versions get INVALID_PRODUCER_EPOCH, which their
  clients treat the same way.
* TRANSACTION_ABORTABLE (KIP-890) reaches AddPartitionsToTxn v5+, AddOffsetsToTxn v4+,
  EndTxn v4+, TxnOffsetCommit v4+ and Produce v11+; older versions get INVALID_TXN_STATE.
"""

from __future__ import annotations

from streambus.protocol.api_keys import ApiKey
from streambus.protocol.error_codes import ErrorCode

__all__ = ["for_version"]

_PRODUCER_FENCED_SINCE = {
    int(ApiKey.INIT_PRODUCER_ID): 4,
    int(ApiKey.ADD_PARTITIONS_TO_TXN): 2,
    int(ApiKey.ADD_OFFSETS_TO_TXN): 2,
    int(ApiKey.END_TXN): 2,
}
_TRANSACTION_ABORTABLE_SINCE = {
    int(ApiKey.ADD_PARTITIONS_TO_TXN): 5,
    int(ApiKey.ADD_OFFSETS_TO_TXN): 4,
    int(ApiKey.END_TXN): 4,
    int(ApiKey.TXN_OFFSET_COMMIT): 4,
    int(ApiKey.PRODUCE): 11,
}


def for_version(code: int, api_key: int, version: int) -> int:
    """``code`` as a ``version`` request of ``api_key`` may carry it."""
    if code == ErrorCode.PRODUCER_FENCED and version < _PRODUCER_FENCED_SINCE.get(int(api_key), 0):
        return int(ErrorCode.INVALID_PRODUCER_EPOCH)
    if code == ErrorCode.TRANSACTION_ABORTABLE \
            and version < _TRANSACTION_ABORTABLE_SINCE.get(int(api_key), 0):
        return int(ErrorCode.INVALID_TXN_STATE)
    return int(code)
