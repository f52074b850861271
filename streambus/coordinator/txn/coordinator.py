"""The transaction coordinator shard: one per ``__transaction_state`` partition, pure.

This module owns the transactional ids that hash to one partition of ``__transaction_state``
and every decision about them (Kafka's ``TransactionCoordinator`` + ``TransactionMetadata``):
InitProducerId with a transactional id (epoch bumps, KIP-360 retries, producer id rotation on
epoch exhaustion, fencing an open transaction), AddPartitionsToTxn and its KIP-890 verify-only
form, EndTxn (transaction version 1, and version 2's epoch bump on every EndTxn v5),
completing a transaction once its markers are written, aborting timed-out transactions,
expiring idle transactional ids, DescribeTransactions and ListTransactions, and ``replay``,
which rebuilds everything from the partition's records.

Two-phase transitions, as in Kafka: an operation *prepares* a transition (the metadata gets a
pending state, which makes concurrent requests retry with CONCURRENT_TRANSACTIONS) and returns
the record to persist in a :class:`TxnOutcome`; the runtime appends the record and then calls
:meth:`TransactionCoordinatorShard.complete_transition` (or ``cancel_transition`` when the
append failed).  Only then does the state change, so nothing a client is told is ever ahead of
the log.  Completing a transition into PrepareCommit/PrepareAbort hands the runtime a
:class:`MarkerJob`: the COMMIT/ABORT markers to write to every partition of the transaction.

Never: asyncio, sockets, files, clocks.  Producer ids come from an injected callable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from streambus.coordinator.result import CoordinatorRecord
from streambus.coordinator.txn.records import (
    TRANSACTION_LOG_VALUE_VERSION,
    partitions_from_value,
    partitions_to_value,
)
from streambus.coordinator.txn.state import (
    EXPIRATION_ALLOWED,
    STATE_BY_NAME,
    VALID_PREVIOUS_STATES,
    TransactionState,
)
from streambus.protocol.coordinator_records import TransactionLogKey, TransactionLogValue
from streambus.protocol.error_codes import ErrorCode

__all__ = [
    "MarkerJob",
    "TransactionCoordinatorShard",
    "TransactionMetadata",
    "TxnConfig",
    "TxnOutcome",
    "TxnTransit",
    "TxnDescription",
    "NO_PRODUCER_ID",
    "NO_PRODUCER_EPOCH",
]

logger = logging.getLogger(__name__)

_S = TransactionState
NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
#: Kafka never hands out epoch 32767, so the coordinator can always fence one more time.
EPOCH_EXHAUSTED = 32767 - 1
Partition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class TxnConfig:
    """The broker settings the coordinator uses (Kafka's names in the comments)."""

    transaction_max_timeout_ms: int = 900_000  # transaction.max.timeout.ms
    transactional_id_expiration_ms: int = 604_800_000  # transactional.id.expiration.ms
    abort_timed_out_transaction_cleanup_interval_ms: int = 10_000
    remove_expired_transactional_id_cleanup_interval_ms: int = 3_600_000


@dataclass(frozen=True, slots=True)
class TxnTransit:
    """The metadata a prepared transition will install once its record is appended
    (Kafka's ``TxnTransitMetadata``)."""

    producer_id: int
    previous_producer_id: int
    next_producer_id: int
    producer_epoch: int
    last_producer_epoch: int
    txn_timeout_ms: int
    state: TransactionState
    partitions: frozenset[Partition]
    txn_start_timestamp_ms: int
    txn_last_update_timestamp_ms: int
    client_transaction_version: int

    def to_value(self) -> TransactionLogValue:
        return TransactionLogValue(
            producer_id=self.producer_id,
            previous_producer_id=self.previous_producer_id,
            next_producer_id=self.next_producer_id,
            producer_epoch=self.producer_epoch,
            transaction_timeout_ms=self.txn_timeout_ms,
            transaction_status=self.state.id,
            # Kafka stores no partitions for Empty/Complete* (null would do too).
            transaction_partitions=partitions_to_value(self.partitions),
            transaction_last_update_timestamp_ms=self.txn_last_update_timestamp_ms,
            transaction_start_timestamp_ms=self.txn_start_timestamp_ms,
            client_transaction_version=self.client_transaction_version,
        )


@dataclass(slots=True)
class TransactionMetadata:
    """Everything the coordinator knows about one transactional id."""

    transactional_id: str
    producer_id: int
    producer_epoch: int = NO_PRODUCER_EPOCH
    last_producer_epoch: int = NO_PRODUCER_EPOCH
    """The epoch before the last bump, to recognise a retried InitProducerId (KIP-360); not
    persisted (Kafka does not either)."""
    previous_producer_id: int = NO_PRODUCER_ID
    next_producer_id: int = NO_PRODUCER_ID
    txn_timeout_ms: int = 60_000
    state: TransactionState = TransactionState.EMPTY
    partitions: set[Partition] = field(default_factory=set)
    txn_start_timestamp_ms: int = -1
    txn_last_update_timestamp_ms: int = -1
    client_transaction_version: int = 0
    pending_state: TransactionState | None = None
    has_failed_epoch_fence: bool = False

    @property
    def is_epoch_exhausted(self) -> bool:
        return self.producer_epoch >= EPOCH_EXHAUSTED

    def transit(self, state: TransactionState, *, producer_id: int | None = None,
                next_producer_id: int = NO_PRODUCER_ID, producer_epoch: int | None = None,
                last_producer_epoch: int | None = None, txn_timeout_ms: int | None = None,
                partitions: Iterable[Partition] | None = None,
                txn_start_timestamp_ms: int | None = None, now_ms: int,
                client_transaction_version: int | None = None) -> TxnTransit:
        """Prepare a transition to ``state`` (Kafka's ``prepareTransitionTo``): validate it
        against the state table and mark it pending."""
        if self.pending_state is not None:
            raise AssertionError(f"{self.transactional_id}: transition to {state} while "
                                 f"{self.pending_state} is pending")
        if self.state not in VALID_PREVIOUS_STATES[state]:
            raise AssertionError(f"{self.transactional_id}: {self.state} -> {state} is not a "
                                 "legal transition")
        transit = TxnTransit(
            producer_id=self.producer_id if producer_id is None else producer_id,
            previous_producer_id=self.producer_id,
            next_producer_id=next_producer_id,
            producer_epoch=self.producer_epoch if producer_epoch is None else producer_epoch,
            last_producer_epoch=(self.last_producer_epoch if last_producer_epoch is None
                                 else last_producer_epoch),
            txn_timeout_ms=self.txn_timeout_ms if txn_timeout_ms is None else txn_timeout_ms,
            state=state,
            partitions=frozenset(self.partitions if partitions is None else partitions),
            txn_start_timestamp_ms=(self.txn_start_timestamp_ms if txn_start_timestamp_ms is None
                                    else txn_start_timestamp_ms),
            txn_last_update_timestamp_ms=now_ms,
            client_transaction_version=(self.client_transaction_version
                                        if client_transaction_version is None
                                        else client_transaction_version),
        )
        assert transit.producer_id >= 0, transit
        assert state is _S.DEAD or transit.producer_epoch >= 0, transit
        self.pending_state = state
        return transit


@dataclass(frozen=True, slots=True)
class MarkerJob:
    """Markers to write for one decided transaction: one per partition, each with the
    coordinator epoch so that partition leaders can fence a deposed coordinator."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    commit: bool
    coordinator_epoch: int
    partitions: frozenset[Partition]


@dataclass(frozen=True, slots=True)
class TxnOutcome:
    """What an operation asks of the runtime.

    Without a ``transit`` the caller is answered ``error`` at once.  With one, the runtime
    appends ``records``; on success it calls ``complete_transition`` and answers ``error``
    (NONE, or CONCURRENT_TRANSACTIONS after InitProducerId fenced an open transaction); on
    failure it calls ``cancel_transition`` and answers the append's error.
    """

    error: ErrorCode = ErrorCode.NONE
    records: tuple[CoordinatorRecord, ...] = ()
    transit: TxnTransit | None = None
    transactional_id: str = ""
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH
    epoch_fence: bool = False
    """The transit fences an open transaction (a failed append sets has_failed_epoch_fence)."""


@dataclass(frozen=True, slots=True)
class TxnDescription:
    """DescribeTransactions/ListTransactions view of one transactional id."""

    transactional_id: str
    state: str
    producer_id: int
    producer_epoch: int
    txn_timeout_ms: int
    txn_start_timestamp_ms: int
    partitions: tuple[Partition, ...]


def _error(code: ErrorCode) -> TxnOutcome:
    return TxnOutcome(error=code)


class TransactionCoordinatorShard:
    """State of the transactional ids of one ``__transaction_state`` partition.

    Args:
        config: coordinator settings.
        producer_ids: hands out a fresh producer id (may raise; the request then fails).
        coordinator_epoch: the partition's leader epoch while this shard serves it.
    """

    def __init__(self, config: TxnConfig | None = None,
                 producer_ids: Callable[[], int] | None = None, *,
                 coordinator_epoch: int = 0) -> None:
        self.config = config or TxnConfig()
        self._producer_ids = producer_ids or _counter()
        self.coordinator_epoch = coordinator_epoch
        self.transactions: dict[str, TransactionMetadata] = {}

    # -- InitProducerId ---------------------------------------------------------------------

    def init_producer_id(self, transactional_id: str, txn_timeout_ms: int, *,
                         expected: tuple[int, int] | None, now_ms: int) -> TxnOutcome:
        """InitProducerId for a transactional id.

        Args:
            expected: (producer_id, producer_epoch) from v3+ requests that are not -1/-1: a
                producer asking to bump its epoch after an abortable error (KIP-360).
        """
        if not transactional_id:
            return _error(ErrorCode.INVALID_REQUEST)
        if not 0 < txn_timeout_ms <= self.config.transaction_max_timeout_ms:
            return _error(ErrorCode.INVALID_TRANSACTION_TIMEOUT)
        metadata = self.transactions.get(transactional_id)
        if metadata is None:
            try:
                producer_id = self._producer_ids()
            except Exception as exc:  # the controller could not hand out a block
                return _error(_error_code_of(exc))
            metadata = TransactionMetadata(transactional_id, producer_id,
                                           txn_timeout_ms=txn_timeout_ms,
                                           txn_last_update_timestamp_ms=now_ms)
            self.transactions[transactional_id] = metadata
        if metadata.pending_state is not None:
            return _error(ErrorCode.CONCURRENT_TRANSACTIONS)
        if expected is not None and not self._is_valid_producer_id(metadata, expected):
            return _error(ErrorCode.PRODUCER_FENCED)
        state = metadata.state
        if state.is_prepare:
            return _error(ErrorCode.CONCURRENT_TRANSACTIONS)
        if state is _S.ONGOING:
            # Abort the open transaction with a bumped epoch (never returned to anyone); the
            # client retries after CONCURRENT_TRANSACTIONS and gets a second bump.
            return self._fence_and_abort(metadata, now_ms, answer=ErrorCode.CONCURRENT_TRANSACTIONS)
        if state in (_S.EMPTY, _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT):
            if metadata.is_epoch_exhausted and (expected is None
                                                or expected[1] == metadata.producer_epoch):
                try:
                    new_producer_id = self._producer_ids()
                except Exception as exc:
                    return _error(_error_code_of(exc))
                transit = metadata.transit(
                    _S.EMPTY, producer_id=new_producer_id, producer_epoch=0,
                    last_producer_epoch=(metadata.producer_epoch if expected is not None
                                         else NO_PRODUCER_EPOCH),
                    txn_timeout_ms=txn_timeout_ms, partitions=(), txn_start_timestamp_ms=-1,
                    now_ms=now_ms)
            else:
                epochs = self._bumped_epochs(metadata, expected)
                if epochs is None:
                    return _error(ErrorCode.PRODUCER_FENCED)
                transit = metadata.transit(
                    _S.EMPTY, producer_epoch=epochs[0], last_producer_epoch=epochs[1],
                    txn_timeout_ms=txn_timeout_ms, partitions=(), txn_start_timestamp_ms=-1,
                    now_ms=now_ms)
            return self._outcome(metadata, transit)
        raise AssertionError(f"{transactional_id} is in {state}, which is never stable")

    @staticmethod
    def _is_valid_producer_id(metadata: TransactionMetadata, expected: tuple[int, int]) -> bool:
        producer_id, epoch = expected
        return (metadata.producer_epoch == NO_PRODUCER_EPOCH
                or producer_id == metadata.producer_id
                or (producer_id == metadata.previous_producer_id and epoch >= EPOCH_EXHAUSTED))

    @staticmethod
    def _bumped_epochs(metadata: TransactionMetadata,
                       expected: tuple[int, int] | None) -> tuple[int, int] | None:
        """(new epoch, last epoch) of Kafka's ``prepareIncrementProducerEpoch``, or None when
        the expected epoch is a fenced one."""
        bumped = metadata.producer_epoch + 1
        if expected is None:
            return bumped, NO_PRODUCER_EPOCH
        expected_epoch = expected[1]
        if metadata.producer_epoch == NO_PRODUCER_EPOCH or expected_epoch == metadata.producer_epoch:
            return bumped, metadata.producer_epoch
        if expected_epoch == metadata.last_producer_epoch:
            # A retry of a bump whose answer was lost: hand out the same epoch again.
            return metadata.producer_epoch, metadata.last_producer_epoch
        return None

    # -- AddPartitionsToTxn / AddOffsetsToTxn -----------------------------------------------

    def add_partitions(self, transactional_id: str, producer_id: int, producer_epoch: int,
                       partitions: Iterable[Partition], *, now_ms: int) -> TxnOutcome:
        """AddPartitionsToTxn (and AddOffsetsToTxn, whose partition is the group's
        ``__consumer_offsets`` partition)."""
        wanted = set(partitions)
        if not transactional_id:
            return _error(ErrorCode.INVALID_REQUEST)
        metadata = self.transactions.get(transactional_id)
        if metadata is None or metadata.producer_id != producer_id:
            return _error(ErrorCode.INVALID_PRODUCER_ID_MAPPING)
        if metadata.producer_epoch != producer_epoch:
            return _error(ErrorCode.PRODUCER_FENCED)
        if metadata.pending_state is not None or metadata.state.is_prepare:
            return _error(ErrorCode.CONCURRENT_TRANSACTIONS)
        if metadata.state is _S.ONGOING and wanted <= metadata.partitions:
            return _error(ErrorCode.NONE)  # nothing new to persist
        start_ms = (now_ms if metadata.state in (_S.EMPTY, _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT)
                    else metadata.txn_start_timestamp_ms)
        transit = metadata.transit(_S.ONGOING, partitions=metadata.partitions | wanted,
                                   txn_start_timestamp_ms=start_ms, now_ms=now_ms)
        return self._outcome(metadata, transit)

    def verify_partitions(self, transactional_id: str, producer_id: int, producer_epoch: int,
                          partitions: Iterable[Partition]) -> dict[Partition, ErrorCode]:
        """KIP-890 part 1 (AddPartitionsToTxn v4+ ``verify_only``): is each partition part of
        the producer's open transaction?  A partition leader asks before it accepts the first
        transactional write of a producer, so a late or stray write cannot open a transaction
        the coordinator will never end (the "hanging transaction")."""
        wanted = list(partitions)
        metadata = self.transactions.get(transactional_id) if transactional_id else None
        if not transactional_id:
            code = ErrorCode.INVALID_REQUEST
        elif metadata is None or metadata.producer_id != producer_id:
            code = ErrorCode.INVALID_PRODUCER_ID_MAPPING
        elif metadata.producer_epoch != producer_epoch:
            code = ErrorCode.PRODUCER_FENCED
        elif metadata.state.is_prepare:
            code = ErrorCode.CONCURRENT_TRANSACTIONS
        else:
            return {p: (ErrorCode.NONE if p in metadata.partitions and metadata.state is _S.ONGOING
                        else ErrorCode.TRANSACTION_ABORTABLE) for p in wanted}
        return {p: code for p in wanted}

    # -- EndTxn -----------------------------------------------------------------------------

    def end_txn(self, transactional_id: str, producer_id: int, producer_epoch: int,
                commit: bool, *, now_ms: int, transaction_version: int = 1,
                from_client: bool = True) -> TxnOutcome:
        """EndTxn.  ``transaction_version`` 2 (EndTxn v5, KIP-890 part 2) bumps the epoch on
        every decided transaction and accepts retries and aborts that version 1 refuses."""
        if not transactional_id:
            return _error(ErrorCode.INVALID_REQUEST)
        metadata = self.transactions.get(transactional_id)
        if metadata is None:
            return _error(ErrorCode.INVALID_PRODUCER_ID_MAPPING)
        if transaction_version >= 2:
            return self._end_txn_v2(metadata, producer_id, producer_epoch, commit, now_ms,
                                    from_client)
        if metadata.producer_id != producer_id:
            return _error(ErrorCode.INVALID_PRODUCER_ID_MAPPING)
        # Clients must match exactly; the coordinator's own aborts may carry a bumped epoch.
        if (from_client and producer_epoch != metadata.producer_epoch) \
                or producer_epoch < metadata.producer_epoch:
            return _error(ErrorCode.PRODUCER_FENCED)
        if metadata.pending_state is not None \
                and metadata.pending_state is not _S.PREPARE_EPOCH_FENCE:
            return _error(ErrorCode.CONCURRENT_TRANSACTIONS)
        state = metadata.state
        target = _S.PREPARE_COMMIT if commit else _S.PREPARE_ABORT
        if state is _S.ONGOING:
            fence = metadata.pending_state is _S.PREPARE_EPOCH_FENCE
            if fence:
                if commit:
                    return _error(ErrorCode.CONCURRENT_TRANSACTIONS)
                metadata.pending_state = None
                metadata.producer_epoch = producer_epoch
                metadata.last_producer_epoch = NO_PRODUCER_EPOCH
            transit = metadata.transit(target, now_ms=now_ms, client_transaction_version=0)
            return self._outcome(metadata, transit, epoch_fence=fence)
        if state is _S.COMPLETE_COMMIT:
            return _error(ErrorCode.NONE if commit else ErrorCode.INVALID_TXN_STATE)
        if state is _S.COMPLETE_ABORT:
            return _error(ErrorCode.INVALID_TXN_STATE if commit else ErrorCode.NONE)
        if state is _S.PREPARE_COMMIT:
            return _error(ErrorCode.CONCURRENT_TRANSACTIONS if commit else ErrorCode.INVALID_TXN_STATE)
        if state is _S.PREPARE_ABORT:
            return _error(ErrorCode.INVALID_TXN_STATE if commit else ErrorCode.CONCURRENT_TRANSACTIONS)
        return _error(ErrorCode.INVALID_TXN_STATE)  # Empty

    def _end_txn_v2(self, metadata: TransactionMetadata, producer_id: int, producer_epoch: int,
                    commit: bool, now_ms: int, from_client: bool) -> TxnOutcome:
        """Kafka's transaction-version-2 EndTxn table::

                            Abort            Commit
                            retry  current   retry  current
            Empty           PF     bump      PF     ITS
            CompleteAbort   NONE   bump      ITS    ITS
            CompleteCommit  ITS    bump      NONE   ITS

        (PF PRODUCER_FENCED, ITS INVALID_TXN_STATE; a retry carries the epoch before the bump.)
        """
        fence = metadata.pending_state is _S.PREPARE_EPOCH_FENCE
        retry_on_overflow = (not fence and metadata.previous_producer_id == producer_id
                             and producer_epoch == EPOCH_EXHAUSTED and metadata.producer_epoch == 0)
        retry_on_bump = not fence and metadata.producer_epoch == producer_epoch + 1
        state = metadata.state
        if fence:
            valid_epoch = ((not from_client or producer_epoch == metadata.producer_epoch)
                           and producer_epoch >= metadata.producer_epoch)
        elif state.is_prepare:
            valid_epoch = retry_on_bump
        elif state.is_complete:
            valid_epoch = retry_on_bump or retry_on_overflow or producer_epoch == metadata.producer_epoch
        else:
            valid_epoch = producer_epoch == metadata.producer_epoch
        is_retry = retry_on_bump or retry_on_overflow
        if metadata.producer_id != producer_id and not retry_on_overflow:
            return _error(ErrorCode.INVALID_PRODUCER_ID_MAPPING)
        if not valid_epoch:
            return _error(ErrorCode.PRODUCER_FENCED)
        if metadata.pending_state is not None and not fence:
            return _error(ErrorCode.CONCURRENT_TRANSACTIONS)

        def complete(target: TransactionState, no_partition_added: bool) -> TxnOutcome:
            next_producer_id = NO_PRODUCER_ID
            if not fence and metadata.is_epoch_exhausted:
                try:
                    next_producer_id = self._producer_ids()
                except Exception as exc:
                    return _error(_error_code_of(exc))
            if target is _S.PREPARE_ABORT and fence:
                metadata.pending_state = None
                metadata.producer_epoch = producer_epoch
                metadata.last_producer_epoch = NO_PRODUCER_EPOCH
            transit = metadata.transit(
                target, next_producer_id=next_producer_id,
                producer_epoch=metadata.producer_epoch + 1,
                last_producer_epoch=metadata.producer_epoch,
                txn_start_timestamp_ms=now_ms if no_partition_added else None,
                now_ms=now_ms, client_transaction_version=2)
            return self._outcome(metadata, transit, epoch_fence=fence)

        if state is _S.ONGOING:
            return complete(_S.PREPARE_COMMIT if commit else _S.PREPARE_ABORT, False)
        if state is _S.COMPLETE_COMMIT:
            if commit:
                return _error(ErrorCode.NONE) if is_retry else _error(ErrorCode.INVALID_TXN_STATE)
            return _error(ErrorCode.INVALID_TXN_STATE) if is_retry else complete(_S.PREPARE_ABORT, True)
        if state is _S.COMPLETE_ABORT:
            if commit:
                return _error(ErrorCode.INVALID_TXN_STATE)
            return _error(ErrorCode.NONE) if is_retry else complete(_S.PREPARE_ABORT, True)
        if state is _S.PREPARE_COMMIT:
            return _error(ErrorCode.CONCURRENT_TRANSACTIONS if commit else ErrorCode.INVALID_TXN_STATE)
        if state is _S.PREPARE_ABORT:
            return _error(ErrorCode.INVALID_TXN_STATE if commit else ErrorCode.CONCURRENT_TRANSACTIONS)
        if state is _S.EMPTY and not commit:
            return complete(_S.PREPARE_ABORT, True)
        return _error(ErrorCode.INVALID_TXN_STATE)

    def _fence_and_abort(self, metadata: TransactionMetadata, now_ms: int, *,
                         answer: ErrorCode) -> TxnOutcome:
        """PrepareEpochFence then PrepareAbort with the bumped epoch (InitProducerId meeting
        an open transaction, or the timeout reaper)."""
        assert metadata.state is _S.ONGOING and metadata.pending_state is None
        bumped = (metadata.producer_epoch if metadata.has_failed_epoch_fence
                  else metadata.producer_epoch + 1)
        metadata.transit(_S.PREPARE_EPOCH_FENCE, producer_epoch=bumped, now_ms=now_ms)
        outcome = self.end_txn(metadata.transactional_id, metadata.producer_id, bumped, False,
                               now_ms=now_ms, from_client=False,
                               transaction_version=metadata.client_transaction_version)
        if outcome.transit is None:
            metadata.pending_state = None
            return outcome
        return TxnOutcome(error=answer, records=outcome.records, transit=outcome.transit,
                          transactional_id=outcome.transactional_id,
                          producer_id=outcome.producer_id, producer_epoch=outcome.producer_epoch,
                          epoch_fence=True)

    # -- completing transitions -------------------------------------------------------------

    def complete_transition(self, transactional_id: str, transit: TxnTransit) -> MarkerJob | None:
        """Install ``transit`` after its record was appended (Kafka's
        ``completeTransitionTo``).

        Returns:
            The markers to write when the transaction entered PrepareCommit/PrepareAbort.
        """
        metadata = self.transactions[transactional_id]
        if metadata.pending_state is not transit.state:
            raise AssertionError(f"{transactional_id}: completing {transit.state} but "
                                 f"{metadata.pending_state} is pending")
        target = transit.state
        if target is _S.EMPTY:
            metadata.txn_timeout_ms = transit.txn_timeout_ms
            metadata.producer_epoch = transit.producer_epoch
            metadata.last_producer_epoch = transit.last_producer_epoch
            metadata.producer_id = transit.producer_id
            metadata.previous_producer_id = transit.previous_producer_id
            metadata.partitions = set()
            metadata.txn_start_timestamp_ms = -1
        elif target is _S.ONGOING:
            assert metadata.partitions <= transit.partitions
            metadata.txn_start_timestamp_ms = transit.txn_start_timestamp_ms
            metadata.partitions = set(transit.partitions)
        elif target.is_prepare:
            metadata.txn_start_timestamp_ms = transit.txn_start_timestamp_ms
            if transit.client_transaction_version >= 2:
                metadata.producer_epoch = transit.producer_epoch
                metadata.last_producer_epoch = transit.last_producer_epoch
                metadata.next_producer_id = transit.next_producer_id
        elif target.is_complete:
            metadata.partitions = set()
            metadata.has_failed_epoch_fence = False
            if transit.client_transaction_version >= 2:
                metadata.producer_id = transit.producer_id
                metadata.producer_epoch = transit.producer_epoch
                metadata.previous_producer_id = transit.previous_producer_id
                metadata.next_producer_id = transit.next_producer_id
        else:
            raise AssertionError(f"{transactional_id}: {target} is never completed")
        metadata.client_transaction_version = transit.client_transaction_version
        metadata.txn_last_update_timestamp_ms = transit.txn_last_update_timestamp_ms
        metadata.pending_state = None
        metadata.state = target
        if target.is_prepare:
            return self._marker_job(metadata)
        return None

    def cancel_transition(self, transactional_id: str, *, epoch_fence: bool = False) -> None:
        """The record of a prepared transition could not be appended: forget the pending state.
        A failed fence keeps its bumped epoch in mind, so the next fence does not bump again
        (the bumped epoch was never returned to anyone)."""
        metadata = self.transactions.get(transactional_id)
        if metadata is None:
            return
        metadata.pending_state = None
        if epoch_fence:
            metadata.has_failed_epoch_fence = True

    def prepare_complete(self, job: MarkerJob, *, now_ms: int) -> TxnOutcome:
        """Every marker of ``job`` is written: persist CompleteCommit/CompleteAbort."""
        metadata = self.transactions.get(job.transactional_id)
        if metadata is None or not metadata.state.is_prepare or metadata.pending_state is not None:
            return _error(ErrorCode.INVALID_TXN_STATE)
        if (metadata.producer_id, metadata.producer_epoch) != (job.producer_id, job.producer_epoch) \
                or job.coordinator_epoch != self.coordinator_epoch:
            return _error(ErrorCode.PRODUCER_FENCED)
        target = _S.COMPLETE_COMMIT if metadata.state is _S.PREPARE_COMMIT else _S.COMPLETE_ABORT
        producer_id, producer_epoch = metadata.producer_id, metadata.producer_epoch
        if metadata.client_transaction_version >= 2 and metadata.next_producer_id != NO_PRODUCER_ID:
            producer_id, producer_epoch = metadata.next_producer_id, 0  # epoch overflow
        transit = metadata.transit(target, producer_id=producer_id, producer_epoch=producer_epoch,
                                   partitions=(), now_ms=now_ms)
        return self._outcome(metadata, transit)

    def _marker_job(self, metadata: TransactionMetadata) -> MarkerJob:
        return MarkerJob(
            transactional_id=metadata.transactional_id, producer_id=metadata.producer_id,
            producer_epoch=metadata.producer_epoch,
            commit=metadata.state is _S.PREPARE_COMMIT,
            coordinator_epoch=self.coordinator_epoch, partitions=frozenset(metadata.partitions))

    def _outcome(self, metadata: TransactionMetadata, transit: TxnTransit, *,
                 error: ErrorCode = ErrorCode.NONE, epoch_fence: bool = False) -> TxnOutcome:
        record = CoordinatorRecord(TransactionLogKey(transactional_id=metadata.transactional_id),
                                   transit.to_value(), TRANSACTION_LOG_VALUE_VERSION)
        return TxnOutcome(error=error, records=(record,), transit=transit,
                          transactional_id=metadata.transactional_id,
                          producer_id=transit.producer_id, producer_epoch=transit.producer_epoch,
                          epoch_fence=epoch_fence)

    # -- timers -----------------------------------------------------------------------------

    def timed_out_transactions(self, now_ms: int) -> list[TxnOutcome]:
        """Fence and abort every Ongoing transaction open longer than its timeout (Kafka's
        ``abortTimedOutTransactions``).  The epoch bump makes the abandoned producer's next
        request fail, so it cannot quietly continue a transaction that no longer exists."""
        outcomes = []
        for metadata in sorted(self.transactions.values(), key=lambda m: m.transactional_id):
            if (metadata.state is _S.ONGOING and metadata.pending_state is None
                    and metadata.txn_start_timestamp_ms >= 0
                    and metadata.txn_start_timestamp_ms + metadata.txn_timeout_ms < now_ms):
                outcome = self._fence_and_abort(metadata, now_ms, answer=ErrorCode.NONE)
                if outcome.transit is not None:
                    logger.info("aborting transaction %s (producer %d): open for more than "
                                "%d ms", metadata.transactional_id, metadata.producer_id,
                                metadata.txn_timeout_ms)
                    outcomes.append(outcome)
        return outcomes

    def expired_transactional_ids(self, now_ms: int) -> list[TxnOutcome]:
        """Tombstones for idle transactional ids (``transactional.id.expiration.ms``)."""
        outcomes = []
        expiration_ms = self.config.transactional_id_expiration_ms
        for transactional_id, metadata in sorted(self.transactions.items()):
            if (metadata.state in EXPIRATION_ALLOWED and metadata.pending_state is None
                    and metadata.txn_last_update_timestamp_ms + expiration_ms <= now_ms):
                transit = metadata.transit(_S.DEAD, now_ms=now_ms)
                record = CoordinatorRecord(TransactionLogKey(transactional_id=transactional_id),
                                           None)
                outcomes.append(TxnOutcome(records=(record,), transit=transit,
                                           transactional_id=transactional_id))
        return outcomes

    def remove_dead(self, transactional_id: str) -> None:
        """The tombstone of an expired id was appended: forget it."""
        metadata = self.transactions.get(transactional_id)
        if metadata is not None and metadata.pending_state is _S.DEAD:
            del self.transactions[transactional_id]

    # -- loading ----------------------------------------------------------------------------

    def replay(self, record: CoordinatorRecord) -> None:
        """Apply one stored record (Kafka's ``TransactionLog.readTxnRecordValue``)."""
        key = record.key
        assert isinstance(key, TransactionLogKey)
        value = record.value
        if value is None:
            self.transactions.pop(key.transactional_id, None)
            return
        state = TransactionState.from_id(value.transaction_status)
        self.transactions[key.transactional_id] = TransactionMetadata(
            transactional_id=key.transactional_id,
            producer_id=value.producer_id,
            producer_epoch=value.producer_epoch,
            previous_producer_id=value.previous_producer_id,
            next_producer_id=value.next_producer_id,
            txn_timeout_ms=value.transaction_timeout_ms,
            state=state,
            partitions=partitions_from_value(value),
            txn_start_timestamp_ms=value.transaction_start_timestamp_ms,
            txn_last_update_timestamp_ms=value.transaction_last_update_timestamp_ms,
            client_transaction_version=value.client_transaction_version,
        )

    def on_loaded(self, coordinator_epoch: int) -> list[MarkerJob]:
        """After a load: the transactions decided but not completed before the restart, whose
        markers must be (re)written now (Kafka's ``loadTransactionsForTxnTopicPartition``)."""
        self.coordinator_epoch = coordinator_epoch
        return [self._marker_job(metadata)
                for _, metadata in sorted(self.transactions.items())
                if metadata.state.is_prepare]

    # -- admin ------------------------------------------------------------------------------

    def describe(self, transactional_id: str) -> TxnDescription | ErrorCode:
        if not transactional_id:
            return ErrorCode.INVALID_REQUEST
        metadata = self.transactions.get(transactional_id)
        if metadata is None or metadata.state is _S.DEAD:
            return ErrorCode.TRANSACTIONAL_ID_NOT_FOUND
        return _describe(metadata)

    def list(self, *, states: Sequence[str] = (), producer_ids: Sequence[int] = (),
             duration_ms: int = -1, now_ms: int = 0) -> list[TxnDescription]:
        """ListTransactions: filters combine with AND; an empty filter matches everything;
        ``duration_ms`` >= 0 keeps Ongoing-or-later transactions running at least that long."""
        wanted_states = {STATE_BY_NAME[name] for name in states if name in STATE_BY_NAME}
        wanted_ids = set(producer_ids)
        listed = []
        for _, metadata in sorted(self.transactions.items()):
            if metadata.state is _S.DEAD:
                continue
            if states and metadata.state not in wanted_states:
                continue
            if wanted_ids and metadata.producer_id not in wanted_ids:
                continue
            if duration_ms >= 0 and (metadata.txn_start_timestamp_ms < 0
                                     or now_ms - metadata.txn_start_timestamp_ms < duration_ms):
                continue
            listed.append(_describe(metadata))
        return listed


def _describe(metadata: TransactionMetadata) -> TxnDescription:
    return TxnDescription(
        transactional_id=metadata.transactional_id, state=metadata.state.display_name,
        producer_id=metadata.producer_id, producer_epoch=metadata.producer_epoch,
        txn_timeout_ms=metadata.txn_timeout_ms,
        txn_start_timestamp_ms=metadata.txn_start_timestamp_ms,
        partitions=tuple(sorted(metadata.partitions)))


def _error_code_of(exc: Exception) -> ErrorCode:
    code = getattr(exc, "error_code", None)
    if code is not None:
        try:
            return ErrorCode.for_code(int(code))
        except Exception:
            pass
    return ErrorCode.COORDINATOR_NOT_AVAILABLE


def _counter() -> Callable[[], int]:
    state = {"next": 1000}

    def next_producer_id() -> int:
        state["next"] += 1
        return state["next"] - 1

    return next_producer_id
