"""Transaction states and the table of legal transitions (Kafka's ``TransactionState``).

Rule 1: every transition of a transactional id's metadata is listed in
``VALID_PREVIOUS_STATES``; the coordinator asserts against this table before it prepares one.
Rule 2: this module knows nothing about records, clients or markers.

Theory of operation
-------------------
A transactional id moves through these states (ids are what ``TransactionLogValue``
stores in ``transaction_status``; names are what DescribeTransactions and ListTransactions
show)::

             InitProducerId                 AddPartitions / AddOffsets
    (none) ---------------> Empty ------------------------------------> Ongoing <--+
                              ^                                          |  |  |     | more
                              | InitProducerId         EndTxn(commit)    |  |  +-----+ partitions
                              |                     +--------------------+  |
                              |                     v                       | EndTxn(abort), timeout,
                    CompleteCommit <---------- PrepareCommit                | or InitProducerId
                    CompleteAbort  <---------- PrepareAbort <---------------+ (via PrepareEpochFence)
                              markers written            ^
                                                         | (TV2) EndTxn(abort) from Empty or Complete*

* **Prepare*** states are written to ``__transaction_state`` *before* any marker: once the
  coordinator acknowledged EndTxn the decision is durable, and a coordinator that restarts
  finds it and finishes writing the markers (``on_loaded``).  **Complete*** is written after
  every partition leader appended its marker.
* **PrepareEpochFence** is never persisted: an InitProducerId (or the timeout reaper) meeting
  an Ongoing transaction bumps the epoch in memory, then moves straight on to PrepareAbort
  with the bumped epoch, so the markers fence the old producer everywhere.  The client is
  told CONCURRENT_TRANSACTIONS and retries, which bumps the epoch once more.
* **Dead** is only a pending state: an expired transactional id is removed by a tombstone.

Besides ``state`` the metadata may hold a *pending* state while its record is being
appended; any request meeting a pending transition gets CONCURRENT_TRANSACTIONS (retriable).
"""

from __future__ import annotations

from enum import Enum

__all__ = ["TransactionState", "VALID_PREVIOUS_STATES", "STATE_BY_NAME", "EXPIRATION_ALLOWED"]


class TransactionState(Enum):
    """Kafka's states: ``value`` is (status id stored in the log, name shown to admins)."""

    EMPTY = (0, "Empty")
    ONGOING = (1, "Ongoing")
    PREPARE_COMMIT = (2, "PrepareCommit")
    PREPARE_ABORT = (3, "PrepareAbort")
    COMPLETE_COMMIT = (4, "CompleteCommit")
    COMPLETE_ABORT = (5, "CompleteAbort")
    DEAD = (6, "Dead")
    PREPARE_EPOCH_FENCE = (7, "PrepareEpochFence")

    @property
    def id(self) -> int:
        return self.value[0]

    @property
    def display_name(self) -> str:
        return self.value[1]

    @classmethod
    def from_id(cls, state_id: int) -> "TransactionState":
        """Raises:
            ValueError: an id no Kafka version writes.
        """
        for state in cls:
            if state.id == state_id:
                return state
        raise ValueError(f"unknown transaction state id {state_id}")

    @property
    def is_prepare(self) -> bool:
        return self in (TransactionState.PREPARE_COMMIT, TransactionState.PREPARE_ABORT)

    @property
    def is_complete(self) -> bool:
        return self in (TransactionState.COMPLETE_COMMIT, TransactionState.COMPLETE_ABORT)


_S = TransactionState

#: target state -> the states it may be entered from.  PrepareAbort from Empty and Complete*
#: exists only for transaction version 2 clients (EndTxn v5), which may abort without knowing
#: whether anything was started.
VALID_PREVIOUS_STATES: dict[TransactionState, frozenset[TransactionState]] = {
    _S.EMPTY: frozenset({_S.EMPTY, _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT}),
    _S.ONGOING: frozenset({_S.ONGOING, _S.EMPTY, _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT}),
    _S.PREPARE_COMMIT: frozenset({_S.ONGOING}),
    _S.PREPARE_ABORT: frozenset({_S.ONGOING, _S.PREPARE_EPOCH_FENCE, _S.EMPTY,
                                 _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT}),
    _S.COMPLETE_COMMIT: frozenset({_S.PREPARE_COMMIT}),
    _S.COMPLETE_ABORT: frozenset({_S.PREPARE_ABORT}),
    _S.DEAD: frozenset({_S.EMPTY, _S.COMPLETE_ABORT, _S.COMPLETE_COMMIT}),
    _S.PREPARE_EPOCH_FENCE: frozenset({_S.ONGOING}),
}

#: States whose transactional ids may expire after ``transactional.id.expiration.ms``.
EXPIRATION_ALLOWED = frozenset({_S.EMPTY, _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT})

#: Admin names (ListTransactions state filters) -> state.
STATE_BY_NAME: dict[str, TransactionState] = {state.display_name: state for state in _S}
