"""Seeded, single-threaded simulation of a whole metadata quorum, with invariant checks.

Goal: find any schedule of message loss, delay, duplication, reordering, partitions, crashes
(losing unsynced writes, possibly in the middle of a Ready) and restarts under which the Raft
core breaks safety, and replay it exactly from its seed.

Method (Kafka's ``RaftEventSimulationTest``, TigerBeetle's VOPR): every node is a pure
:class:`~streambus.raft.node.RaftNode` over a :class:`~streambus.raft.storage.MemoryRaftStorage`.
One ``heapq`` of ``(time_ms, sequence, event)`` drives them all; each node ticks on its own
slightly skewed period; every message goes through :class:`~streambus.testing.network.SimNetwork`;
a nemesis schedule (derived from the seed) injects faults.  The simulator is the driver: it
applies each Ready in the order ``raft/ready.py`` prescribes, and may crash a node between any
two of those steps.  After every event it checks:

* **SingleLeader** — at most one leader per epoch, ever.
* **MonotonicEpoch** — a node's epoch never decreases, across restarts too.
* **MonotonicHighWatermark** — within one incarnation, a node's high watermark never decreases.
* **VoteOnce** — no node grants its vote to two candidates in one epoch, across restarts.
* **LogMatching** — two batches with the same (base offset, epoch) hold the same records.
* **ConsistentCommittedData** — every node applies the same committed batches at the same
  offsets, and its state-machine digest matches at every applied offset (snapshots included).
* **CommittedNeverLost** — no committed batch is ever truncated, and every new leader's log
  holds all committed batches.
* **LeaderNeverLoadsSnapshot** — only followers install snapshots.

At the end the network heals and every node restarts; the cluster must then elect a leader,
commit new records and converge.  A failure raises :class:`SimulationFailure` with the seed and
the last events; ``python -m streambus.testing.sim --seed N`` replays it.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import random
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from streambus.raft.messages import Batch, Envelope, SnapshotId, VoteResponse
from streambus.raft.node import RaftConfig, RaftNode
from streambus.raft.ready import Ready, Snapshot
from streambus.raft.state import Role
from streambus.raft.storage import MemoryRaftStorage
from streambus.testing.network import LinkFaults, SimNetwork

__all__ = ["Simulation", "SimulationFailure", "SimulationConfig", "SimulationResult",
           "run_seeds"]

# Event kinds (small ints: the heap compares them on ties).
_TICK, _DELIVER, _CRASH, _RESTART, _PROPOSE, _NEMESIS, _SNAPSHOT, _HEAL = range(8)
_EVENT_NAMES = ("tick", "deliver", "crash", "restart", "propose", "nemesis", "snapshot", "heal")

TRACE_LENGTH = 60
EVENT_COUNT_MAX = 2_000_000


class SimulationFailure(AssertionError):
    """An invariant broke; the message names the seed that replays it."""


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """One run's shape; the seed decides everything else.

    Attributes:
        voter_count: 3 or 5 in CI (any positive count works).
        observer_count: non-voting replicas (brokers) that fetch too.
        duration_ms: simulated time with faults, before the healing phase.
        heal_ms: fault-free time at the end in which the cluster must converge.
        tick_ms: a node's nominal tick period; each node's is skewed by up to 5 %.
        faults: whether to inject any faults at all (False: a clean run).
    """

    voter_count: int = 3
    observer_count: int = 0
    duration_ms: int = 6_000
    heal_ms: int = 5_000
    tick_ms: int = 100
    faults: bool = True
    pre_vote: bool = True


@dataclass(slots=True)
class SimulationResult:
    seed: int
    events: int
    committed_offset: int
    elections: int
    longest_leaderless_ms: int
    """Longest stretch, faults included, with no live leader."""
    longest_heal_election_ms: int
    """Longest stretch without a leader during the fault-free healing phase."""
    max_epoch: int
    snapshots_installed: int
    crashes: int


@dataclass(slots=True)
class _App:
    """The replicated state machine: a digest chained over every committed batch."""

    applied_offset: int = 0
    digest: bytes = b""


@dataclass(slots=True)
class _SimNode:
    node_id: int
    storage: MemoryRaftStorage
    tick_ms: int
    raft: RaftNode | None = None
    app: _App = field(default_factory=_App)
    incarnation: int = 0
    high_watermark: int = 0
    max_epoch: int = 0


def _digest(previous: bytes, batch: Batch) -> bytes:
    hasher = hashlib.blake2b(previous, digest_size=16)
    hasher.update(b"%d:%d:%d" % (batch.base_offset, batch.epoch, batch.control))
    for record in batch.records:
        hasher.update(record)
    return hasher.digest()


class Simulation:
    """One seeded run.  ``Simulation(seed, config).run()`` returns a result or raises.

    Args:
        seed: everything random derives from it.
        config: the cluster shape and phase lengths.
    """

    def __init__(self, seed: int, config: SimulationConfig = SimulationConfig()) -> None:
        self.seed = seed
        self.config = config
        self.rng = random.Random(seed)
        self.now_ms = 0
        self._queue: list[tuple[int, int, int, Any]] = []
        self._sequence = 0
        self._trace: deque[tuple[int, str]] = deque(maxlen=TRACE_LENGTH)
        self.voters = tuple(range(1, config.voter_count + 1))
        observer_ids = range(config.voter_count + 1, config.voter_count + 1 + config.observer_count)
        self.node_ids = self.voters + tuple(observer_ids)
        self.faults = self._fault_profile() if config.faults else LinkFaults()
        # Per-seed nemesis knobs: how often a Ready is cut short by a crash, how often a new
        # leader is killed soon after winning (Raft's "figure 8" histories need that), and how
        # often a node takes several inputs before its driver applies one Ready (group commit).
        faulty = config.faults
        self.crash_in_ready_rate = self.rng.choice((0.0, 0.002, 0.01)) if faulty else 0.0
        self.new_leader_crash_rate = self.rng.choice((0.0, 0.0, 0.3)) if faulty else 0.0
        self.deferred_ready_rate = self.rng.choice((0.0, 0.0, 0.3)) if faulty else 0.0
        self.network = SimNetwork(random.Random(self.rng.getrandbits(64)), self.faults)
        self.nodes: dict[int, _SimNode] = {}
        # Global histories the checkers compare against.
        self.leaders_by_epoch: dict[int, int] = {}
        self.votes_by_epoch: dict[tuple[int, int], int] = {}
        self.batches_seen: dict[tuple[int, int], tuple[bytes, ...]] = {}
        self.committed: dict[int, Batch] = {}
        self.digest_at: dict[int, bytes] = {0: b""}
        self.committed_offset = 0
        self._proposal_count = 0
        self.elections = 0
        self.crashes = 0
        self.snapshots_installed = 0
        self._leaderless_since: int | None = 0
        self.longest_leaderless_ms = 0
        self.longest_heal_election_ms = 0
        self._healing = False
        self.events = 0
        self._node_rng_seeds = {node_id: self.rng.getrandbits(64) for node_id in self.node_ids}
        for node_id in self.node_ids:
            tick_ms = config.tick_ms
            if config.faults:
                tick_ms += self.rng.randint(-config.tick_ms // 20, config.tick_ms // 20)
            self.nodes[node_id] = _SimNode(node_id, MemoryRaftStorage(), tick_ms)

    # =============================================================== setup

    def _fault_profile(self) -> LinkFaults:
        rng = self.rng
        return LinkFaults(
            drop_rate=rng.choice((0.0, 0.01, 0.05, 0.1)),
            duplicate_rate=rng.choice((0.0, 0.0, 0.02)),
            delay_ms_min=1,
            delay_ms_max=rng.choice((5, 20, 60)),
            slow_rate=rng.choice((0.0, 0.01, 0.05)),
            slow_delay_ms_max=rng.choice((300, 1500)),
        )

    def _raft_config(self, node_id: int) -> RaftConfig:
        return RaftConfig(node_id=node_id, voters=self.voters, pre_vote=self.config.pre_vote,
                          fetch_max_bytes=self.rng.choice((200, 4096)) if self.config.faults
                          else 4096,
                          snapshot_chunk_bytes=64)

    def _schedule(self, delay_ms: int, kind: int, payload: Any) -> None:
        self._sequence += 1
        heapq.heappush(self._queue, (self.now_ms + delay_ms, self._sequence, kind, payload))

    def _plan(self) -> None:
        config = self.config
        for node_id in self.node_ids:
            self._start_node(node_id)
        self._schedule(self.rng.randint(50, 400), _PROPOSE, None)
        if config.faults:
            time_ms = 0
            while True:
                time_ms += self.rng.randint(200, 1500)
                if time_ms >= config.duration_ms:
                    break
                self._sequence += 1
                heapq.heappush(self._queue, (time_ms, self._sequence, _NEMESIS, None))
            for node_id in self.node_ids:
                self._schedule(self.rng.randint(500, 3000), _SNAPSHOT, node_id)
        self._sequence += 1
        heapq.heappush(self._queue, (config.duration_ms, self._sequence, _HEAL, None))

    # =============================================================== main loop

    def run(self) -> SimulationResult:
        self._plan()
        end_ms = self.config.duration_ms + self.config.heal_ms
        try:
            while self._queue:
                time_ms, _, kind, payload = heapq.heappop(self._queue)
                if time_ms > end_ms:
                    break
                self.now_ms = time_ms
                self.events += 1
                if self.events > EVENT_COUNT_MAX:
                    self._fail("event budget exhausted (livelock?)")
                self._dispatch(kind, payload)
            self.now_ms = end_ms
            self._check_final()
        except SimulationFailure:
            raise
        except AssertionError as exc:
            self._fail(f"assertion in the core: {exc!r}")
        return SimulationResult(
            seed=self.seed, events=self.events, committed_offset=self.committed_offset,
            elections=self.elections, longest_leaderless_ms=self.longest_leaderless_ms,
            longest_heal_election_ms=self.longest_heal_election_ms,
            max_epoch=max(node.max_epoch for node in self.nodes.values()),
            snapshots_installed=self.snapshots_installed, crashes=self.crashes)

    def _dispatch(self, kind: int, payload: Any) -> None:
        if kind == _TICK:
            node_id, incarnation = payload
            node = self.nodes[node_id]
            if node.raft is None or node.incarnation != incarnation:
                return
            node.raft.tick()
            self._schedule(node.tick_ms, _TICK, payload)
            self._after(node)
        elif kind == _DELIVER:
            envelope: Envelope = payload
            node = self.nodes[envelope.destination]
            if node.raft is None or self.network.is_blocked(envelope.source, envelope.destination):
                return
            self._trace_event("deliver", envelope)
            node.raft.step(envelope)
            if (self.deferred_ready_rate and not self._healing
                    and self.rng.random() < self.deferred_ready_rate):
                return  # the driver handles more input before its next Ready (next tick)
            self._after(node)
        elif kind == _PROPOSE:
            self._propose()
        elif kind == _NEMESIS:
            self._nemesis()
        elif kind == _CRASH:
            self._crash(payload)
        elif kind == _RESTART:
            if self.nodes[payload].raft is None:
                self._start_node(payload)
        elif kind == _SNAPSHOT:
            self._snapshot(payload)
        elif kind == _HEAL:
            self._heal()

    # =============================================================== node lifecycle

    def _start_node(self, node_id: int) -> None:
        node = self.nodes[node_id]
        node.incarnation += 1
        rng = random.Random(self._node_rng_seeds[node_id] + node.incarnation)
        node.raft = RaftNode(self._raft_config(node_id), node.storage, rng)
        node.app = _App()
        node.high_watermark = node.raft.high_watermark
        self._trace_event("start", node_id)
        self._check_epoch(node)
        self._schedule(self.rng.randint(1, node.tick_ms), _TICK, (node_id, node.incarnation))
        self._after(node)

    def _crash(self, node_id: int) -> None:
        node = self.nodes[node_id]
        if node.raft is None:
            return
        self._trace_event("crash", node_id)
        self.crashes += 1
        node.raft = None
        node.storage.crash()
        self._update_leaderless()

    # =============================================================== the driver

    def _after(self, node: _SimNode) -> None:
        """Apply every Ready the node has, then check the invariants."""
        raft = node.raft
        rounds = 0
        while raft is not None and raft.has_ready():
            rounds += 1
            assert rounds < 10_000, "ready loop does not converge"
            ready = raft.ready()
            if not self._apply_ready(node, ready):
                return  # crashed midway
            raft.advance(ready)
            raft = node.raft
        if raft is not None:
            self._check_node(node)

    def _apply_ready(self, node: _SimNode, ready: Ready) -> bool:
        storage = node.storage
        crash_stage = -1
        if (self.crash_in_ready_rate and not self._healing
                and self.rng.random() < self.crash_in_ready_rate):
            crash_stage = self.rng.randrange(4)
        if ready.quorum_state is not None:
            storage.save_quorum_state(ready.quorum_state)
        if crash_stage == 0:
            return self._crash_in_ready(node, "after persisting quorum state")
        if ready.install_snapshot is not None:
            self._check_install(node, ready)
            storage.install_snapshot(ready.install_snapshot)
        if ready.truncate_to is not None:
            self._check_truncation(node, ready.truncate_to)
            storage.truncate_to(ready.truncate_to)
        if ready.append:
            self._check_appends(ready.append)
            storage.append(ready.append)
        if crash_stage == 1:
            return self._crash_in_ready(node, "before fsync")
        if ready.must_sync:
            storage.sync()
        if ready.log_start_offset is not None:
            storage.trim_prefix(ready.log_start_offset)
        if crash_stage == 2:
            return self._crash_in_ready(node, "before sending")
        for envelope in ready.messages:
            self._send(envelope)
        self._apply_committed(node, ready)
        if crash_stage == 3:
            return self._crash_in_ready(node, "after applying")
        return True

    def _crash_in_ready(self, node: _SimNode, where: str) -> bool:
        self._trace_event(f"crash {where}", node.node_id)
        self._crash(node.node_id)
        self._schedule(self.rng.randint(100, 2000), _RESTART, node.node_id)
        return False

    def _send(self, envelope: Envelope) -> None:
        message = envelope.message
        if type(message) is VoteResponse and message.vote_granted and not message.pre_vote:
            key = (envelope.source, message.leader_epoch)
            previous = self.votes_by_epoch.setdefault(key, envelope.destination)
            if previous != envelope.destination:
                self._fail(f"VoteOnce: node {envelope.source} voted for {previous} and "
                           f"{envelope.destination} in epoch {message.leader_epoch}")
        for delay_ms in self.network.delays_ms(envelope.source, envelope.destination):
            self._schedule(delay_ms, _DELIVER, envelope)

    def _apply_committed(self, node: _SimNode, ready: Ready) -> None:
        app = node.app
        if ready.load_snapshot is not None:
            assert node.raft is not None
            if node.raft.role is Role.LEADER:
                self._fail(f"LeaderNeverLoadsSnapshot: node {node.node_id}")
            data = node.storage.snapshot_data(ready.load_snapshot)
            end_text, digest_hex = data.split(b":")[:2]
            app.applied_offset = int(end_text)
            app.digest = bytes.fromhex(digest_hex.decode())
            if app.applied_offset != ready.load_snapshot.end_offset:
                self._fail(f"node {node.node_id}: snapshot {ready.load_snapshot} holds state "
                           f"as of {app.applied_offset}")
            self._check_digest(node, app.applied_offset, app.digest)
        for batch in ready.committed:
            if batch.base_offset != app.applied_offset:
                self._fail(f"node {node.node_id}: committed batch at {batch.base_offset} but "
                           f"applied up to {app.applied_offset}")
            known = self.committed.get(batch.base_offset)
            if known is None:
                self.committed[batch.base_offset] = batch
                self.committed_offset = max(self.committed_offset, batch.end_offset)
            elif known != batch:
                self._fail(f"ConsistentCommittedData: node {node.node_id} committed {batch} "
                           f"where {known} was committed")
            app.digest = _digest(app.digest, batch)
            app.applied_offset = batch.end_offset
            self._check_digest(node, app.applied_offset, app.digest)

    def _check_digest(self, node: _SimNode, offset: int, digest: bytes) -> None:
        known = self.digest_at.setdefault(offset, digest)
        if known != digest:
            self._fail(f"ConsistentCommittedData: node {node.node_id} state digest differs at "
                       f"offset {offset}")

    # =============================================================== workload and nemesis

    def _leader(self) -> _SimNode | None:
        for node in self.nodes.values():
            if node.raft is not None and node.raft.role is Role.LEADER:
                return node
        return None

    def _propose(self) -> None:
        leader = self._leader()
        if leader is not None:
            assert leader.raft is not None
            count = self.rng.randint(1, 3)
            records = []
            for _ in range(count):
                self._proposal_count += 1
                records.append(b"r%d" % self._proposal_count)
            leader.raft.propose(records)
            self._after(leader)
        self._schedule(self.rng.randint(20, 300), _PROPOSE, None)

    def _nemesis(self) -> None:
        rng = self.rng
        choice = rng.random()
        ids = list(self.node_ids)
        if choice < 0.25:
            victim = rng.choice(ids)
            self._trace_event("nemesis crash", victim)
            self._crash(victim)
            self._schedule(rng.randint(100, 3000), _RESTART, victim)
        elif choice < 0.35:
            leader = self._leader()
            if leader is not None:
                self._trace_event("nemesis crash leader", leader.node_id)
                self._crash(leader.node_id)
                self._schedule(rng.randint(100, 3000), _RESTART, leader.node_id)
        elif choice < 0.5:
            victim = (self._leader() or self.nodes[rng.choice(ids)]).node_id
            self._trace_event("nemesis isolate", victim)
            self.network.isolate(victim, ids)
        elif choice < 0.6:
            side = rng.sample(ids, rng.randint(1, max(1, len(ids) // 2)))
            self._trace_event("nemesis split", tuple(side))
            self.network.split(side, [i for i in ids if i not in side])
        elif choice < 0.7:
            source, destination = rng.sample(ids, 2)
            self._trace_event("nemesis one-way", (source, destination))
            self.network.block(source, destination)
        elif choice < 0.78:
            leader = self._leader()
            if leader is not None and leader.raft is not None:
                self._trace_event("nemesis resign", leader.node_id)
                leader.raft.resign()
                self._after(leader)
        else:
            self._trace_event("nemesis heal network", None)
            self.network.heal()

    def _snapshot(self, node_id: int) -> None:
        node = self.nodes[node_id]
        raft = node.raft
        if raft is not None and node.app.applied_offset > raft.log_start_offset:
            end_offset = node.app.applied_offset
            snapshot_id = SnapshotId(end_offset, raft.epoch_of(end_offset - 1))
            data = b"%d:%s:" % (end_offset, node.app.digest.hex().encode()) + b"x" * 100
            node.storage.save_snapshot(Snapshot(snapshot_id, data))
            raft.snapshot_saved(snapshot_id)
            self._trace_event("snapshot", (node_id, snapshot_id))
            self._after(node)
        if not self._healing:
            self._schedule(self.rng.randint(500, 3000), _SNAPSHOT, node_id)

    def _heal(self) -> None:
        """End of the fault phase: heal the network, restart everyone, stop injecting."""
        self._trace_event("heal", None)
        self._healing = True
        self.network.heal()
        self.network.faults = LinkFaults()
        for node_id in self.node_ids:
            if self.nodes[node_id].raft is None:
                self._start_node(node_id)
        if self._leaderless_since is not None:
            self._leaderless_since = self.now_ms

    # =============================================================== checkers

    def _check_node(self, node: _SimNode) -> None:
        raft = node.raft
        assert raft is not None
        self._check_epoch(node)
        if raft.high_watermark < node.high_watermark:
            self._fail(f"MonotonicHighWatermark: node {node.node_id} went from "
                       f"{node.high_watermark} to {raft.high_watermark}")
        node.high_watermark = raft.high_watermark
        if raft.role is Role.LEADER:
            epoch = raft.epoch
            known = self.leaders_by_epoch.get(epoch)
            if known is None:
                self.leaders_by_epoch[epoch] = node.node_id
                self.elections += 1
                if (self.new_leader_crash_rate and not self._healing
                        and self.rng.random() < self.new_leader_crash_rate):
                    self._schedule(self.rng.randint(1, 400), _CRASH, node.node_id)
                    self._schedule(self.rng.randint(500, 3000), _RESTART, node.node_id)
                self._check_leader_completeness(node)
            elif known != node.node_id:
                self._fail(f"SingleLeader: nodes {known} and {node.node_id} both led epoch "
                           f"{epoch}")
        self._update_leaderless()

    def _check_epoch(self, node: _SimNode) -> None:
        raft = node.raft
        assert raft is not None
        if raft.epoch < node.max_epoch:
            self._fail(f"MonotonicEpoch: node {node.node_id} went from epoch {node.max_epoch} "
                       f"to {raft.epoch}")
        node.max_epoch = raft.epoch

    def _check_leader_completeness(self, node: _SimNode) -> None:
        """A new leader's log holds every committed batch (Raft's Leader Completeness)."""
        raft = node.raft
        assert raft is not None
        log_start = raft.log_start_offset
        stored = {batch.base_offset: batch for batch in node.storage.all_batches()}
        offset = log_start
        while offset < self.committed_offset:
            committed = self.committed.get(offset)
            if committed is None:
                break  # committed below a snapshot some node loaded; not tracked batch-wise
            batch = stored.get(offset)
            if batch is None and offset < raft.log_end_offset:
                break  # still in the unstable part: checked when appended
            if batch != committed:
                self._fail(f"CommittedNeverLost: new leader {node.node_id} (epoch "
                           f"{raft.epoch}) has {batch} where {committed} was committed")
            offset = committed.end_offset

    def _check_appends(self, batches: list[Batch]) -> None:
        for batch in batches:
            key = (batch.base_offset, batch.epoch)
            known = self.batches_seen.setdefault(key, batch.records)
            if known != batch.records:
                self._fail(f"LogMatching: two batches at offset {batch.base_offset} in epoch "
                           f"{batch.epoch}")
            # A follower of a deposed leader may append a tail that conflicts with what the
            # new leader committed; it only must never commit it (checked when applying).

    def _check_truncation(self, node: _SimNode, offset: int) -> None:
        for batch in node.storage.all_batches():
            if batch.base_offset >= offset and self.committed.get(batch.base_offset) == batch:
                self._fail(f"CommittedNeverLost: node {node.node_id} truncates committed "
                           f"{batch} (truncate_to {offset})")

    def _check_install(self, node: _SimNode, ready: Ready) -> None:
        assert node.raft is not None and ready.install_snapshot is not None
        if node.raft.role is Role.LEADER:
            self._fail(f"LeaderNeverLoadsSnapshot: node {node.node_id}")
        self.snapshots_installed += 1

    def _update_leaderless(self) -> None:
        leader = self._leader()
        if leader is None:
            if self._leaderless_since is None:
                self._leaderless_since = self.now_ms
            return
        if self._leaderless_since is not None:
            duration = self.now_ms - self._leaderless_since
            self.longest_leaderless_ms = max(self.longest_leaderless_ms, duration)
            if self._healing:
                self.longest_heal_election_ms = max(self.longest_heal_election_ms, duration)
            self._leaderless_since = None

    def _check_final(self) -> None:
        """After healing: one leader, new records committed, every node caught up."""
        if self._leaderless_since is not None:
            self.longest_heal_election_ms = max(self.longest_heal_election_ms,
                                                self.now_ms - self._leaderless_since)
        leader = self._leader()
        if leader is None or leader.raft is None:
            self._fail("liveness: no leader after the healing phase")
        if not leader.raft.is_leader_ready:
            self._fail(f"liveness: leader {leader.node_id} never committed in its epoch")
        high_watermark = leader.raft.high_watermark
        for node in self.nodes.values():
            raft = node.raft
            assert raft is not None
            if raft.epoch != leader.raft.epoch or raft.leader_id != leader.node_id:
                self._fail(f"liveness: node {node.node_id} is {raft.role.value} in epoch "
                           f"{raft.epoch}, not following leader {leader.node_id}")
            # A follower trails by at most the records of one fetch round.
            if node.app.applied_offset + 50 < high_watermark:
                self._fail(f"liveness: node {node.node_id} applied {node.app.applied_offset}, "
                           f"leader high watermark {high_watermark}")

    # =============================================================== reporting

    def _trace_event(self, what: str, detail: Any) -> None:
        self._trace.append((self.now_ms, what, detail))

    def _fail(self, message: str) -> None:
        lines = [f"seed {self.seed} ({self.config.voter_count} voters) at {self.now_ms} ms: "
                 f"{message}", f"faults: {self.faults}", "last events:"]
        for time_ms, what, detail in self._trace:
            lines.append(f"  {time_ms:>7} {what} {detail}")
        for node in self.nodes.values():
            raft = node.raft
            if raft is None:
                lines.append(f"  node {node.node_id}: down")
            else:
                lines.append(f"  node {node.node_id}: {raft.role.value} epoch {raft.epoch} "
                             f"leader {raft.leader_id} end {raft.log_end_offset} "
                             f"hw {raft.high_watermark}")
        lines.append(f"replay: python -m streambus.testing.sim --seed {self.seed} "
                     f"--voters {self.config.voter_count}")
        raise SimulationFailure("\n".join(lines))


def run_seeds(seeds: range | list[int], config: SimulationConfig) -> list[SimulationResult]:
    """Run every seed; the first failure raises :class:`SimulationFailure`."""
    return [Simulation(seed, config).run() for seed in seeds]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run seeded Raft simulations.")
    parser.add_argument("--seed", type=int, default=None, help="run only this seed")
    parser.add_argument("--seeds", type=int, default=100, help="how many seeds from --first")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--voters", type=int, default=3)
    parser.add_argument("--observers", type=int, default=0)
    parser.add_argument("--duration-ms", type=int, default=SimulationConfig().duration_ms)
    args = parser.parse_args(argv)
    config = SimulationConfig(voter_count=args.voters, observer_count=args.observers,
                              duration_ms=args.duration_ms)
    seeds = [args.seed] if args.seed is not None else range(args.first, args.first + args.seeds)
    started = time.perf_counter()
    longest = 0
    longest_heal = 0
    events = 0
    for seed in seeds:
        try:
            result = Simulation(seed, config).run()
        except SimulationFailure as failure:
            print(failure, file=sys.stderr)
            return 1
        longest = max(longest, result.longest_leaderless_ms)
        longest_heal = max(longest_heal, result.longest_heal_election_ms)
        events += result.events
    elapsed = time.perf_counter() - started
    count = len(seeds)
    print(f"{count} seeds ({args.voters} voters) in {elapsed:.1f} s: {count / elapsed:.1f} "
          f"seeds/s, {events / elapsed:.0f} events/s; longest leaderless {longest} ms, "
          f"longest election after healing {longest_heal} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
