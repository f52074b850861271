"""Seeded whole-quorum simulation: thousands of fault schedules, every invariant after every
event (streambus.testing.sim documents the checkers).

Method: run 1,000 seeds of a 3-voter and 1,000 seeds of a 5-voter quorum (some with observers)
under random drop/delay/duplicate/reorder, partitions, crashes that lose unsynced writes, and
resignations, each followed by a fault-free healing phase in which the quorum must converge.
The seeds are split into chunks so pytest-xdist can spread them.  A failure message names the
seed; ``python -m streambus.testing.sim --seed N --voters V`` replays it.
"""

from __future__ import annotations

import pytest

from streambus.raft.state import QuorumState
from streambus.raft.storage import MemoryRaftStorage
from streambus.testing.sim import Simulation, SimulationConfig, SimulationFailure, run_seeds

CHUNK_SEEDS = 100
CHUNKS = 10
HEAL_ELECTION_MS_MAX = 5_000


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_three_voters_keep_every_invariant(chunk: int) -> None:
    results = run_seeds(range(chunk * CHUNK_SEEDS, (chunk + 1) * CHUNK_SEEDS),
                        SimulationConfig(voter_count=3))
    assert max(r.longest_heal_election_ms for r in results) < HEAL_ELECTION_MS_MAX
    assert sum(r.elections for r in results) >= CHUNK_SEEDS


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_five_voters_keep_every_invariant(chunk: int) -> None:
    observers = chunk % 3  # 0, 1 or 2 observers (brokers) fetching too
    seeds = range(100_000 + chunk * CHUNK_SEEDS, 100_000 + (chunk + 1) * CHUNK_SEEDS)
    results = run_seeds(seeds, SimulationConfig(voter_count=5, observer_count=observers))
    assert max(r.longest_heal_election_ms for r in results) < HEAL_ELECTION_MS_MAX


def test_a_seed_replays_exactly() -> None:
    first = Simulation(7, SimulationConfig(voter_count=5, observer_count=1)).run()
    second = Simulation(7, SimulationConfig(voter_count=5, observer_count=1)).run()
    assert first == second


def test_a_fault_free_run_elects_once_and_commits_everything() -> None:
    result = Simulation(1, SimulationConfig(voter_count=3, faults=False)).run()
    assert result.elections == 1 and result.crashes == 0
    assert result.committed_offset > 20


class _ForgetfulStorage(MemoryRaftStorage):
    """A broken disk that drops votes for others: the PySyncObj bug (§6), made on purpose."""

    def save_quorum_state(self, state: QuorumState) -> None:
        if state.leader_id < 0 and state.voted_id >= 0:
            state = QuorumState(state.epoch, -1, -1)
        super().save_quorum_state(state)


def test_the_checkers_catch_a_replica_that_forgets_its_vote(monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    import streambus.testing.sim as sim

    monkeypatch.setattr(sim, "MemoryRaftStorage", _ForgetfulStorage)
    with pytest.raises(SimulationFailure) as failure:
        run_seeds(range(400), SimulationConfig(voter_count=3))
    assert "seed " in str(failure.value) and "replay: python -m streambus.testing.sim" in str(
        failure.value)


class _NoSyncStorage(MemoryRaftStorage):
    """A disk whose fsync does nothing: acknowledged records vanish on crash."""

    def sync(self) -> None:
        self.sync_count += 1


def test_the_checkers_catch_lost_committed_records(monkeypatch: pytest.MonkeyPatch) -> None:
    import streambus.testing.sim as sim

    monkeypatch.setattr(sim, "MemoryRaftStorage", _NoSyncStorage)
    with pytest.raises(SimulationFailure, match="Committed|ConsistentCommittedData"):
        run_seeds(range(400), SimulationConfig(voter_count=3))
