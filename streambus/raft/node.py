"""RaftNode: one replica of the KRaft metadata quorum as a pure state machine.

This module owns the consensus rules of KIP-595 (Vote, BeginQuorumEpoch, EndQuorumEpoch,
Fetch-based pull replication with (epoch, offset) divergence detection), KIP-996 (pre-vote),
KIP-630 (snapshots and FetchSnapshot) and check-quorum.  It never performs I/O, reads a clock,
opens a socket or touches global randomness: time arrives as :meth:`RaftNode.tick`, messages as
:meth:`RaftNode.step`, new records as :meth:`RaftNode.propose`; everything the node wants done
comes out of :meth:`RaftNode.ready` and is acknowledged with :meth:`RaftNode.advance`
(etcd-raft's ``RawNode``; the driver's duties are in ``raft/ready.py``).  A test parses this
module's imports to keep it that way.

Roles and their transitions are in ``raft/state.py``; majority arithmetic in ``raft/quorum.py``;
a leader's view of each fetcher in ``raft/progress.py``; the log overlay in ``raft/log_view.py``.

Handlers are named ``_on_<message>``; role logic is ``_tick_<role>``.  Every handler first lets
the epoch and leader carried by the message move this replica forward (``_observe_leader``),
then acts only if the message still concerns the current epoch — the way
``KafkaRaftClient.maybeHandleCommonResponse`` works.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Sequence

from streambus.protocol import codec
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.leader_change_message import LeaderChangeMessage
from streambus.raft.log_view import LogView
from streambus.raft.messages import (
    NO_LEADER,
    Batch,
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
    Envelope,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    Message,
    OffsetAndEpoch,
    SnapshotId,
    VoteRequest,
    VoteResponse,
)
from streambus.raft.progress import ReplicaProgress
from streambus.raft.quorum import VoteResult, committed_offset, majority_size, vote_result
from streambus.raft.ready import Ready, Snapshot
from streambus.raft.state import QuorumState, Role, check_transition
from streambus.raft.storage import RaftStorage

__all__ = ["RaftConfig", "RaftNode", "NotLeaderError", "QuorumInfo", "ReplicaState"]

_NONE = int(ErrorCode.NONE)
#: Observers a leader tracks for DescribeQuorum; the oldest is forgotten beyond this.
OBSERVER_COUNT_MAX = 1024
#: Committed bytes handed to the application per Ready (more follow in the next one).
COMMITTED_BYTES_MAX_PER_READY = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class RaftConfig:
    """Static settings of one replica; all durations are in ticks.

    Kafka's defaults at a 100 ms tick: ``quorum.election.timeout.ms`` 1000 (10),
    ``quorum.fetch.timeout.ms`` 2000 (20), ``quorum.election.backoff.max.ms`` 1000 (10),
    Fetch ``MaxWaitMs`` 500 (5).
    """

    node_id: int
    voters: tuple[int, ...]
    election_timeout_ticks: int = 10
    election_backoff_max_ticks: int = 10
    fetch_timeout_ticks: int = 20
    fetch_max_wait_ticks: int = 5
    request_timeout_ticks: int = 5
    fetch_max_bytes: int = 1024 * 1024
    snapshot_chunk_bytes: int = 1024 * 1024
    pre_vote: bool = True
    check_quorum: bool = True

    def __post_init__(self) -> None:
        assert self.node_id >= 0, self.node_id
        assert self.voters, "a quorum needs at least one voter"
        assert list(self.voters) == sorted(set(self.voters)), "voters must be sorted and unique"
        assert all(voter >= 0 for voter in self.voters)
        assert self.election_timeout_ticks >= 1 and self.fetch_timeout_ticks >= 1
        assert self.request_timeout_ticks >= 1 and self.election_backoff_max_ticks >= 1
        assert 0 <= self.fetch_max_wait_ticks < self.fetch_timeout_ticks
        assert self.fetch_max_bytes >= 1 and self.snapshot_chunk_bytes >= 1

    @property
    def is_voter(self) -> bool:
        return self.node_id in self.voters

    @property
    def check_quorum_ticks(self) -> int:
        """Kafka: a leader resigns without Fetches from a majority for 1.5 x fetch timeout."""
        return self.fetch_timeout_ticks * 3 // 2

    @property
    def begin_quorum_resend_ticks(self) -> int:
        return max(1, self.fetch_timeout_ticks // 2)


class NotLeaderError(Exception):
    """:meth:`RaftNode.propose` on a replica that is not the leader."""

    def __init__(self, leader_id: int, epoch: int) -> None:
        super().__init__(f"not the leader (leader {leader_id}, epoch {epoch})")
        self.leader_id = leader_id
        self.epoch = epoch


@dataclass(frozen=True, slots=True)
class ReplicaState:
    """DescribeQuorum's ReplicaState, with times still in ticks (-1: never)."""

    replica_id: int
    log_end_offset: int
    last_fetch_tick: int
    last_caught_up_tick: int


@dataclass(frozen=True, slots=True)
class QuorumInfo:
    """What the leader answers DescribeQuorum with (KIP-595, KIP-836)."""

    leader_id: int
    leader_epoch: int
    high_watermark: int
    voters: tuple[ReplicaState, ...]
    observers: tuple[ReplicaState, ...]
    now_tick: int


# ---------------------------------------------------------------------------- role states


@dataclass(slots=True)
class _LeaderState:
    epoch_start_offset: int
    progress: dict[int, ReplicaProgress]
    observers: dict[int, ReplicaProgress]
    check_quorum_deadline: int
    begin_quorum_deadline: int
    fetched_in_window: set[int] = field(default_factory=set)
    parked: dict[int, tuple[FetchRequest, int]] = field(default_factory=dict)
    """replica id -> (parked Fetch, tick at which it must be answered)."""
    high_watermark_established: bool = False


@dataclass(slots=True)
class _SnapshotDownload:
    snapshot_id: SnapshotId
    data: bytearray = field(default_factory=bytearray)
    resend_deadline: int = 0


@dataclass(slots=True)
class _FollowerState:
    has_fetched: bool = False
    """A successful Fetch from the leader since becoming its follower (KIP-996)."""
    fetch_resend_deadline: int | None = None
    """While a Fetch is in flight: when to give up on it and send another."""
    download: _SnapshotDownload | None = None
    sequence: int = 0
    """Sequence of the latest Fetch or FetchSnapshot sent; older answers are ignored."""


@dataclass(slots=True)
class _ElectionState:
    """Prospective (pre-votes) or Candidate (votes)."""

    votes: dict[int, bool]
    resend_deadline: int
    backoff_deadline: int | None = None
    retries: int = 0


@dataclass(slots=True)
class _ResignedState:
    preferred_successors: tuple[int, ...]
    unacknowledged: set[int]
    resend_deadline: int


class RaftNode:
    """One replica.  See the module docstring for the driving contract.

    Args:
        config: static settings.
        storage: read-only to the node (the driver writes it); gives the initial state.
        rng: the only source of randomness (election jitter, observer bootstrap choice).
    """

    def __init__(self, config: RaftConfig, storage: RaftStorage, rng: random.Random) -> None:
        self._config = config
        self._id = config.node_id
        self._voters = config.voters
        self._is_voter = config.is_voter
        self._storage = storage
        self._rng = rng
        self._log = LogView(storage)
        self._now = 0
        state = storage.quorum_state()
        self._epoch = state.epoch
        self._leader_id = state.leader_id
        self._voted_id = state.voted_id
        self._role = Role.UNATTACHED
        self._persisted_state = state
        snapshot_id = self._log.snapshot_id
        committed = max(self._log.start_offset,
                        snapshot_id.end_offset if snapshot_id is not None else 0)
        self._high_watermark = committed
        self._applied_offset = committed
        self._durable_end_offset = self._log.end_offset
        self._leader_high_watermark = -1
        self._load_snapshot: SnapshotId | None = self._log.snapshot_id
        self._messages: list[Envelope] = []
        self._in_ready = False
        self._election_deadline = 0
        self._fetch_deadline = 0
        self._leader: _LeaderState | None = None
        self._follower: _FollowerState | None = None
        self._election: _ElectionState | None = None
        self._resigned: _ResignedState | None = None
        self._initialize(state)

    # =============================================================== public: inspection

    @property
    def node_id(self) -> int:
        return self._id

    @property
    def role(self) -> Role:
        return self._role

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def leader_id(self) -> int:
        """The known leader of the current epoch, or -1 (a RESIGNED node names itself)."""
        return self._leader_id

    @property
    def voted_id(self) -> int:
        return self._voted_id

    @property
    def high_watermark(self) -> int:
        return self._high_watermark

    @property
    def leader_high_watermark(self) -> int:
        """The high watermark the leader last reported to this follower (-1: none yet).  A
        replica that applied up to it has caught up with the quorum."""
        return self._leader_high_watermark

    @property
    def log_start_offset(self) -> int:
        return self._log.start_offset

    @property
    def log_end_offset(self) -> int:
        return self._log.end_offset

    @property
    def last_epoch(self) -> int:
        return self._log.last_epoch()

    @property
    def now_tick(self) -> int:
        return self._now

    @property
    def config(self) -> RaftConfig:
        return self._config

    @property
    def is_leader_ready(self) -> bool:
        """Leader whose own epoch has committed a record, so every earlier record is committed
        and applied once the application caught up to the high watermark (KIP-595)."""
        return self._leader is not None and self._leader.high_watermark_established

    @property
    def epoch_start_offset(self) -> int:
        assert self._leader is not None
        return self._leader.epoch_start_offset

    @property
    def snapshot_id(self) -> SnapshotId | None:
        return self._log.snapshot_id

    def quorum_state(self) -> QuorumState:
        return QuorumState(self._epoch, self._leader_id, self._voted_id)

    def epoch_of(self, offset: int) -> int:
        """Epoch of the record at ``offset`` (for snapshot ids)."""
        return self._log.epoch_at(offset)

    def describe_quorum(self) -> QuorumInfo | None:
        """DescribeQuorum data; None unless this replica is the leader."""
        leader = self._leader
        if leader is None:
            return None
        me = ReplicaState(self._id, self._log.end_offset, self._now, self._now)
        voters = [me] + [
            ReplicaState(p.replica_id, p.end_offset, p.last_fetch_tick, p.last_caught_up_tick)
            for p in sorted(leader.progress.values(), key=lambda p: p.replica_id)
        ]
        observers = [
            ReplicaState(p.replica_id, p.end_offset, p.last_fetch_tick, p.last_caught_up_tick)
            for p in sorted(leader.observers.values(), key=lambda p: p.replica_id)
        ]
        return QuorumInfo(self._id, self._epoch, self._public_high_watermark(), tuple(voters),
                          tuple(observers), self._now)

    # =============================================================== public: inputs

    def tick(self) -> None:
        """Advance logical time by one tick and fire whatever timer expired."""
        self._check_not_in_ready()
        self._now += 1
        role = self._role
        if role is Role.LEADER:
            self._tick_leader()
        elif role is Role.FOLLOWER:
            self._tick_follower()
        elif role is Role.UNATTACHED:
            self._tick_unattached()
        elif role is Role.PROSPECTIVE or role is Role.CANDIDATE:
            self._tick_election()
        else:
            self._tick_resigned()

    def step(self, envelope: Envelope) -> None:
        """Handle one message addressed to this replica."""
        self._check_not_in_ready()
        assert envelope.destination == self._id, envelope
        if envelope.source == self._id:
            return  # a message to ourselves is a driver bug, but harmless to drop
        handler = _HANDLERS[type(envelope.message)]
        handler(self, envelope.source, envelope.message)

    def propose(self, records: Sequence[bytes]) -> tuple[int, int]:
        """Append ``records`` as one batch of the current epoch.

        Returns:
            (base_offset, epoch): the batch commits once the high watermark passes its end
            *and* the committed batch at base_offset carries this epoch.

        Raises:
            NotLeaderError: this replica is not the leader.
        """
        self._check_not_in_ready()
        if self._role is not Role.LEADER:
            raise NotLeaderError(self._leader_id, self._epoch)
        assert records, "a batch needs at least one record"
        batch = Batch(self._log.end_offset, self._epoch, tuple(records))
        self._log.append(batch)
        self._complete_parked_fetches()
        return batch.base_offset, self._epoch

    def campaign(self) -> None:
        """Start an election now, as if the election or fetch timer had expired (etcd-raft's
        ``Campaign``): for tests and operator-requested elections.  No-op for a leader, a
        replica already campaigning, or an observer."""
        self._check_not_in_ready()
        if not self._is_voter or self._role in (Role.LEADER, Role.PROSPECTIVE, Role.CANDIDATE):
            return
        self._become_prospective()

    def resign(self) -> None:
        """Graceful shutdown of a leader: resign and tell the voters (EndQuorumEpoch)."""
        self._check_not_in_ready()
        if self._role is Role.LEADER:
            self._become_resigned()

    def snapshot_saved(self, snapshot_id: SnapshotId) -> None:
        """The application durably saved a snapshot of everything below
        ``snapshot_id.end_offset`` (at most the high watermark); the log may now start there."""
        self._check_not_in_ready()
        if self._log.snapshot_id is not None and snapshot_id <= self._log.snapshot_id:
            return
        assert snapshot_id.end_offset <= self._high_watermark, (snapshot_id, self._high_watermark)
        assert snapshot_id.end_offset <= self._applied_offset
        assert self._log.epoch_at(snapshot_id.end_offset - 1) == snapshot_id.epoch, snapshot_id
        self._log.trim_to_snapshot(snapshot_id)

    # =============================================================== public: outputs

    def has_ready(self) -> bool:
        return bool(
            self._messages or self._log.has_pending() or self._load_snapshot is not None
            or self._high_watermark > self._applied_offset
            or self.quorum_state() != self._persisted_state
        )

    def ready(self) -> Ready:
        """Everything the driver must do now, in the order ``raft/ready.py`` prescribes."""
        self._check_not_in_ready()
        self._in_ready = True
        state = self.quorum_state()
        install, truncate_to, append, trim_to = self._log.pending()
        ready = Ready(
            quorum_state=state if state != self._persisted_state else None,
            install_snapshot=install,
            truncate_to=truncate_to,
            append=append,
            log_start_offset=trim_to,
            messages=self._messages,
            load_snapshot=self._load_snapshot,
            high_watermark=self._high_watermark,
        )
        ready.must_sync = self._is_voter and bool(append or truncate_to is not None)
        self._messages = []
        self._load_snapshot = None
        if self._high_watermark > self._applied_offset:
            ready.committed = self._log.read(self._applied_offset, COMMITTED_BYTES_MAX_PER_READY,
                                             self._high_watermark)
        return ready

    def advance(self, ready: Ready) -> None:
        """The driver did everything ``ready`` asked."""
        assert self._in_ready, "advance() without ready()"
        self._in_ready = False
        self._log.stabilize()
        if ready.quorum_state is not None:
            self._persisted_state = ready.quorum_state
        if ready.committed:
            self._applied_offset = ready.committed[-1].end_offset
        if ready.install_snapshot is not None:
            self._applied_offset = max(self._applied_offset,
                                       ready.install_snapshot.snapshot_id.end_offset)
        if ready.must_sync or not self._is_voter:
            self._durable_end_offset = self._log.end_offset
        else:
            self._durable_end_offset = min(self._durable_end_offset, self._log.end_offset)
        assert self._applied_offset <= self._high_watermark <= self._log.end_offset
        if self._leader is not None:
            self._maybe_advance_high_watermark()

    # =============================================================== initialization

    def _initialize(self, state: QuorumState) -> None:
        """Kafka's ``QuorumState.initialize``: resume the persisted election."""
        if state.leader_id == self._id and self._is_voter:
            if self._voters == (self._id,):
                self._start_election()
            else:
                # A restarted leader never leads the same epoch again.
                self._role = Role.LEADER
                others = {v: ReplicaProgress(v) for v in self._voters if v != self._id}
                self._leader = _LeaderState(0, others, {}, 0, 0)
                self._become_resigned()
            return
        if state.leader_id >= 0 and state.leader_id != self._id:
            self._role = Role.UNATTACHED
            self._enter_follower(state.epoch, state.leader_id)
            return
        self._enter_unattached_timers()
        if self._is_voter and self._voters == (self._id,):
            self._start_election()

    # =============================================================== transitions

    def _set_role(self, role: Role, epoch: int, leader_id: int, voted_id: int) -> None:
        check_transition(self._role, role, is_voter=self._is_voter)
        assert epoch >= self._epoch, (epoch, self._epoch)
        if self._leader is not None:
            self._abdicate()
        self._role = role
        self._epoch = epoch
        self._leader_id = leader_id
        self._voted_id = voted_id
        self._follower = None
        self._election = None
        self._resigned = None

    def _become_unattached(self, epoch: int, voted_id: int = NO_LEADER) -> None:
        self._set_role(Role.UNATTACHED, epoch, NO_LEADER, voted_id)
        self._enter_unattached_timers()

    def _enter_unattached_timers(self) -> None:
        self._election_deadline = self._now + self._randomized_election_timeout()
        if not self._is_voter:
            self._election_deadline = self._now  # observers look for a leader at once

    def _enter_follower(self, epoch: int, leader_id: int) -> None:
        assert leader_id >= 0 and leader_id != self._id, leader_id
        voted_id = self._voted_id if epoch == self._epoch else NO_LEADER
        self._set_role(Role.FOLLOWER, epoch, leader_id, voted_id)
        self._follower = _FollowerState()
        self._fetch_deadline = self._now + self._config.fetch_timeout_ticks
        self._send_fetch()

    def _become_prospective(self) -> None:
        assert self._is_voter
        if not self._config.pre_vote:
            self._become_candidate()
            return
        retries = self._election.retries if self._election is not None else 0
        # A follower remembers its leader to fall back to; a resigned leader has none.
        leader_id = self._leader_id if self._leader_id != self._id else NO_LEADER
        self._set_role(Role.PROSPECTIVE, self._epoch, leader_id, self._voted_id)
        self._election = _ElectionState(votes={self._id: True}, resend_deadline=0,
                                        retries=retries)
        self._election_deadline = self._now + self._randomized_election_timeout()
        if not self._evaluate_election():
            self._send_vote_requests(pre_vote=True)

    def _become_candidate(self) -> None:
        retries = self._election.retries if self._election is not None else 0
        self._set_role(Role.CANDIDATE, self._epoch + 1, NO_LEADER, self._id)
        self._election = _ElectionState(votes={self._id: True}, resend_deadline=0,
                                        retries=retries)
        self._election_deadline = self._now + self._randomized_election_timeout()
        if not self._evaluate_election():
            self._send_vote_requests(pre_vote=False)

    def _become_leader(self) -> None:
        granting = tuple(sorted(v for v, ok in self._election.votes.items() if ok))
        self._set_role(Role.LEADER, self._epoch, self._id, self._voted_id)
        others = [voter for voter in self._voters if voter != self._id]
        self._leader = _LeaderState(
            epoch_start_offset=self._log.end_offset,
            progress={voter: ReplicaProgress(voter) for voter in others},
            observers={},
            check_quorum_deadline=self._now + self._config.check_quorum_ticks,
            begin_quorum_deadline=self._now + self._config.begin_quorum_resend_ticks,
        )
        # KIP-595: the new leader's first record is a LeaderChangeMessage control record; no
        # earlier record is exposed until this one commits.
        message = LeaderChangeMessage(
            version=0, leader_id=self._id,
            voters=[LeaderChangeMessage.Voter(voter_id=v) for v in self._voters],
            granting_voters=[LeaderChangeMessage.Voter(voter_id=v) for v in granting])
        self._log.append(Batch(self._log.end_offset, self._epoch,
                               (codec.encode(message, 0),), control=True))
        for voter in others:
            self._send(voter, BeginQuorumEpochRequest(self._id, self._epoch, voter))

    def _become_resigned(self) -> None:
        leader = self._leader
        assert leader is not None
        successors = tuple(
            voter for voter, _ in sorted(
                ((p.replica_id, p.end_offset) for p in leader.progress.values()),
                key=lambda item: (-item[1], item[0]))
        )
        self._set_role(Role.RESIGNED, self._epoch, self._id, self._voted_id)
        self._resigned = _ResignedState(successors, set(successors), 0)
        self._election_deadline = self._now + self._randomized_election_timeout()
        self._send_end_quorum_epoch()

    def _abdicate(self) -> None:
        """Leaving LEADER: parked Fetches are answered so their senders look elsewhere."""
        leader = self._leader
        assert leader is not None
        self._leader = None
        for replica_id, (request, _) in sorted(leader.parked.items()):
            self._send(replica_id, self._fetch_error(request, ErrorCode.NOT_LEADER_OR_FOLLOWER))

    def _observe_leader(self, leader_id: int, epoch: int) -> None:
        """Adopt the (leader, epoch) a message carries, if it is news (Kafka's
        ``maybeTransition``).  Two different leaders in one epoch is a safety bug: assert."""
        if epoch < self._epoch:
            return
        if epoch > self._epoch:
            if leader_id >= 0 and leader_id != self._id:
                self._enter_follower(epoch, leader_id)
            else:
                assert leader_id != self._id, f"told we lead epoch {epoch} we never reached"
                self._become_unattached(epoch)
            return
        if leader_id < 0 or leader_id == self._leader_id:
            return
        if leader_id == self._id:
            # Others still name us for an epoch we led and resigned (we voted for ourselves).
            assert self._voted_id == self._id, f"node {self._id}: told it leads epoch {epoch}"
            return
        assert self._leader_id < 0, (
            f"node {self._id}: two leaders in epoch {epoch}: {self._leader_id} and {leader_id}")
        self._enter_follower(epoch, leader_id)

    # =============================================================== timers

    def _randomized_election_timeout(self) -> int:
        timeout = self._config.election_timeout_ticks
        return timeout + self._rng.randrange(timeout)

    def _tick_leader(self) -> None:
        leader = self._leader
        assert leader is not None
        expired = [rid for rid, (_, deadline) in leader.parked.items() if deadline <= self._now]
        for replica_id in sorted(expired):
            request, _ = leader.parked.pop(replica_id)
            self._send(replica_id, self._fetch_answer(request))
        if (self._config.check_quorum and len(self._voters) > 1
                and self._now >= leader.check_quorum_deadline):
            self._become_resigned()  # check-quorum: a majority stopped fetching
            return
        if self._now >= leader.begin_quorum_deadline:
            leader.begin_quorum_deadline = self._now + self._config.begin_quorum_resend_ticks
            for voter, progress in sorted(leader.progress.items()):
                if not progress.acknowledged:
                    self._send(voter, BeginQuorumEpochRequest(self._id, self._epoch, voter))

    def _tick_follower(self) -> None:
        follower = self._follower
        assert follower is not None
        if self._now >= self._fetch_deadline:
            if self._is_voter:
                self._become_prospective()
            else:
                self._set_role(Role.UNATTACHED, self._epoch, NO_LEADER, NO_LEADER)
                self._enter_unattached_timers()
            return
        download = follower.download
        if download is not None:
            if self._now >= download.resend_deadline:
                self._send_fetch_snapshot(download)
        elif follower.fetch_resend_deadline is not None and self._now >= follower.fetch_resend_deadline:
            self._send_fetch()

    def _tick_unattached(self) -> None:
        if self._now < self._election_deadline:
            return
        if self._is_voter:
            self._become_prospective()
            return
        # An observer with no leader asks a random voter (KIP-595 bootstrap): the answer names
        # the leader.
        voter = self._voters[self._rng.randrange(len(self._voters))]
        self._send(voter, self._fetch_request())
        self._election_deadline = self._now + self._config.request_timeout_ticks

    def _tick_election(self) -> None:
        election = self._election
        assert election is not None
        if election.backoff_deadline is not None:
            if self._now >= election.backoff_deadline:
                election.retries += 1
                self._become_prospective()
            return
        if self._now >= self._election_deadline:
            self._lose_election()
            return
        if self._now >= election.resend_deadline:
            self._send_vote_requests(pre_vote=self._role is Role.PROSPECTIVE)

    def _tick_resigned(self) -> None:
        resigned = self._resigned
        assert resigned is not None
        if self._now >= self._election_deadline:
            self._become_prospective()
            return
        if resigned.unacknowledged and self._now >= resigned.resend_deadline:
            self._send_end_quorum_epoch()

    # =============================================================== elections

    def _send_vote_requests(self, pre_vote: bool) -> None:
        election = self._election
        assert election is not None
        election.resend_deadline = self._now + self._config.request_timeout_ticks
        last_epoch, end_offset = self._log.last_epoch(), self._log.end_offset
        for voter in self._voters:
            if voter != self._id and voter not in election.votes:
                self._send(voter, VoteRequest(self._epoch, self._id, voter, last_epoch,
                                              end_offset, pre_vote))

    def _evaluate_election(self) -> bool:
        """Act on the votes so far; True if the election ended."""
        election = self._election
        assert election is not None
        result = vote_result(self._voters, election.votes)
        if result is VoteResult.WON:
            if self._role is Role.PROSPECTIVE:
                self._become_candidate()
            else:
                self._become_leader()
            return True
        if result is VoteResult.LOST:
            self._lose_election()
            return True
        return False

    def _lose_election(self) -> None:
        election = self._election
        assert election is not None
        if self._role is Role.PROSPECTIVE:
            # KIP-996: back to the leader we knew, else unattached; the new timers back off.
            if self._leader_id >= 0:
                self._enter_follower(self._epoch, self._leader_id)
            else:
                self._set_role(Role.UNATTACHED, self._epoch, NO_LEADER, self._voted_id)
                self._enter_unattached_timers()
            return
        if election.backoff_deadline is None:
            # Kafka's exponential election backoff, capped.
            ceiling = min(self._config.election_backoff_max_ticks,
                          1 << min(election.retries, 20))
            election.backoff_deadline = self._now + 1 + self._rng.randrange(ceiling)

    def _can_grant(self, candidate: int, up_to_date: bool, pre_vote: bool) -> bool:
        """Kafka's ``EpochState.canGrantVote`` for the current role (KIP-595, KIP-996)."""
        role = self._role
        if role is Role.LEADER or role is Role.RESIGNED:
            return False
        if pre_vote:
            if role is Role.FOLLOWER:
                assert self._follower is not None
                return up_to_date and not self._follower.has_fetched
            return up_to_date
        if role is Role.FOLLOWER or role is Role.CANDIDATE:
            return False
        if self._voted_id >= 0:
            return self._voted_id == candidate
        if self._leader_id >= 0:
            return False
        return up_to_date

    # =============================================================== handlers: Vote

    def _on_vote_request(self, source: int, request: VoteRequest) -> None:
        epoch_bound = request.epoch if request.pre_vote else request.epoch - 1
        if request.last_offset < 0 or request.last_offset_epoch < 0 or (
                request.last_offset_epoch > epoch_bound):
            self._reply_vote(source, request, ErrorCode.INVALID_REQUEST, False)
            return
        if not self._is_voter:
            self._reply_vote(source, request, ErrorCode.INVALID_VOTER_KEY, False)
            return
        if request.epoch < self._epoch:
            self._reply_vote(source, request, ErrorCode.FENCED_LEADER_EPOCH, False)
            return
        if request.epoch > self._epoch:
            self._become_unattached(request.epoch)
        if request.voter_id not in (NO_LEADER, self._id):
            self._reply_vote(source, request, ErrorCode.INVALID_VOTER_KEY, False)
            return
        up_to_date = ((request.last_offset_epoch, request.last_offset)
                      >= (self._log.last_epoch(), self._log.end_offset))
        granted = self._can_grant(source, up_to_date, request.pre_vote)
        if granted and not request.pre_vote and self._voted_id != source:
            if self._role is Role.PROSPECTIVE:
                self._set_role(Role.UNATTACHED, self._epoch, NO_LEADER, source)
            self._voted_id = source  # persisted before the reply leaves (ready.py step 1)
            self._election_deadline = self._now + self._randomized_election_timeout()
        self._reply_vote(source, request, ErrorCode.NONE, granted)

    def _reply_vote(self, source: int, request: VoteRequest, error: ErrorCode,
                    granted: bool) -> None:
        self._send(source, VoteResponse(int(error), self._leader_id, self._epoch, granted,
                                        request.pre_vote, request.sequence))

    def _on_vote_response(self, source: int, response: VoteResponse) -> None:
        self._observe_leader(response.leader_id, response.leader_epoch)
        if response.leader_epoch != self._epoch or response.error_code != _NONE:
            return
        election = self._election
        if election is None or election.backoff_deadline is not None:
            return
        if response.pre_vote != (self._role is Role.PROSPECTIVE):
            return
        if source not in self._voters or source in election.votes:
            return
        election.votes[source] = response.vote_granted
        self._evaluate_election()

    # =============================================================== handlers: Begin/End

    def _on_begin_quorum_epoch_request(self, source: int,
                                       request: BeginQuorumEpochRequest) -> None:
        if request.leader_epoch < self._epoch:
            error = ErrorCode.FENCED_LEADER_EPOCH
        else:
            self._observe_leader(request.leader_id, request.leader_epoch)
            error = ErrorCode.NONE
        self._send(source, BeginQuorumEpochResponse(int(error), self._leader_id, self._epoch,
                                                    request.sequence))

    def _on_begin_quorum_epoch_response(self, source: int,
                                        response: BeginQuorumEpochResponse) -> None:
        self._observe_leader(response.leader_id, response.leader_epoch)
        leader = self._leader
        if leader is None or response.leader_epoch != self._epoch or response.error_code != _NONE:
            return
        progress = leader.progress.get(source)
        if progress is not None:
            progress.acknowledged = True

    def _on_end_quorum_epoch_request(self, source: int, request: EndQuorumEpochRequest) -> None:
        if request.leader_epoch < self._epoch:
            self._send(source, EndQuorumEpochResponse(int(ErrorCode.FENCED_LEADER_EPOCH),
                                                      self._leader_id, self._epoch,
                                                      request.sequence))
            return
        self._observe_leader(request.leader_id, request.leader_epoch)
        follower = self._follower
        if (follower is not None and self._leader_id == request.leader_id
                and self._epoch == request.leader_epoch):
            # KIP-595: the most caught-up voter campaigns first, the others back off by rank.
            # Our leader is gone, so pre-votes may be granted (KIP-996 hasFetchedFromLeader).
            follower.has_fetched = False
            self._fetch_deadline = min(self._fetch_deadline,
                                       self._now + self._successor_delay(request))
        self._send(source, EndQuorumEpochResponse(_NONE, self._leader_id, self._epoch,
                                                  request.sequence))

    def _successor_delay(self, request: EndQuorumEpochRequest) -> int:
        successors = request.preferred_successors
        if self._id not in successors:
            return self._config.election_backoff_max_ticks
        position = successors.index(self._id)
        if position == 0:
            return 0
        backoff_max = self._config.election_backoff_max_ticks
        return min(backoff_max, (backoff_max >> (len(successors) - 1)) << (position - 1)) or 1

    def _on_end_quorum_epoch_response(self, source: int,
                                      response: EndQuorumEpochResponse) -> None:
        self._observe_leader(response.leader_id, response.leader_epoch)
        if self._resigned is not None and response.leader_epoch == self._epoch:
            self._resigned.unacknowledged.discard(source)

    def _send_end_quorum_epoch(self) -> None:
        resigned = self._resigned
        assert resigned is not None
        resigned.resend_deadline = self._now + self._config.request_timeout_ticks
        for voter in sorted(resigned.unacknowledged):
            self._send(voter, EndQuorumEpochRequest(self._id, self._epoch,
                                                    resigned.preferred_successors))

    # =============================================================== handlers: Fetch (leader)

    def _on_fetch_request(self, source: int, request: FetchRequest) -> None:
        if (request.fetch_offset < 0 or request.last_fetched_epoch < 0
                or request.last_fetched_epoch > request.current_leader_epoch
                or request.max_wait_ticks < 0):
            self._send(source, self._fetch_error(request, ErrorCode.INVALID_REQUEST))
            return
        error = self._leader_only_error(request.current_leader_epoch)
        if error is not None:
            self._send(source, self._fetch_error(request, error))
            return
        leader = self._leader
        assert leader is not None
        self._note_fetcher(source)
        redirect = self._validate_offset_and_epoch(request)
        if redirect is not None:
            self._send(source, redirect)
            return
        progress = self._record_fetch(source, request)
        old = leader.parked.pop(source, None)
        if old is not None:
            self._send(source, self._fetch_answer(old[0]))
        if (request.fetch_offset < self._log.end_offset or request.max_wait_ticks == 0
                or progress.high_watermark_sent < self._public_high_watermark()):
            self._send(source, self._fetch_answer(request))
            return
        # Nothing to send yet: park the Fetch until records arrive, the high watermark moves
        # or the wait expires (Kafka's fetch purgatory).
        leader.parked[source] = (request, self._now + request.max_wait_ticks)

    def _leader_only_error(self, current_leader_epoch: int) -> ErrorCode | None:
        """Kafka's ``validateLeaderOnlyRequest``."""
        if current_leader_epoch < self._epoch:
            return ErrorCode.FENCED_LEADER_EPOCH
        if current_leader_epoch > self._epoch:
            return ErrorCode.UNKNOWN_LEADER_EPOCH
        if self._role is not Role.LEADER:
            return ErrorCode.NOT_LEADER_OR_FOLLOWER
        return None

    def _note_fetcher(self, source: int) -> None:
        """Check-quorum: a Fetch (valid or not) from a voter shows it follows us."""
        leader = self._leader
        assert leader is not None
        if source not in leader.progress:
            return
        leader.fetched_in_window.add(source)
        if len(leader.fetched_in_window) + 1 >= majority_size(len(self._voters)):
            leader.fetched_in_window.clear()
            leader.check_quorum_deadline = self._now + self._config.check_quorum_ticks

    def _validate_offset_and_epoch(self, request: FetchRequest) -> FetchResponse | None:
        """None if the follower's log matches ours at its fetch position; otherwise the
        response that redirects it: a snapshot to load or the epoch where it diverged."""
        log = self._log
        fetch_offset, last_epoch = request.fetch_offset, request.last_fetched_epoch
        snapshot_id = log.snapshot_id
        if snapshot_id is not None and log.start_offset > 0 and (
                fetch_offset < log.start_offset
                or (fetch_offset == log.start_offset and last_epoch != snapshot_id.epoch)):
            return self._fetch_redirect(request, snapshot_id=snapshot_id)
        if fetch_offset == 0 and last_epoch == 0 and log.start_offset == 0:
            return None
        found = log.end_offset_for_epoch(last_epoch)
        if found is None:
            assert snapshot_id is not None
            return self._fetch_redirect(request, snapshot_id=snapshot_id)
        if found.epoch != last_epoch or found.offset < fetch_offset:
            return self._fetch_redirect(request, diverging=found)
        return None

    def _record_fetch(self, source: int, request: FetchRequest) -> ReplicaProgress:
        leader = self._leader
        assert leader is not None
        assert request.fetch_offset <= self._log.end_offset
        progress = leader.progress.get(source)
        if progress is None:
            progress = leader.observers.pop(source, None) or ReplicaProgress(source)
            leader.observers[source] = progress  # re-inserted: most recent last
            while len(leader.observers) > OBSERVER_COUNT_MAX:
                del leader.observers[next(iter(leader.observers))]
        progress.record_fetch(request.fetch_offset, self._log.end_offset, self._now)
        if source in leader.progress:
            self._maybe_advance_high_watermark()
        return progress

    def _maybe_advance_high_watermark(self) -> None:
        """Kafka's ``LeaderState.maybeUpdateHighWatermark``: the majority's durable end
        offset, once it passes the start of this epoch; never backwards."""
        leader = self._leader
        assert leader is not None
        offsets = [self._durable_end_offset if voter == self._id
                   else max(0, leader.progress[voter].end_offset) for voter in self._voters]
        candidate = committed_offset(offsets)
        if candidate <= leader.epoch_start_offset:
            return
        leader.high_watermark_established = True
        if candidate > self._high_watermark:
            self._high_watermark = candidate
            self._complete_parked_fetches()

    def _complete_parked_fetches(self) -> None:
        leader = self._leader
        if leader is None or not leader.parked:
            return
        parked, leader.parked = leader.parked, {}
        for replica_id, (request, _) in sorted(parked.items()):
            self._send(replica_id, self._fetch_answer(request))

    def _public_high_watermark(self) -> int:
        leader = self._leader
        if leader is not None and not leader.high_watermark_established:
            return -1
        return self._high_watermark

    def _fetch_answer(self, request: FetchRequest) -> FetchResponse:
        leader = self._leader
        assert leader is not None
        batches = self._log.read(request.fetch_offset, request.max_bytes)
        high_watermark = self._public_high_watermark()
        progress = leader.progress.get(request.replica_id) or leader.observers.get(
            request.replica_id)
        if progress is not None:
            progress.high_watermark_sent = high_watermark
        return FetchResponse(_NONE, self._id, self._epoch, high_watermark,
                             self._log.start_offset, request.fetch_offset, batches=tuple(batches),
                             sequence=request.sequence)

    def _fetch_redirect(self, request: FetchRequest, *, diverging: OffsetAndEpoch | None = None,
                        snapshot_id: SnapshotId | None = None) -> FetchResponse:
        return FetchResponse(_NONE, self._id, self._epoch, self._public_high_watermark(),
                             self._log.start_offset, request.fetch_offset,
                             diverging_epoch=diverging, snapshot_id=snapshot_id,
                             sequence=request.sequence)

    def _fetch_error(self, request: FetchRequest, error: ErrorCode) -> FetchResponse:
        return FetchResponse(int(error), self._leader_id, self._epoch, -1, -1,
                             request.fetch_offset, sequence=request.sequence)

    # =============================================================== handlers: Fetch (follower)

    def _fetch_request(self, sequence: int = 0) -> FetchRequest:
        return FetchRequest(self._id, self._epoch, self._log.end_offset, self._log.last_epoch(),
                            self._config.fetch_max_wait_ticks, self._config.fetch_max_bytes,
                            sequence)

    def _send_fetch(self) -> None:
        follower = self._follower
        assert follower is not None and self._leader_id >= 0
        follower.fetch_resend_deadline = (self._now + self._config.fetch_max_wait_ticks
                                          + self._config.request_timeout_ticks)
        follower.sequence += 1
        self._send(self._leader_id, self._fetch_request(follower.sequence))

    def _on_fetch_response(self, source: int, response: FetchResponse) -> None:
        if response.leader_id >= 0 or response.leader_epoch > self._epoch:
            self._observe_leader(response.leader_id, response.leader_epoch)
        follower = self._follower
        if (follower is None or source != self._leader_id or response.leader_epoch != self._epoch
                or follower.download is not None or response.sequence != follower.sequence
                or response.fetch_offset != self._log.end_offset):
            return  # stale: an older epoch, an older leader or a Fetch we already replaced
        if response.error_code != _NONE:
            # No leader hint we could use (e.g. the leader resigned): retry after a pause; the
            # fetch timer decides when to stop believing in this leader.
            follower.fetch_resend_deadline = self._now + max(
                1, self._config.request_timeout_ticks // 2)
            return
        follower.has_fetched = True
        self._fetch_deadline = self._now + self._config.fetch_timeout_ticks
        if response.diverging_epoch is not None:
            self._truncate_diverged(response.diverging_epoch)
        elif response.snapshot_id is not None:
            follower.download = _SnapshotDownload(response.snapshot_id)
            self._send_fetch_snapshot(follower.download)
            return
        else:
            self._append_fetched(response)
        self._send_fetch()

    def _truncate_diverged(self, diverging: OffsetAndEpoch) -> None:
        """Kafka's ``truncateToEndOffset``: cut the log back to where it matches the leader."""
        local = self._log.end_offset_for_epoch(diverging.epoch)
        if local is None:
            truncate_to = self._log.start_offset
        elif local.epoch == diverging.epoch:
            truncate_to = min(local.offset, diverging.offset)
        else:
            truncate_to = local.offset
        assert truncate_to >= self._high_watermark, (
            f"node {self._id}: truncating to {truncate_to} below the high watermark "
            f"{self._high_watermark}")
        self._log.truncate_to(truncate_to)
        self._durable_end_offset = min(self._durable_end_offset, truncate_to)

    def _append_fetched(self, response: FetchResponse) -> None:
        for batch in response.batches:
            if batch.base_offset != self._log.end_offset:
                break  # not contiguous (cannot happen for a response to our own Fetch)
            assert batch.epoch <= response.leader_epoch, (batch, response.leader_epoch)
            self._log.append(batch)
        if response.high_watermark >= 0:
            self._leader_high_watermark = max(self._leader_high_watermark,
                                              response.high_watermark)
            new = min(response.high_watermark, self._log.end_offset)
            self._high_watermark = max(self._high_watermark, new)

    # =============================================================== snapshots

    def _send_fetch_snapshot(self, download: _SnapshotDownload) -> None:
        follower = self._follower
        assert follower is not None
        download.resend_deadline = self._now + self._config.request_timeout_ticks
        follower.sequence += 1
        self._send(self._leader_id, FetchSnapshotRequest(
            self._id, self._epoch, download.snapshot_id, len(download.data),
            self._config.snapshot_chunk_bytes, follower.sequence))

    def _on_fetch_snapshot_request(self, source: int, request: FetchSnapshotRequest) -> None:
        error = self._leader_only_error(request.current_leader_epoch)
        if error is None:
            self._note_fetcher(source)
            found = None
            if request.snapshot_id == self._log.snapshot_id and request.position >= 0:
                found = self._storage.read_snapshot(request.snapshot_id, request.position,
                                                    request.max_bytes)
            if request.snapshot_id != self._log.snapshot_id or (
                    found is None and request.position >= 0):
                error = ErrorCode.SNAPSHOT_NOT_FOUND
            elif found is None or request.position >= found[0]:
                error = ErrorCode.POSITION_OUT_OF_RANGE
            else:
                size, data = found
                self._send(source, FetchSnapshotResponse(
                    _NONE, self._id, self._epoch, request.snapshot_id, size, request.position,
                    data, request.sequence))
                return
        self._send(source, FetchSnapshotResponse(int(error), self._leader_id, self._epoch,
                                                 request.snapshot_id, -1, request.position,
                                                 sequence=request.sequence))

    def _on_fetch_snapshot_response(self, source: int, response: FetchSnapshotResponse) -> None:
        self._observe_leader(response.leader_id, response.leader_epoch)
        follower = self._follower
        if (follower is None or follower.download is None or source != self._leader_id
                or response.leader_epoch != self._epoch):
            return
        download = follower.download
        if (response.snapshot_id != download.snapshot_id or response.sequence != follower.sequence
                or response.position != len(download.data)):
            return  # stale or duplicated chunk
        if response.error_code != _NONE:
            follower.download = None  # e.g. SNAPSHOT_NOT_FOUND: a newer snapshot exists
            self._send_fetch()
            return
        self._fetch_deadline = self._now + self._config.fetch_timeout_ticks
        download.data += response.data
        if len(download.data) < response.size and response.data:
            self._send_fetch_snapshot(download)
            return
        assert len(download.data) == response.size, (len(download.data), response.size)
        follower.download = None
        snapshot_id = download.snapshot_id
        assert snapshot_id.end_offset >= self._high_watermark
        self._log.install_snapshot(Snapshot(snapshot_id, bytes(download.data)))
        self._high_watermark = snapshot_id.end_offset
        self._applied_offset = snapshot_id.end_offset
        self._durable_end_offset = snapshot_id.end_offset
        self._load_snapshot = snapshot_id
        self._send_fetch()

    # =============================================================== plumbing

    def _send(self, destination: int, message: Message) -> None:
        assert destination != self._id
        self._messages.append(Envelope(self._id, destination, message))

    def _check_not_in_ready(self) -> None:
        assert not self._in_ready, "the node was used between ready() and advance()"

    def _start_election(self) -> None:
        """The only voter wins at once (no one to ask)."""
        self._role = Role.UNATTACHED
        self._become_candidate()


_HANDLERS = {
    VoteRequest: RaftNode._on_vote_request,
    VoteResponse: RaftNode._on_vote_response,
    BeginQuorumEpochRequest: RaftNode._on_begin_quorum_epoch_request,
    BeginQuorumEpochResponse: RaftNode._on_begin_quorum_epoch_response,
    EndQuorumEpochRequest: RaftNode._on_end_quorum_epoch_request,
    EndQuorumEpochResponse: RaftNode._on_end_quorum_epoch_response,
    FetchRequest: RaftNode._on_fetch_request,
    FetchResponse: RaftNode._on_fetch_response,
    FetchSnapshotRequest: RaftNode._on_fetch_snapshot_request,
    FetchSnapshotResponse: RaftNode._on_fetch_snapshot_response,
}
