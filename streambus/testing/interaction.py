"""Hand-driven Raft clusters for paper-section tests and scripted scenarios.

This module owns :class:`InteractionEnv`, etcd-raft's ``rafttest.InteractionEnv`` for our core:
a few :class:`~streambus.raft.node.RaftNode` replicas over :class:`MemoryRaftStorage`, whose
messages wait in one FIFO until a test delivers, drops or reorders them.  Nothing happens by
itself: time moves only on ``tick``, messages only on ``deliver``.  It also owns the tiny
datadriven script format of ``tests/raft/scenarios/*.txt``::

    command arg key=value
    ----
    expected output (regenerated with STREAMBUS_REWRITE=1)

Commands are listed in :meth:`InteractionEnv.run_command`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from streambus.raft.messages import (
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
    SnapshotId,
    VoteRequest,
    VoteResponse,
)
from streambus.raft.node import RaftConfig, RaftNode
from streambus.raft.ready import Snapshot
from streambus.raft.storage import MemoryRaftStorage

__all__ = ["InteractionEnv", "describe_message", "run_script", "parse_script"]


def describe_message(envelope: Envelope) -> str:
    """One short line per message, stable enough for golden files."""
    m = envelope.message
    head = f"{envelope.source}->{envelope.destination}"
    if isinstance(m, VoteRequest):
        kind = "PreVote" if m.pre_vote else "Vote"
        return f"{head} {kind} epoch={m.epoch} last=({m.last_offset_epoch},{m.last_offset})"
    if isinstance(m, VoteResponse):
        kind = "PreVoteResp" if m.pre_vote else "VoteResp"
        verdict = "granted" if m.vote_granted else "rejected"
        return (f"{head} {kind} {verdict} epoch={m.leader_epoch} leader={m.leader_id}"
                + _error(m.error_code))
    if isinstance(m, BeginQuorumEpochRequest):
        return f"{head} BeginQuorumEpoch epoch={m.leader_epoch}"
    if isinstance(m, BeginQuorumEpochResponse):
        return f"{head} BeginQuorumEpochResp epoch={m.leader_epoch}{_error(m.error_code)}"
    if isinstance(m, EndQuorumEpochRequest):
        successors = ",".join(str(s) for s in m.preferred_successors)
        return f"{head} EndQuorumEpoch epoch={m.leader_epoch} successors=[{successors}]"
    if isinstance(m, EndQuorumEpochResponse):
        return f"{head} EndQuorumEpochResp epoch={m.leader_epoch}{_error(m.error_code)}"
    if isinstance(m, FetchRequest):
        return (f"{head} Fetch epoch={m.current_leader_epoch} offset={m.fetch_offset} "
                f"last_epoch={m.last_fetched_epoch}")
    if isinstance(m, FetchResponse):
        text = f"{head} FetchResp epoch={m.leader_epoch} hw={m.high_watermark}"
        if m.diverging_epoch is not None:
            text += f" diverging=({m.diverging_epoch.epoch},{m.diverging_epoch.offset})"
        if m.snapshot_id is not None:
            text += f" snapshot=({m.snapshot_id.end_offset},{m.snapshot_id.epoch})"
        if m.batches:
            text += " batches=" + " ".join(_batch_text(b) for b in m.batches)
        return text + _error(m.error_code)
    if isinstance(m, FetchSnapshotRequest):
        return (f"{head} FetchSnapshot epoch={m.current_leader_epoch} "
                f"id=({m.snapshot_id.end_offset},{m.snapshot_id.epoch}) position={m.position}")
    if isinstance(m, FetchSnapshotResponse):
        return (f"{head} FetchSnapshotResp epoch={m.leader_epoch} position={m.position} "
                f"size={m.size} bytes={len(m.data)}" + _error(m.error_code))
    raise AssertionError(f"unknown message {m!r}")


def _error(code: int) -> str:
    if code == 0:
        return ""
    from streambus.protocol.error_codes import ErrorCode

    return f" error={ErrorCode.for_code(code).name}"


def _batch_text(batch: Batch) -> str:
    if batch.control:
        return f"{batch.base_offset}@{batch.epoch}:LeaderChange"
    values = ",".join(record.decode("utf-8", "replace") for record in batch.records)
    return f"{batch.base_offset}@{batch.epoch}:{values}"


@dataclass(slots=True)
class _Replica:
    storage: MemoryRaftStorage
    node: RaftNode | None
    applied: list[Batch] = field(default_factory=list)
    snapshot: SnapshotId | None = None


class InteractionEnv:
    """A hand-driven cluster.

    Args:
        voters: voter ids.
        observers: observer (broker) ids.
        seed: seeds each replica's ``random.Random``.
        config: extra ``RaftConfig`` fields for every replica.
    """

    def __init__(self, voters: Iterable[int], observers: Iterable[int] = (), *, seed: int = 0,
                 **config: object) -> None:
        self.voters = tuple(sorted(voters))
        self.observers = tuple(sorted(observers))
        self.seed = seed
        self.config_overrides = config
        self.replicas: dict[int, _Replica] = {}
        self.in_flight: list[Envelope] = []
        self.blocked: set[tuple[int, int]] = set()
        self.output: list[str] = []
        self.restarts = 0
        for node_id in self.voters + self.observers:
            self.replicas[node_id] = _Replica(MemoryRaftStorage(), None)
            self.start(node_id)

    # -- replicas -------------------------------------------------------------------------

    def node(self, node_id: int) -> RaftNode:
        node = self.replicas[node_id].node
        assert node is not None, f"node {node_id} is down"
        return node

    def start(self, node_id: int) -> None:
        replica = self.replicas[node_id]
        self.restarts += 1
        config = RaftConfig(node_id=node_id, voters=self.voters,
                            **self.config_overrides)  # type: ignore[arg-type]
        replica.node = RaftNode(config, replica.storage, random.Random(self.seed * 1000 + node_id
                                                                       + self.restarts))
        replica.applied = []
        self.process(node_id)

    def crash(self, node_id: int) -> None:
        """Stop the node; its storage loses what was not synced; its messages vanish."""
        replica = self.replicas[node_id]
        replica.node = None
        replica.storage.crash()
        self.in_flight = [e for e in self.in_flight
                          if e.source != node_id and e.destination != node_id]

    def process(self, node_id: int) -> None:
        """Apply every Ready the node has (the driver's job), queueing its messages."""
        replica = self.replicas[node_id]
        node = replica.node
        while node is not None and node.has_ready():
            ready = node.ready()
            storage = replica.storage
            if ready.quorum_state is not None:
                storage.save_quorum_state(ready.quorum_state)
            if ready.install_snapshot is not None:
                storage.install_snapshot(ready.install_snapshot)
            if ready.truncate_to is not None:
                storage.truncate_to(ready.truncate_to)
            storage.append(ready.append)
            if ready.must_sync:
                storage.sync()
            if ready.log_start_offset is not None:
                storage.trim_prefix(ready.log_start_offset)
            self.in_flight.extend(ready.messages)
            if ready.load_snapshot is not None:
                replica.snapshot = ready.load_snapshot
                replica.applied = []
            replica.applied.extend(ready.committed)
            node.advance(ready)

    # -- time and messages ----------------------------------------------------------------

    def tick(self, node_id: int, count: int = 1) -> None:
        for _ in range(count):
            self.node(node_id).tick()
            self.process(node_id)

    def tick_all(self, count: int = 1) -> None:
        for _ in range(count):
            for node_id, replica in self.replicas.items():
                if replica.node is not None:
                    replica.node.tick()
                    self.process(node_id)

    def deliver(self, *, source: int | None = None, destination: int | None = None,
                drop: bool = False, keep: Callable[[Envelope], bool] | None = None) -> list[str]:
        """Deliver (or drop) the messages in flight that match, oldest first; messages they
        cause wait for the next call.  Returns one line per message handled."""
        matching, rest = [], []
        for envelope in self.in_flight:
            wanted = ((source is None or envelope.source == source)
                      and (destination is None or envelope.destination == destination)
                      and (keep is None or keep(envelope)))
            (matching if wanted else rest).append(envelope)
        self.in_flight = rest
        lines = []
        for envelope in matching:
            text = describe_message(envelope)
            replica = self.replicas[envelope.destination]
            if drop or (envelope.source, envelope.destination) in self.blocked \
                    or replica.node is None:
                lines.append(f"dropped {text}")
                continue
            lines.append(text)
            replica.node.step(envelope)
            self.process(envelope.destination)
        return lines

    def stabilize(self, rounds_max: int = 100) -> list[str]:
        """Deliver until nothing is in flight (parked Fetches stay parked)."""
        lines: list[str] = []
        for _ in range(rounds_max):
            if not self.in_flight:
                return lines
            lines.extend(self.deliver())
        raise AssertionError("stabilize: messages keep flowing")

    def propose(self, node_id: int, *values: str) -> tuple[int, int]:
        result = self.node(node_id).propose([value.encode() for value in values])
        self.process(node_id)
        return result

    def elect(self, node_id: int) -> None:
        """Make ``node_id`` leader with every message delivered.

        Followers that still trust an old leader reject pre-votes (KIP-996), so they are first
        ticked until their fetch timer expires, with their own campaigns dropped.
        """
        for other, replica in sorted(self.replicas.items()):
            node = replica.node
            if other == node_id or node is None or other not in self.voters:
                continue
            if node.role.value == "follower" and node.leader_id != node_id:
                for _ in range(node.config.fetch_timeout_ticks + 1):
                    if node.role.value != "follower":
                        break
                    self.tick(other)
                self.in_flight = [e for e in self.in_flight if e.source != other]
        self.node(node_id).campaign()
        self.process(node_id)
        self.stabilize()
        assert self.node(node_id).role.value == "leader", self.status()

    def take_snapshot(self, node_id: int) -> SnapshotId:
        """Snapshot the node's applied state at its applied offset."""
        replica = self.replicas[node_id]
        node = self.node(node_id)
        end_offset = replica.applied[-1].end_offset
        snapshot_id = SnapshotId(end_offset, node.epoch_of(end_offset - 1))
        replica.storage.save_snapshot(Snapshot(snapshot_id, b"state@%d" % end_offset))
        node.snapshot_saved(snapshot_id)
        self.process(node_id)
        return snapshot_id

    # -- views ----------------------------------------------------------------------------

    def status(self) -> str:
        lines = []
        for node_id, replica in sorted(self.replicas.items()):
            node = replica.node
            if node is None:
                lines.append(f"{node_id}: down")
                continue
            lines.append(
                f"{node_id}: {node.role.value} epoch={node.epoch} leader={node.leader_id} "
                f"voted={node.voted_id} log=[{node.log_start_offset},{node.log_end_offset}) "
                f"hw={node.high_watermark}")
        return "\n".join(lines)

    def log_text(self, node_id: int) -> str:
        batches = self.replicas[node_id].storage.all_batches()
        return " ".join(_batch_text(b) for b in batches) or "(empty)"

    def applied_values(self, node_id: int) -> list[str]:
        return [record.decode() for batch in self.replicas[node_id].applied
                if not batch.control for record in batch.records]

    # -- scripts --------------------------------------------------------------------------

    def run_command(self, line: str) -> str:
        """Run one script command; returns its output.

        Commands: ``status``; ``tick NODE [N]``; ``tick-all [N]``; ``campaign NODE``;
        ``propose NODE V...``; ``deliver [from=N] [to=N] [drop]``; ``stabilize``;
        ``crash NODE``; ``restart NODE``; ``isolate NODE``; ``heal``; ``log NODE``;
        ``applied NODE``; ``resign NODE``; ``snapshot NODE``; ``in-flight``.
        """
        words = line.split()
        command, args = words[0], words[1:]
        positional = [int(a) for a in args if "=" not in a and a != "drop"
                      and command != "propose"]
        options = dict(a.split("=", 1) for a in args if "=" in a)
        if command == "status":
            return self.status()
        if command == "tick":
            self.tick(positional[0], positional[1] if len(positional) > 1 else 1)
            return self.status()
        if command == "tick-all":
            self.tick_all(positional[0] if positional else 1)
            return self.status()
        if command == "campaign":
            self.node(positional[0]).campaign()
            self.process(positional[0])
            return self.in_flight_text()
        if command == "propose":
            base_offset, epoch = self.propose(int(args[0]), *args[1:])
            return f"proposed at offset {base_offset} epoch {epoch}"
        if command == "deliver":
            lines = self.deliver(
                source=int(options["from"]) if "from" in options else None,
                destination=int(options["to"]) if "to" in options else None,
                drop="drop" in args)
            return "\n".join(lines) or "(nothing)"
        if command == "stabilize":
            return "\n".join(self.stabilize() + [self.status()])
        if command == "crash":
            self.crash(positional[0])
            return self.status()
        if command == "restart":
            self.start(positional[0])
            return self.status()
        if command == "isolate":
            node_id = positional[0]
            for other in self.replicas:
                if other != node_id:
                    self.blocked.update({(node_id, other), (other, node_id)})
            return "ok"
        if command == "heal":
            self.blocked.clear()
            return "ok"
        if command == "log":
            return self.log_text(positional[0])
        if command == "applied":
            return ",".join(self.applied_values(positional[0])) or "(nothing)"
        if command == "resign":
            self.node(positional[0]).resign()
            self.process(positional[0])
            return self.in_flight_text()
        if command == "snapshot":
            snapshot_id = self.take_snapshot(positional[0])
            return f"snapshot ({snapshot_id.end_offset},{snapshot_id.epoch})\n" + self.status()
        if command == "in-flight":
            return self.in_flight_text()
        raise ValueError(f"unknown command {command!r}")

    def in_flight_text(self) -> str:
        return "\n".join(describe_message(e) for e in self.in_flight) or "(nothing)"


def parse_script(text: str) -> list[tuple[str, str]]:
    """Split a script into (command, expected output) pairs."""
    cases = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.strip() or line.startswith("#"):
            index += 1
            continue
        command = line.strip()
        assert index + 1 < len(lines) and lines[index + 1] == "----", f"no ---- after {command!r}"
        index += 2
        expected = []
        while index < len(lines) and lines[index].strip():
            expected.append(lines[index])
            index += 1
        cases.append((command, "\n".join(expected)))
    return cases


def run_script(path: Path, *, rewrite: bool = False) -> list[tuple[str, str, str]]:
    """Run a scenario file; returns (command, expected, actual) for every command.

    The first line must be ``env voters=1,2,3 [observers=4] [seed=N] [pre_vote=false]``.
    With ``rewrite`` the file is rewritten with the actual outputs.
    """
    text = path.read_text()
    cases = parse_script(text)
    header, _ = cases[0]
    options = dict(word.split("=", 1) for word in header.split()[1:])
    env = InteractionEnv(
        [int(v) for v in options["voters"].split(",")],
        [int(v) for v in options["observers"].split(",")] if "observers" in options else (),
        seed=int(options.get("seed", "0")),
        **({"pre_vote": options["pre_vote"] == "true"} if "pre_vote" in options else {}),
    )
    results = [(header, cases[0][1], env.status())]
    for command, expected in cases[1:]:
        results.append((command, expected, env.run_command(command)))
    if rewrite:
        leading = [line for line in text.splitlines() if line.startswith("#")]
        blocks = ["\n".join(leading)] if leading else []
        blocks += [f"{command}\n----\n{actual}" for command, _, actual in results]
        path.write_text("\n\n".join(blocks) + "\n")
    return results
