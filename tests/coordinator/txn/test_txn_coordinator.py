"""The pure transaction coordinator: every transition of the state table and its error paths.

Method: drive a ``TransactionCoordinatorShard`` directly with explicit ``now_ms``, playing the
runtime's part by hand (``complete`` = the record was appended); compare whole outcomes,
descriptions and marker jobs.  A fresh shard replaying the records must end in the same state.
"""

from __future__ import annotations

import pytest

from streambus.coordinator.txn.coordinator import (
    EPOCH_EXHAUSTED,
    MarkerJob,
    TransactionCoordinatorShard,
    TxnConfig,
    TxnDescription,
)
from streambus.coordinator.txn.errors import for_version
from streambus.coordinator.txn.records import decode_record, encode_record
from streambus.coordinator.txn.state import VALID_PREVIOUS_STATES, TransactionState
from streambus.protocol.api_keys import ApiKey
from streambus.protocol.error_codes import ErrorCode

TID = "app-1"
E = ErrorCode


class Harness:
    """A shard plus the records its completed transitions appended."""

    def __init__(self, **config) -> None:
        ids = iter(range(100, 10_000))
        self.shard = TransactionCoordinatorShard(TxnConfig(**config), lambda: next(ids),
                                                 coordinator_epoch=3)
        self.records: list = []
        self.jobs: list[MarkerJob] = []

    def complete(self, outcome):
        """Append + complete, as the runtime does; returns the answered error."""
        if outcome.transit is None:
            return outcome.error
        for record in outcome.records:
            key, value = encode_record(record)
            self.records.append(decode_record(key, value))  # through the bytes, every time
        if outcome.transit.state is TransactionState.DEAD:
            self.shard.remove_dead(outcome.transactional_id)
            return E.NONE
        job = self.shard.complete_transition(outcome.transactional_id, outcome.transit)
        if job is not None:
            self.jobs.append(job)
        return outcome.error

    def init(self, tid=TID, timeout_ms=60_000, expected=None, now_ms=1):
        outcome = self.shard.init_producer_id(tid, timeout_ms, expected=expected, now_ms=now_ms)
        return self.complete(outcome), outcome.producer_id, outcome.producer_epoch

    def add(self, pid, epoch, partitions=(("t", 0),), tid=TID, now_ms=2):
        return self.complete(self.shard.add_partitions(tid, pid, epoch, partitions, now_ms=now_ms))

    def end(self, pid, epoch, commit, tid=TID, now_ms=3, tv=1):
        return self.complete(self.shard.end_txn(tid, pid, epoch, commit, now_ms=now_ms,
                                                transaction_version=tv))

    def finish_markers(self, now_ms=4):
        while self.jobs:
            job = self.jobs.pop(0)
            assert self.complete(self.shard.prepare_complete(job, now_ms=now_ms)) == E.NONE

    def state(self, tid=TID) -> str:
        return self.shard.describe(tid).state


def test_state_table_names_every_state_and_ids_round_trip() -> None:
    assert set(VALID_PREVIOUS_STATES) == set(TransactionState)
    for state in TransactionState:
        assert TransactionState.from_id(state.id) is state
    with pytest.raises(ValueError):
        TransactionState.from_id(9)


def test_a_full_commit_goes_empty_ongoing_prepare_complete() -> None:
    h = Harness()
    assert h.init() == (E.NONE, 100, 0)
    assert h.state() == "Empty"
    assert h.add(100, 0, [("t", 0), ("t", 1)]) == E.NONE
    assert h.shard.describe(TID) == TxnDescription(TID, "Ongoing", 100, 0, 60_000, 2,
                                                   (("t", 0), ("t", 1)))
    assert h.end(100, 0, True) == E.NONE
    assert h.state() == "PrepareCommit"
    assert h.jobs == [MarkerJob(TID, 100, 0, True, 3, frozenset({("t", 0), ("t", 1)}))]
    h.finish_markers()
    assert h.state() == "CompleteCommit"
    assert h.shard.describe(TID).partitions == ()


def test_abort_then_a_new_transaction_starts_from_complete_abort() -> None:
    h = Harness()
    h.init()
    h.add(100, 0)
    assert h.end(100, 0, False) == E.NONE
    assert h.jobs[0].commit is False
    h.finish_markers()
    assert h.state() == "CompleteAbort"
    assert h.add(100, 0, now_ms=50) == E.NONE
    assert h.shard.describe(TID).txn_start_timestamp_ms == 50


@pytest.mark.parametrize("timeout_ms", [0, -1, 900_001])
def test_init_refuses_a_timeout_outside_the_broker_maximum(timeout_ms: int) -> None:
    assert Harness().init(timeout_ms=timeout_ms)[0] == E.INVALID_TRANSACTION_TIMEOUT


def test_init_refuses_an_empty_transactional_id() -> None:
    assert Harness().init(tid="")[0] == E.INVALID_REQUEST


def test_each_init_bumps_the_epoch_and_fences_the_older_producer() -> None:
    h = Harness()
    assert h.init()[2] == 0
    assert h.init()[2] == 1
    assert h.add(100, 0) == E.PRODUCER_FENCED
    assert h.end(100, 0, True) == E.PRODUCER_FENCED


def test_init_during_an_open_transaction_aborts_it_with_a_fencing_epoch() -> None:
    """PrepareEpochFence -> PrepareAbort with epoch+1 (markers fence the old producer), the
    client is told CONCURRENT_TRANSACTIONS, and its retry gets epoch+2."""
    h = Harness()
    h.init()
    h.add(100, 0)
    assert h.init()[0] == E.CONCURRENT_TRANSACTIONS
    assert h.state() == "PrepareAbort"
    assert h.jobs == [MarkerJob(TID, 100, 1, False, 3, frozenset({("t", 0)}))]
    assert h.init()[0] == E.CONCURRENT_TRANSACTIONS  # markers still being written
    h.finish_markers()
    assert h.init() == (E.NONE, 100, 2)


def test_failed_fence_append_does_not_bump_the_epoch_twice() -> None:
    h = Harness()
    h.init()
    h.add(100, 0)
    outcome = h.shard.init_producer_id(TID, 60_000, expected=None, now_ms=5)
    assert outcome.epoch_fence and outcome.producer_epoch == 1
    h.shard.cancel_transition(TID, epoch_fence=True)  # the append failed
    retry = h.shard.init_producer_id(TID, 60_000, expected=None, now_ms=6)
    assert retry.producer_epoch == 1
    assert h.complete(retry) == E.CONCURRENT_TRANSACTIONS


def test_kip360_expected_epoch_bumps_retries_and_fences() -> None:
    h = Harness()
    h.init()
    assert h.init(expected=(100, 0)) == (E.NONE, 100, 1)  # bump after an abortable error
    assert h.init(expected=(100, 0)) == (E.NONE, 100, 1)  # a retry of that bump
    assert h.init(expected=(100, 5))[0] == E.PRODUCER_FENCED
    assert h.init(expected=(999, 1))[0] == E.PRODUCER_FENCED


def test_exhausted_epoch_rotates_to_a_new_producer_id() -> None:
    h = Harness()
    h.init()
    h.shard.transactions[TID].producer_epoch = EPOCH_EXHAUSTED
    assert h.init() == (E.NONE, 101, 0)


def test_add_partitions_errors() -> None:
    h = Harness()
    assert h.add(100, 0) == E.INVALID_PRODUCER_ID_MAPPING  # unknown id
    h.init()
    assert h.add(101, 0) == E.INVALID_PRODUCER_ID_MAPPING
    assert h.add(100, 7) == E.PRODUCER_FENCED
    assert h.add(100, 0, tid="") == E.INVALID_REQUEST
    assert h.add(100, 0) == E.NONE
    count = len(h.records)
    assert h.add(100, 0) == E.NONE and len(h.records) == count  # already in: no record
    h.end(100, 0, True)
    assert h.add(100, 0, [("t", 9)]) == E.CONCURRENT_TRANSACTIONS  # PrepareCommit


def test_pending_transition_makes_every_request_retry() -> None:
    h = Harness()
    h.init()
    outcome = h.shard.add_partitions(TID, 100, 0, [("t", 0)], now_ms=2)  # not yet appended
    assert h.shard.init_producer_id(TID, 60_000, expected=None, now_ms=3).error == \
        E.CONCURRENT_TRANSACTIONS
    assert h.shard.add_partitions(TID, 100, 0, [("t", 1)], now_ms=3).error == \
        E.CONCURRENT_TRANSACTIONS
    assert h.shard.end_txn(TID, 100, 0, True, now_ms=3).error == E.CONCURRENT_TRANSACTIONS
    h.complete(outcome)
    assert h.state() == "Ongoing"


@pytest.mark.parametrize(("state", "commit", "expected"), [
    ("Empty", True, E.INVALID_TXN_STATE),
    ("Empty", False, E.INVALID_TXN_STATE),
    ("PrepareCommit", True, E.CONCURRENT_TRANSACTIONS),
    ("PrepareCommit", False, E.INVALID_TXN_STATE),
    ("PrepareAbort", False, E.CONCURRENT_TRANSACTIONS),
    ("PrepareAbort", True, E.INVALID_TXN_STATE),
    ("CompleteCommit", True, E.NONE),
    ("CompleteCommit", False, E.INVALID_TXN_STATE),
    ("CompleteAbort", False, E.NONE),
    ("CompleteAbort", True, E.INVALID_TXN_STATE),
])
def test_end_txn_outside_ongoing(state: str, commit: bool, expected: ErrorCode) -> None:
    h = Harness()
    h.init()
    if state != "Empty":
        h.add(100, 0)
        h.end(100, 0, state.endswith("Commit"))
        if state.startswith("Complete"):
            h.finish_markers()
    assert h.state() == state
    assert h.end(100, 0, commit) == expected


def test_end_txn_identity_errors() -> None:
    h = Harness()
    assert h.end(100, 0, True) == E.INVALID_PRODUCER_ID_MAPPING
    h.init()
    h.add(100, 0)
    assert h.end(101, 0, True) == E.INVALID_PRODUCER_ID_MAPPING
    assert h.end(100, 1, True) == E.PRODUCER_FENCED
    assert h.end(100, 0, True, tid="") == E.INVALID_REQUEST


def test_transaction_version_2_bumps_the_epoch_on_every_end_txn() -> None:
    """EndTxn v5 (KIP-890 part 2): markers carry epoch+1, retries with the old epoch succeed,
    and an abort without any partition is allowed."""
    h = Harness()
    h.init()
    h.add(100, 0)
    assert h.end(100, 0, True, tv=2) == E.NONE
    assert h.jobs[0].producer_epoch == 1
    assert h.end(100, 0, True, tv=2) == E.CONCURRENT_TRANSACTIONS  # retry while preparing
    h.finish_markers()
    assert h.shard.describe(TID).producer_epoch == 1
    assert h.end(100, 0, True, tv=2) == E.NONE  # a retry of the finished commit
    assert h.end(100, 0, False, tv=2) == E.INVALID_TXN_STATE
    assert h.end(100, 1, True, tv=2) == E.INVALID_TXN_STATE
    assert h.end(100, 1, False, tv=2) == E.NONE  # abort with nothing added
    assert h.state() == "PrepareAbort"
    assert h.jobs[0].partitions == frozenset()


def test_timed_out_transactions_are_fenced_and_aborted() -> None:
    h = Harness()
    h.init(timeout_ms=1_000)
    h.add(100, 0, now_ms=10)
    assert h.shard.timed_out_transactions(1_010) == []
    [outcome] = h.shard.timed_out_transactions(1_011)
    assert h.complete(outcome) == E.NONE
    assert h.state() == "PrepareAbort"
    assert h.jobs[0].producer_epoch == 1
    h.finish_markers()
    assert h.end(100, 0, True) == E.PRODUCER_FENCED  # the abandoned producer learns


def test_verify_partitions_answers_per_partition() -> None:
    h = Harness()
    verify = h.shard.verify_partitions
    assert verify(TID, 100, 0, [("t", 0)]) == {("t", 0): E.INVALID_PRODUCER_ID_MAPPING}
    h.init()
    h.add(100, 0, [("t", 0)])
    assert verify(TID, 100, 0, [("t", 0), ("t", 1)]) == {
        ("t", 0): E.NONE, ("t", 1): E.TRANSACTION_ABORTABLE}
    assert verify(TID, 100, 3, [("t", 0)]) == {("t", 0): E.PRODUCER_FENCED}
    h.end(100, 0, True)
    assert verify(TID, 100, 0, [("t", 0)]) == {("t", 0): E.CONCURRENT_TRANSACTIONS}


def test_replay_rebuilds_the_state_and_restarts_decided_transactions() -> None:
    """A coordinator restart: the same metadata, and a PrepareCommit gets its markers again
    with the new coordinator epoch."""
    h = Harness()
    h.init()
    h.add(100, 0, [("t", 0), ("u", 2)])
    h.end(100, 0, True)
    h.init(tid="other")
    h.add(101, 0, tid="other")
    rebuilt = TransactionCoordinatorShard(TxnConfig(), lambda: 999)
    for record in h.records:
        rebuilt.replay(record)
    jobs = rebuilt.on_loaded(4)
    assert jobs == [MarkerJob(TID, 100, 0, True, 4, frozenset({("t", 0), ("u", 2)}))]
    for tid in (TID, "other"):
        assert rebuilt.describe(tid) == h.shard.describe(tid)


def test_idle_transactional_ids_expire_with_a_tombstone() -> None:
    h = Harness(transactional_id_expiration_ms=1_000)
    h.init(now_ms=1)
    h.init(tid="busy", now_ms=1)
    h.add(101, 0, tid="busy", now_ms=1)
    outcomes = h.shard.expired_transactional_ids(2_000)
    assert [o.transactional_id for o in outcomes] == [TID]  # an open transaction stays
    h.complete(outcomes[0])
    assert h.records[-1].value is None
    assert h.shard.describe(TID) == E.TRANSACTIONAL_ID_NOT_FOUND


def test_list_filters_by_state_producer_id_and_duration() -> None:
    h = Harness()
    h.init(tid="a")
    h.init(tid="b")
    h.add(101, 0, tid="b", now_ms=100)
    names = lambda **f: [d.transactional_id for d in h.shard.list(now_ms=1_000, **f)]  # noqa: E731
    assert names() == ["a", "b"]
    assert names(states=["Ongoing"]) == ["b"]
    assert names(producer_ids=[100]) == ["a"]
    assert names(duration_ms=900) == ["b"]
    assert names(duration_ms=901) == []


@pytest.mark.parametrize(("api", "version", "code", "expected"), [
    (ApiKey.INIT_PRODUCER_ID, 3, E.PRODUCER_FENCED, E.INVALID_PRODUCER_EPOCH),
    (ApiKey.INIT_PRODUCER_ID, 4, E.PRODUCER_FENCED, E.PRODUCER_FENCED),
    (ApiKey.END_TXN, 1, E.PRODUCER_FENCED, E.INVALID_PRODUCER_EPOCH),
    (ApiKey.END_TXN, 2, E.PRODUCER_FENCED, E.PRODUCER_FENCED),
    (ApiKey.ADD_PARTITIONS_TO_TXN, 1, E.PRODUCER_FENCED, E.INVALID_PRODUCER_EPOCH),
    (ApiKey.ADD_OFFSETS_TO_TXN, 1, E.PRODUCER_FENCED, E.INVALID_PRODUCER_EPOCH),
    (ApiKey.ADD_PARTITIONS_TO_TXN, 4, E.TRANSACTION_ABORTABLE, E.INVALID_TXN_STATE),
    (ApiKey.ADD_PARTITIONS_TO_TXN, 5, E.TRANSACTION_ABORTABLE, E.TRANSACTION_ABORTABLE),
    (ApiKey.PRODUCE, 10, E.TRANSACTION_ABORTABLE, E.INVALID_TXN_STATE),
    (ApiKey.TXN_OFFSET_COMMIT, 4, E.TRANSACTION_ABORTABLE, E.TRANSACTION_ABORTABLE),
    (ApiKey.END_TXN, 0, E.CONCURRENT_TRANSACTIONS, E.CONCURRENT_TRANSACTIONS),
])
def test_error_codes_are_downgraded_for_old_versions(api, version, code, expected) -> None:
    assert for_version(code, api, version) == expected
