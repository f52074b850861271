"""The asyncio driver, TCP transport and file storage together, three voters in one process.

Goal: what the simulator proves for the pure core also holds once real sockets, fsyncs and the
Kafka wire format are in between: an election, a commit on every voter, failover when the
leader's listener vanishes, and a restarted voter catching up (through a snapshot when the
log was trimmed).

Method: three RaftDrivers on loopback controller listeners with short timers (20 ms ticks),
FileRaftStorage in tmp_path, a list per voter as the state machine; poll with deadlines.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest

from streambus.raft.driver import RaftDriver
from streambus.raft.messages import SnapshotId
from streambus.raft.node import RaftNode
from streambus.raft.ready import Snapshot
from streambus.raft.settings import QuorumSettings
from streambus.raft.state import Role
from streambus.raft.storage import FileRaftStorage
from streambus.raft.transport import ControllerListener, PeerClient, RaftChannel

TICK_MS = 20


def _monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class _Voter:
    def __init__(self, node_id: int, directory: Path) -> None:
        self.node_id = node_id
        self.directory = directory
        self.listener = ControllerListener("127.0.0.1", 0, raft_request=self._request,
                                           handlers={})
        self.driver: RaftDriver | None = None
        self.channel: RaftChannel | None = None
        self.storage: FileRaftStorage | None = None
        self.applied: list[bytes] = []
        self.loaded: list[SnapshotId] = []

    def _request(self, connection, header, request) -> None:
        if self.channel is not None:
            self.channel.receive_request(connection, header, request)

    async def start(self, voters: dict[int, tuple[str, int]]) -> None:
        settings = QuorumSettings(node_id=self.node_id, voters=voters, tick_ms=TICK_MS,
                                  election_timeout_ms=200, fetch_timeout_ms=400,
                                  election_backoff_max_ms=200, request_timeout_ms=100,
                                  fetch_max_wait_ms=100)
        self.storage = FileRaftStorage(self.directory, _wall_ms, clean_shutdown=False)
        node = RaftNode(settings.raft_config(), self.storage, random.Random(self.node_id))
        self.channel = RaftChannel(self.node_id, "test", voters, tick_ms=TICK_MS,
                                   wall_ms=_wall_ms, client=PeerClient())
        self.applied = []
        self.driver = RaftDriver(
            node, self.storage, tick_ms=TICK_MS, monotonic_ms=_monotonic_ms, wall_ms=_wall_ms,
            send=self.channel.send,
            apply_committed=lambda batches: self.applied.extend(
                r for b in batches if not b.control for r in b.records),
            load_snapshot=self._load)
        self.channel.deliver = self.driver.step
        self.driver.start()

    def _load(self, snapshot_id: SnapshotId) -> None:
        assert self.storage is not None
        self.loaded.append(snapshot_id)
        self.applied = self.storage.snapshot_data(snapshot_id).split(b",")

    async def stop(self) -> None:
        assert self.driver is not None and self.storage is not None
        await self.driver.stop(resign=False)
        self.storage.close(clean=False)
        self.driver = None


async def _until(predicate, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def _leader(voters: list[_Voter]) -> _Voter | None:
    for voter in voters:
        driver = voter.driver
        if driver is not None and driver.node.role is Role.LEADER and driver.node.is_leader_ready:
            return voter
    return None


async def _cluster(tmp_path: Path) -> tuple[list[_Voter], dict[int, tuple[str, int]]]:
    voters = [_Voter(i, tmp_path / f"voter-{i}" / "__cluster_metadata-0") for i in (1, 2, 3)]
    for voter in voters:
        await voter.listener.start()
    addresses = {v.node_id: ("127.0.0.1", v.listener.port) for v in voters}
    for voter in voters:
        await voter.start(addresses)
    return voters, addresses


@pytest.mark.timeout(60)
def test_three_voters_elect_commit_fail_over_and_catch_up(tmp_path: Path) -> None:
    async def scenario() -> None:
        voters, addresses = await _cluster(tmp_path)
        await _until(lambda: _leader(voters) is not None)
        leader = _leader(voters)
        assert leader is not None and leader.driver is not None
        assert await leader.driver.propose([b"a", b"b"]).wait(5)
        await _until(lambda: all(v.applied == [b"a", b"b"] for v in voters))

        # The leader's process "dies": its listener and driver stop; a new leader follows.
        await leader.stop()
        await leader.listener.stop()
        started = time.monotonic()
        others = [v for v in voters if v is not leader]
        await _until(lambda: _leader(others) is not None)
        assert time.monotonic() - started < 5
        new_leader = _leader(others)
        assert new_leader is not None and new_leader.driver is not None
        assert await new_leader.driver.propose([b"c"]).wait(5)

        # It comes back on the same port and data dir and catches up as a follower.
        leader.listener = ControllerListener("127.0.0.1", addresses[leader.node_id][1],
                                             raft_request=leader._request, handlers={})
        await leader.listener.start()
        await leader.start(addresses)
        await _until(lambda: leader.applied == [b"a", b"b", b"c"])
        assert leader.driver is not None and leader.driver.node.role is Role.FOLLOWER
        for voter in voters:
            await voter.stop()
            await voter.listener.stop()

    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_a_voter_behind_a_trimmed_log_loads_the_snapshot_over_the_wire(tmp_path: Path) -> None:
    async def scenario() -> None:
        voters, addresses = await _cluster(tmp_path)
        await _until(lambda: _leader(voters) is not None)
        leader = _leader(voters)
        assert leader is not None and leader.driver is not None
        lagging = next(v for v in voters if v is not leader)
        await lagging.stop()
        await lagging.listener.stop()
        for value in (b"x", b"y", b"z"):
            assert await leader.driver.propose([value]).wait(5)
        node = leader.driver.node
        await _until(lambda: leader.driver.applied_offset == node.high_watermark)
        end_offset = node.high_watermark
        snapshot_id = SnapshotId(end_offset, node.epoch_of(end_offset - 1))
        assert leader.storage is not None
        leader.storage.save_snapshot(Snapshot(snapshot_id, b",".join(leader.applied)))
        node.snapshot_saved(snapshot_id)
        leader.driver.process()
        assert node.log_start_offset == end_offset

        lagging.listener = ControllerListener("127.0.0.1", addresses[lagging.node_id][1],
                                              raft_request=lagging._request, handlers={})
        await lagging.listener.start()
        await lagging.start(addresses)
        await _until(lambda: lagging.loaded == [snapshot_id])
        assert lagging.applied == [b"x", b"y", b"z"]
        assert await leader.driver.propose([b"after"]).wait(5)
        await _until(lambda: lagging.applied == [b"x", b"y", b"z", b"after"])
        for voter in voters:
            await voter.stop()
            await voter.listener.stop()

    asyncio.run(scenario())
