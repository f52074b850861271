"""The transaction coordinator (KIP-98): a pure shard per ``__transaction_state`` partition.

``state.py`` is the state table, ``records.py`` the stored record format, ``coordinator.py``
the pure shard (every decision, no I/O), and ``runtime.py`` the only asyncio module: it
appends the shard's records, writes transaction markers to partition leaders and runs the
timers.  Nothing in this package imports ``streambus.broker``.
"""

from __future__ import annotations

from streambus.coordinator.txn.coordinator import MarkerJob as MarkerJob
from streambus.coordinator.txn.coordinator import TransactionCoordinatorShard as TransactionCoordinatorShard
from streambus.coordinator.txn.coordinator import TxnConfig as TxnConfig
from streambus.coordinator.txn.coordinator import TxnOutcome as TxnOutcome
from streambus.coordinator.txn.state import TransactionState as TransactionState

__all__ = ["MarkerJob", "TransactionCoordinatorShard", "TransactionState", "TxnConfig",
           "TxnOutcome"]
