"""The asyncio shell around one RaftNode: clock -> ticks, network -> steps, Ready -> disk.

This module owns the driver loop of ``raft/ready.py`` for a real process (etcd-raft's
``doc.go`` steps, Kafka's ``KafkaRaftClient.poll``): it turns monotonic time into ticks, hands
arriving messages to the node, and for every Ready persists, fsyncs, sends, applies and
advances — synchronously, so a single-voter quorum commits inside ``propose`` (the quick start
stays a one-process broker with synchronous metadata writes).  It never decides anything about
consensus; that is :class:`~streambus.raft.node.RaftNode`'s job.

Proposals: :meth:`RaftDriver.propose` returns a :class:`Proposal` that resolves True once the
batch commits with the proposing epoch, or False when leadership was lost first (the batch may
still commit later under the new leader, as in Kafka; callers answer NOT_CONTROLLER).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from streambus.raft.messages import Batch, Envelope, SnapshotId
from streambus.raft.node import NotLeaderError, QuorumInfo, RaftNode, ReplicaState
from streambus.raft.ready import Ready
from streambus.raft.state import Role

__all__ = ["RaftDriver", "Proposal", "DEFAULT_TICK_MS"]

logger = logging.getLogger(__name__)

#: One logical tick; every RaftConfig duration is a multiple of it.
DEFAULT_TICK_MS = 100
#: After a pause (SIGSTOP, a long GC-like stall) at most this many ticks are replayed at once;
#: more would only fire the same timers again.
TICKS_PER_CATCH_UP_MAX = 1000
#: Committed proposals are remembered this long for late waiters; pending ones until resolved.
PROPOSALS_PENDING_MAX = 100_000


@dataclass(slots=True)
class Proposal:
    """One proposed batch: (base_offset, epoch) identifies it in the log."""

    base_offset: int
    end_offset: int
    epoch: int
    result: bool | None = None
    """None while pending; True once committed in ``epoch``; False if that became impossible
    or unknowable (leadership lost, overwritten, snapshotted over)."""
    _waiters: list[asyncio.Future] = field(default_factory=list)

    def resolve(self, result: bool) -> None:
        if self.result is not None:
            return
        self.result = result
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(result)
        self._waiters.clear()

    async def wait(self, timeout_s: float | None = None) -> bool:
        """True if committed; False if lost (or still pending after ``timeout_s``)."""
        if self.result is not None:
            return self.result
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), timeout_s)
        except asyncio.TimeoutError:
            return False


class RaftDriver:
    """Drives ``node`` over ``storage`` and ``send``.

    Args:
        node: the pure core.
        storage: the same storage the node reads; the driver writes it.
        tick_ms: milliseconds per tick.
        monotonic_ms: the clock that drives ticks (never the wall clock: scenario Q13).
        wall_ms: wall clock, only for DescribeQuorum timestamps.
        send: puts one message on the network (may drop it); None for a lone voter.
        apply_committed: applies committed batches (control batches included) in order.
        load_snapshot: resets the state machine from a stored snapshot.
        on_change: called after any Ready that changed role, epoch, leader or commit.
    """

    def __init__(self, node: RaftNode, storage: Any, *, tick_ms: int,
                 monotonic_ms: Callable[[], int], wall_ms: Callable[[], int],
                 send: Callable[[Envelope], None] | None,
                 apply_committed: Callable[[list[Batch]], None],
                 load_snapshot: Callable[[SnapshotId], None],
                 on_change: Callable[[], None] | None = None) -> None:
        assert tick_ms >= 1
        self.node = node
        self.storage = storage
        self.tick_ms = tick_ms
        self._monotonic_ms = monotonic_ms
        self._wall_ms = wall_ms
        self._send = send
        self._apply_committed = apply_committed
        self._load_snapshot = load_snapshot
        self._on_change = on_change
        self._last_tick_ms = monotonic_ms()
        self._proposals: dict[int, Proposal] = {}
        self._processing = False
        self._closed = False
        self._task: asyncio.Task | None = None
        self._watchers: list[asyncio.Future] = []
        self.applied_offset = node.high_watermark
        self.election_count = 1 if node.role is Role.LEADER else 0
        self._last_view = self._view()

    def attach(self, send: Callable[[Envelope], None]) -> None:
        """Start sending through ``send`` (a transport created after the node)."""
        self._send = send

    def is_caught_up(self) -> bool:
        """Everything the quorum had committed when this replica last heard from the
        leader is applied here (the leader itself: everything committed is applied)."""
        node = self.node
        if node.role is Role.LEADER:
            return node.is_leader_ready and self.applied_offset >= node.high_watermark
        target = node.leader_high_watermark
        return target >= 0 and self.applied_offset >= target

    # -- inputs ---------------------------------------------------------------------------

    def step(self, envelope: Envelope) -> None:
        """A message from the network."""
        if self._closed:
            return
        self.node.step(envelope)
        self.process()

    def tick_due(self) -> None:
        """Fire the ticks that elapsed since the last call."""
        now_ms = self._monotonic_ms()
        due = (now_ms - self._last_tick_ms) // self.tick_ms
        if due <= 0:
            return
        self._last_tick_ms += due * self.tick_ms
        for _ in range(min(due, TICKS_PER_CATCH_UP_MAX)):
            self.node.tick()
        self.process()

    def propose(self, records: Sequence[bytes]) -> Proposal:
        """Append ``records`` as one batch; the returned proposal resolves on commit.

        Raises:
            NotLeaderError: this replica is not the leader.
        """
        if self._closed:
            raise NotLeaderError(-1, self.node.epoch)
        base_offset, epoch = self.node.propose(records)
        proposal = Proposal(base_offset, base_offset + len(records), epoch)
        self._proposals[base_offset] = proposal
        self.process()
        return proposal

    # -- the Ready loop -------------------------------------------------------------------

    def process(self) -> None:
        """Carry out every pending Ready, in the order ``raft/ready.py`` prescribes."""
        if self._processing:
            return  # re-entered from an apply callback: the outer loop picks it up
        self._processing = True
        try:
            rounds = 0
            while self.node.has_ready():
                rounds += 1
                assert rounds < 100_000, "Ready loop does not converge"
                ready = self.node.ready()
                self._carry_out(ready)
                self.node.advance(ready)
        finally:
            self._processing = False
        self._after_change()

    def _carry_out(self, ready: Ready) -> None:
        storage = self.storage
        if ready.quorum_state is not None:
            storage.save_quorum_state(ready.quorum_state)
        if ready.install_snapshot is not None:
            storage.install_snapshot(ready.install_snapshot)
        if ready.truncate_to is not None:
            storage.truncate_to(ready.truncate_to)
        if ready.append:
            storage.append(ready.append)
        if ready.must_sync:
            storage.sync()
        if ready.log_start_offset is not None:
            storage.trim_prefix(ready.log_start_offset)
        if self._send is not None:
            for envelope in ready.messages:
                self._send(envelope)
        if ready.load_snapshot is not None:
            self._load_snapshot(ready.load_snapshot)
            self.applied_offset = ready.load_snapshot.end_offset
            for base_offset in [o for o in self._proposals if o < self.applied_offset]:
                self._proposals.pop(base_offset).resolve(False)
        if ready.committed:
            self._apply_committed(ready.committed)
            for batch in ready.committed:
                proposal = self._proposals.pop(batch.base_offset, None)
                if proposal is not None:
                    proposal.resolve(batch.epoch == proposal.epoch)
            self.applied_offset = ready.committed[-1].end_offset

    def _view(self) -> tuple[Role, int, int, int]:
        node = self.node
        return node.role, node.epoch, node.leader_id, node.high_watermark

    def _after_change(self) -> None:
        view = self._view()
        if view == self._last_view:
            return
        previous, self._last_view = self._last_view, view
        if view[0] is Role.LEADER and previous[0] is not Role.LEADER:
            self.election_count += 1
        if previous[0] is Role.LEADER and view[0] is not Role.LEADER:
            # Kafka's renounce(): pending writes are failed with NOT_CONTROLLER.
            for proposal in self._proposals.values():
                proposal.resolve(False)
            self._proposals.clear()
        watchers, self._watchers = self._watchers, []
        for watcher in watchers:
            if not watcher.done():
                watcher.set_result(None)
        if self._on_change is not None:
            self._on_change()

    async def changed(self, timeout_s: float) -> None:
        """Wait until role, epoch, leader or high watermark changes (or the timeout)."""
        waiter = asyncio.get_running_loop().create_future()
        self._watchers.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout_s)
        except asyncio.TimeoutError:
            pass

    # -- running --------------------------------------------------------------------------

    def start(self) -> None:
        """Start ticking in the running event loop."""
        self._last_tick_ms = self._monotonic_ms()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while not self._closed:
            elapsed = self._monotonic_ms() - self._last_tick_ms
            await asyncio.sleep(max(0.0, (self.tick_ms - elapsed) / 1000))
            try:
                self.tick_due()
            except Exception:  # a bug here must not silently stop the quorum
                logger.exception("raft tick failed")
                raise

    async def stop(self, *, resign: bool = True) -> None:
        """Resign if leading (EndQuorumEpoch goes out), then stop ticking."""
        if resign and not self._closed and self.node.role is Role.LEADER:
            self.node.resign()
            self.process()
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        for proposal in self._proposals.values():
            proposal.resolve(False)
        self._proposals.clear()

    # -- views ----------------------------------------------------------------------------

    def describe_quorum(self) -> QuorumInfo | None:
        """DescribeQuorum data with tick times turned into wall-clock milliseconds."""
        info = self.node.describe_quorum()
        if info is None:
            return None
        now_wall = self._wall_ms()

        def to_ms(state: ReplicaState) -> ReplicaState:
            def stamp(tick: int) -> int:
                return -1 if tick < 0 else now_wall - (info.now_tick - tick) * self.tick_ms
            return ReplicaState(state.replica_id, state.log_end_offset,
                                stamp(state.last_fetch_tick), stamp(state.last_caught_up_tick))

        return QuorumInfo(info.leader_id, info.leader_epoch, info.high_watermark,
                          tuple(to_ms(v) for v in info.voters),
                          tuple(to_ms(o) for o in info.observers), info.now_tick)
