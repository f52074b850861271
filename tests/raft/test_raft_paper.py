"""The Raft core against the sentences of the Raft paper and of KIP-595/KIP-996/KIP-630.

Method: an InteractionEnv of pure RaftNodes whose messages are delivered, dropped or held by
hand; each test builds the situation a sentence describes and checks the whole outcome
(roles, epochs, logs, messages).  References name the paper section or KIP rule, as etcd-raft's
``raft_paper_test.go`` does.
"""

from __future__ import annotations

import random

import pytest

from streambus.protocol.error_codes import ErrorCode
from streambus.raft.messages import (
    BeginQuorumEpochRequest,
    Envelope,
    FetchResponse,
    VoteRequest,
    VoteResponse,
)
from streambus.raft.node import NotLeaderError, RaftConfig, RaftNode
from streambus.raft.state import QuorumState, Role
from streambus.raft.storage import MemoryRaftStorage
from streambus.testing.interaction import InteractionEnv


def _roles(env: InteractionEnv) -> dict[int, str]:
    return {node_id: env.node(node_id).role.value for node_id in env.replicas
            if env.replicas[node_id].node is not None}


def _replicated_env(values: tuple[str, ...] = ("a", "b")) -> InteractionEnv:
    env = InteractionEnv([1, 2, 3])
    env.elect(1)
    if values:
        env.propose(1, *values)
        env.stabilize()
    return env


# ------------------------------------------------------------------ §5.1 epochs (terms)


def test_a_message_with_a_higher_epoch_moves_a_replica_to_that_epoch() -> None:
    """Reference: §5.1 "If a server's current term is smaller, it updates it"."""
    env = InteractionEnv([1, 2, 3])
    node = env.node(2)
    node.step(Envelope(3, 2, BeginQuorumEpochRequest(leader_id=3, leader_epoch=7, voter_id=2)))
    env.process(2)
    assert (node.role, node.epoch, node.leader_id) == (Role.FOLLOWER, 7, 3)
    assert env.replicas[2].storage.quorum_state() == QuorumState(7, 3, -1)


def test_a_request_with_a_stale_epoch_is_rejected() -> None:
    """Reference: §5.1 "If a server receives a request with a stale term number, it rejects
    the request" (KIP-595: FENCED_LEADER_EPOCH)."""
    env = _replicated_env(())
    env.node(2).step(Envelope(3, 2, VoteRequest(epoch=0, candidate_id=3, voter_id=2,
                                                last_offset_epoch=0, last_offset=0,
                                                pre_vote=True)))
    env.process(2)
    [reply] = [e.message for e in env.in_flight if e.destination == 3]
    assert reply == VoteResponse(int(ErrorCode.FENCED_LEADER_EPOCH), leader_id=1,
                                 leader_epoch=1, vote_granted=False, pre_vote=True)


def test_a_leader_steps_down_when_it_sees_a_higher_epoch() -> None:
    """Reference: §5.1 "If a candidate or leader discovers that its term is out of date, it
    immediately reverts to follower state"."""
    env = _replicated_env(())
    env.node(1).step(Envelope(2, 1, BeginQuorumEpochRequest(leader_id=2, leader_epoch=5,
                                                            voter_id=1)))
    env.process(1)
    assert (env.node(1).role, env.node(1).epoch, env.node(1).leader_id) == (
        Role.FOLLOWER, 5, 2)
    with pytest.raises(NotLeaderError):
        env.node(1).propose([b"late"])


# ------------------------------------------------------------------ §5.2 leader election


def test_an_unattached_voter_campaigns_after_a_randomized_election_timeout() -> None:
    """Reference: §5.2 election timeouts "chosen randomly from a fixed interval"; KIP-595
    ``T + rand[0, T)``."""
    timeouts = set()
    for seed in range(40):
        node = RaftNode(RaftConfig(node_id=1, voters=(1, 2, 3)), MemoryRaftStorage(),
                        random.Random(seed))
        ticks = 0
        while node.role is Role.UNATTACHED:
            node.tick()
            ticks += 1
        assert node.role is Role.PROSPECTIVE
        timeouts.add(ticks)
    assert min(timeouts) >= 10 and max(timeouts) <= 19
    assert len(timeouts) >= 5


def test_a_follower_campaigns_when_its_leader_stops_answering_fetches() -> None:
    """Reference: §5.2 "If a follower receives no communication over a period of time ... it
    begins an election"; KIP-595 quorum.fetch.timeout.ms."""
    env = _replicated_env(())
    env.crash(1)
    env.tick(2, 19)
    assert env.node(2).role is Role.FOLLOWER
    env.tick(2, 1)
    assert env.node(2).role is Role.PROSPECTIVE
    assert env.node(2).epoch == 1, "a pre-vote does not bump the epoch (KIP-996)"


def test_a_candidate_wins_with_a_majority_and_announces_itself() -> None:
    """Reference: §5.2 "A candidate wins an election if it receives votes from a majority";
    KIP-595 BeginQuorumEpoch."""
    env = InteractionEnv([1, 2, 3])
    env.node(1).campaign()
    env.process(1)
    env.deliver()  # pre-votes
    env.deliver()  # pre-vote responses -> candidate sends votes
    assert env.node(1).role is Role.CANDIDATE and env.node(1).epoch == 1
    env.deliver(destination=2)
    env.deliver(source=2, destination=1)  # one vote + its own is a majority of 3
    assert env.node(1).role is Role.LEADER
    assert any("BeginQuorumEpoch epoch=1" in line for line in env.deliver(destination=3))


def test_a_voter_grants_at_most_one_vote_per_epoch() -> None:
    """Reference: §5.2 "each server will vote for at most one candidate in a given term, on a
    first-come-first-served basis"."""
    env = InteractionEnv([1, 2, 3])
    node = env.node(3)
    for candidate in (1, 2, 1):
        node.step(Envelope(candidate, 3, VoteRequest(epoch=1, candidate_id=candidate,
                                                     voter_id=3, last_offset_epoch=0,
                                                     last_offset=0)))
    env.process(3)
    grants = [(e.destination, e.message.vote_granted) for e in env.in_flight]
    assert grants == [(1, True), (2, False), (1, True)]
    assert env.replicas[3].storage.quorum_state() == QuorumState(1, -1, 1)


def test_the_vote_is_durable_before_the_response_leaves() -> None:
    """Reference: KIP-595 "persisted before sending the vote"; ready.py step 1 precedes 7."""
    env = InteractionEnv([1, 2, 3])
    node = env.node(2)
    node.step(Envelope(1, 2, VoteRequest(epoch=1, candidate_id=1, voter_id=2,
                                         last_offset_epoch=0, last_offset=0)))
    ready = node.ready()
    assert ready.quorum_state == QuorumState(1, -1, 1)
    assert [type(e.message) for e in ready.messages] == [VoteResponse]


def test_a_vote_survives_a_crash_so_no_second_vote_is_granted() -> None:
    """Scenario Q7: crash after the vote was persisted; the restarted voter refuses others."""
    env = InteractionEnv([1, 2, 3])
    env.node(3).step(Envelope(1, 3, VoteRequest(epoch=1, candidate_id=1, voter_id=3,
                                                last_offset_epoch=0, last_offset=0)))
    env.process(3)
    env.crash(3)
    env.start(3)
    env.node(3).step(Envelope(2, 3, VoteRequest(epoch=1, candidate_id=2, voter_id=3,
                                                last_offset_epoch=0, last_offset=0)))
    env.process(3)
    [reply] = [e.message for e in env.in_flight if e.destination == 2]
    assert not reply.vote_granted


def test_a_candidate_that_hears_of_a_leader_of_its_epoch_follows_it() -> None:
    """Reference: §5.2 "If the AppendEntries RPC is from another server claiming to be
    leader ... term is at least as large ... the candidate ... returns to follower state"."""
    env = InteractionEnv([1, 2, 3])
    env.node(1).campaign()
    env.process(1)
    env.stabilize()  # 1 wins epoch 1 normally; now make 2 a candidate of epoch 2 ...
    env.node(2).step(Envelope(3, 2, VoteRequest(epoch=2, candidate_id=3, voter_id=2,
                                                last_offset_epoch=1, last_offset=1)))
    env.process(2)
    env.in_flight.clear()
    env.node(2).campaign()
    env.process(2)
    assert env.node(2).role in (Role.PROSPECTIVE, Role.CANDIDATE)
    env.node(2).step(Envelope(3, 2, BeginQuorumEpochRequest(leader_id=3, leader_epoch=2,
                                                            voter_id=2)))
    env.process(2)
    assert (env.node(2).role, env.node(2).leader_id, env.node(2).epoch) == (
        Role.FOLLOWER, 3, 2)


def test_a_split_vote_is_retried_after_a_randomized_backoff() -> None:
    """Reference: §5.2 split votes; KIP-595 exponential election backoff."""
    env = InteractionEnv([1, 2, 3, 4], seed=3)
    for candidate in (1, 2):
        env.node(candidate).campaign()
        env.process(candidate)
    env.stabilize()
    roles = _roles(env)
    leaders = [n for n, role in roles.items() if role == "leader"]
    if not leaders:
        for _ in range(60):
            env.tick_all()
            env.stabilize()
            if any(env.node(n).role is Role.LEADER for n in (1, 2, 3, 4)):
                break
    leaders = [n for n in (1, 2, 3, 4) if env.node(n).role is Role.LEADER]
    assert len(leaders) == 1


# ------------------------------------------------------------------ §5.3 log replication


def test_the_leader_commits_once_a_majority_fetched_and_followers_learn_it() -> None:
    """Reference: §5.3 "A log entry is committed once the leader ... has replicated it on a
    majority"; KIP-595 the high watermark travels in Fetch responses."""
    env = _replicated_env(("a", "b"))
    assert [env.node(n).high_watermark for n in (1, 2, 3)] == [3, 3, 3]
    assert env.applied_values(2) == ["a", "b"] == env.applied_values(3)


def test_the_high_watermark_needs_a_majority_not_everyone() -> None:
    env = _replicated_env(())
    env.isolate = None  # noqa: B018 - documentation: node 3 stays silent below
    env.propose(1, "x")
    env.deliver(destination=2)  # the parked Fetch of 2 is answered with x
    env.deliver(destination=1, source=2)  # 2 fetches again at offset 2: majority holds x
    assert env.node(1).high_watermark == 2
    env.deliver(destination=3, drop=True)
    assert env.node(3).high_watermark == 1


def test_a_follower_with_a_divergent_tail_truncates_it_and_catches_up() -> None:
    """Reference: §5.3 "the leader handles inconsistencies by forcing the followers' logs to
    duplicate its own"; KIP-595 DivergingEpoch in the Fetch response."""
    env = _replicated_env(("a",))
    # Leader 1 appends 'lost' that only it holds, then is cut off and a new leader emerges.
    env.propose(1, "lost")
    env.deliver(drop=True)
    env.crash(1)
    env.elect(2)
    env.propose(2, "kept")
    env.stabilize()
    env.start(1)  # 1 restarts as RESIGNED of epoch 1 with the stale tail
    assert "lost" in env.log_text(1)
    for _ in range(30):
        env.tick_all()
        env.stabilize()
        if env.node(1).role is Role.FOLLOWER and env.node(1).high_watermark == env.node(
                2).high_watermark:
            break
    assert env.log_text(1) == env.log_text(2)
    assert "lost" not in env.log_text(1)
    assert env.applied_values(1) == ["a", "kept"]


# ------------------------------------------------------------------ §5.4 safety


@pytest.mark.parametrize(("candidate_last", "granted"), [
    ((1, 3), True),   # same epoch, same end offset
    ((1, 4), True),   # same epoch, longer
    ((2, 1), True),   # newer last epoch wins even if shorter
    ((1, 2), False),  # same epoch, shorter
    ((0, 9), False),  # older last epoch loses even if longer
])
def test_votes_go_only_to_candidates_whose_log_is_at_least_as_up_to_date(
        candidate_last: tuple[int, int], granted: bool) -> None:
    """Reference: §5.4.1 "If the logs have last entries with different terms, then the log
    with the later term is more up-to-date ..."."""
    env = _replicated_env(("a", "b"))  # voter 3's log: epoch 1, end offset 3
    last_epoch, last_offset = candidate_last
    env.node(3).step(Envelope(2, 3, VoteRequest(epoch=5, candidate_id=2, voter_id=3,
                                                last_offset_epoch=last_epoch,
                                                last_offset=last_offset)))
    env.process(3)
    [reply] = [e.message for e in env.in_flight if e.destination == 2
               and isinstance(e.message, VoteResponse)]
    assert reply.vote_granted is granted


def test_a_new_leader_commits_nothing_before_a_record_of_its_own_epoch() -> None:
    """Reference: §5.4.2 "Raft never commits log entries from previous terms by counting
    replicas"; scenario Q10: the LeaderChangeMessage must commit first."""
    env = InteractionEnv([1, 2, 3], fetch_max_bytes=1)
    env.elect(1)
    env.propose(1, "old")
    env.deliver(destination=2)  # 2 gets 'old' (epoch 1) but 1 dies before anyone learns
    env.crash(1)
    env.in_flight.clear()
    env.tick(3, 20)  # 3's fetch timer expires; its own pre-vote is lost
    env.in_flight.clear()
    env.node(2).campaign()
    env.process(2)
    is_vote = lambda e: isinstance(e.message, (VoteRequest, VoteResponse))  # noqa: E731
    for _ in range(4):
        env.deliver(keep=is_vote)
    node = env.node(2)
    assert node.role is Role.LEADER and node.epoch_start_offset == 2
    # 3 fetches 'old' alone (one batch per response) and reports offset 2: a majority holds
    # 'old', yet nothing commits before the epoch-2 LeaderChange at offset 2 is held too.
    for _ in range(4):
        env.deliver()
        if env.node(3).log_end_offset == 2:
            break
    env.deliver(source=3, destination=2)
    assert env.node(3).log_end_offset == 2
    assert node.high_watermark == 1 and not node.is_leader_ready
    env.stabilize()
    assert node.high_watermark == 3 and node.is_leader_ready


def test_the_leader_counts_its_own_records_only_after_they_are_synced() -> None:
    """RAFT_AND_REPLICATION.md §5 rule 3: the leader's end offset counts toward the high
    watermark after the driver confirmed the fsync (advance)."""
    storage = MemoryRaftStorage()
    node = RaftNode(RaftConfig(node_id=1, voters=(1,)), storage, random.Random(0))
    ready = node.ready()
    assert node.role is Role.LEADER and ready.append and ready.must_sync
    assert node.high_watermark == 0
    storage.save_quorum_state(ready.quorum_state)
    storage.append(ready.append)
    storage.sync()
    node.advance(ready)
    assert node.high_watermark == 1
    base_offset, epoch = node.propose([b"x"])
    assert (base_offset, epoch, node.high_watermark) == (1, 1, 1)


# ------------------------------------------------------------------ KIP-595 / KIP-996


def test_a_single_voter_elects_itself_at_start() -> None:
    node = RaftNode(RaftConfig(node_id=7, voters=(7,)), MemoryRaftStorage(), random.Random(0))
    assert (node.role, node.epoch, node.leader_id) == (Role.LEADER, 1, 7)


def test_a_voter_partitioned_away_does_not_inflate_the_epoch_with_pre_vote() -> None:
    """Scenario Q4 (KIP-996): an isolated voter keeps failing pre-votes without bumping its
    epoch, so after healing the leader keeps its epoch."""
    env = _replicated_env(())
    env.run_command("isolate 3")
    for _ in range(100):
        env.tick_all()
        env.stabilize()
    assert env.node(3).epoch == 1
    env.run_command("heal")
    for _ in range(30):
        env.tick_all()
        env.stabilize()
    assert (env.node(1).role, env.node(1).epoch) == (Role.LEADER, 1)
    assert env.node(3).role is Role.FOLLOWER


def test_without_pre_vote_a_rejoining_voter_disrupts_the_leader() -> None:
    """The counterfactual of the test above: the reason KIP-996 exists."""
    env = InteractionEnv([1, 2, 3], pre_vote=False)
    env.elect(1)
    env.run_command("isolate 3")
    for _ in range(100):
        env.tick_all()
        env.stabilize()
    assert env.node(3).epoch > 3
    env.run_command("heal")
    for _ in range(30):
        env.tick_all()
        env.stabilize()
    assert env.node(1).epoch > 1


def test_a_follower_that_fetched_from_its_leader_rejects_pre_votes() -> None:
    env = _replicated_env(())
    env.node(2).step(Envelope(3, 2, VoteRequest(epoch=1, candidate_id=3, voter_id=2,
                                                last_offset_epoch=1, last_offset=5,
                                                pre_vote=True)))
    env.process(2)
    [reply] = [e.message for e in env.in_flight if e.destination == 3
               and isinstance(e.message, VoteResponse)]
    assert (reply.vote_granted, reply.leader_id, reply.pre_vote) == (False, 1, True)


def test_check_quorum_makes_a_cut_off_leader_resign() -> None:
    """Scenario Q3: no Fetch from a majority for 1.5 x fetch timeout -> RESIGNED."""
    env = _replicated_env(())
    env.run_command("isolate 1")
    env.tick(1, 29)
    assert env.node(1).role is Role.LEADER
    env.tick(1, 1)
    assert env.node(1).role is Role.RESIGNED
    with pytest.raises(NotLeaderError):
        env.node(1).propose([b"x"])


def test_a_graceful_resign_lets_the_most_caught_up_voter_win_first() -> None:
    """Scenario Q6: EndQuorumEpoch lists successors by fetch offset; the first campaigns at
    once."""
    env = _replicated_env(("a",))
    env.propose(1, "b")
    env.deliver(destination=2)
    env.deliver(source=2, destination=1)  # 2 is ahead of 3 now
    env.deliver(destination=3, drop=True)
    env.node(1).resign()
    env.process(1)
    lines = env.deliver(source=1)
    assert any("EndQuorumEpoch epoch=1 successors=[2,3]" in line for line in lines)
    env.tick(2)
    assert env.node(2).role in (Role.PROSPECTIVE, Role.CANDIDATE)
    env.stabilize()
    assert env.node(2).role is Role.LEADER and env.node(2).epoch == 2


def test_a_restarted_leader_never_leads_the_same_epoch_again() -> None:
    env = _replicated_env(())
    env.crash(1)
    env.start(1)
    assert (env.node(1).role, env.node(1).epoch) == (Role.RESIGNED, 1)
    env.stabilize()
    for _ in range(40):
        env.tick_all()
        env.stabilize()
    leaders = [n for n in (1, 2, 3) if env.node(n).role is Role.LEADER]
    assert len(leaders) == 1 and env.node(leaders[0]).epoch >= 2


def test_an_observer_finds_the_leader_and_replicates_without_voting() -> None:
    env = InteractionEnv([1, 2, 3], observers=[9])
    env.elect(1)
    env.propose(1, "a")
    for _ in range(3):
        env.tick(9)
        env.stabilize()
    observer = env.node(9)
    assert (observer.role, observer.leader_id, observer.high_watermark) == (Role.FOLLOWER, 1, 2)
    assert env.applied_values(9) == ["a"]
    info = env.node(1).describe_quorum()
    assert [v.replica_id for v in info.voters] == [1, 2, 3]
    assert [o.replica_id for o in info.observers] == [9]
    assert info.high_watermark == 2


def test_a_follower_below_the_log_start_loads_the_snapshot_in_chunks() -> None:
    """Scenario Q9 (KIP-630): the leader answers a Fetch below its log start with SnapshotId;
    the follower downloads it with FetchSnapshot and continues after it."""
    env = InteractionEnv([1, 2, 3], snapshot_chunk_bytes=3)
    env.elect(1)
    env.crash(3)
    env.propose(1, "a", "b")
    env.stabilize()
    env.propose(1, "c")
    env.stabilize()
    snapshot_id = env.take_snapshot(1)
    assert env.node(1).log_start_offset == snapshot_id.end_offset == 4
    env.start(3)
    for _ in range(10):
        env.tick_all()
        lines = env.stabilize()
        if env.node(3).high_watermark == 4:
            break
    node = env.node(3)
    assert (node.log_start_offset, node.log_end_offset, node.high_watermark) == (4, 4, 4)
    assert env.replicas[3].snapshot == snapshot_id
    assert env.replicas[3].storage.snapshot_data(snapshot_id) == b"state@4"
    env.propose(1, "d")
    env.stabilize()
    assert env.applied_values(3) == ["d"]
    del lines


def test_a_fetch_snapshot_for_an_unknown_snapshot_gets_snapshot_not_found() -> None:
    from streambus.raft.messages import FetchSnapshotRequest, FetchSnapshotResponse, SnapshotId

    env = _replicated_env(("a",))
    env.node(1).step(Envelope(2, 1, FetchSnapshotRequest(2, 1, SnapshotId(9, 1), 0, 100)))
    env.process(1)
    [reply] = [e.message for e in env.in_flight if isinstance(e.message, FetchSnapshotResponse)]
    assert reply.error_code == ErrorCode.SNAPSHOT_NOT_FOUND


def test_fetch_validation_errors() -> None:
    """KIP-595 Fetch rules 1 and 2: invalid fields, fenced and unknown epochs, non-leaders."""
    from streambus.raft.messages import FetchRequest

    env = _replicated_env(())
    cases = [
        (1, FetchRequest(2, 1, -1, 0, 5, 100), ErrorCode.INVALID_REQUEST),
        (1, FetchRequest(2, 1, 0, 2, 5, 100), ErrorCode.INVALID_REQUEST),
        (1, FetchRequest(2, 0, 0, 0, 5, 100), ErrorCode.FENCED_LEADER_EPOCH),
        (1, FetchRequest(2, 2, 0, 0, 5, 100), ErrorCode.UNKNOWN_LEADER_EPOCH),
        (3, FetchRequest(2, 1, 0, 0, 5, 100), ErrorCode.NOT_LEADER_OR_FOLLOWER),
    ]
    for destination, request, error in cases:
        env.in_flight.clear()
        env.node(destination).step(Envelope(2, destination, request))
        env.process(destination)
        [reply] = [e.message for e in env.in_flight if isinstance(e.message, FetchResponse)]
        assert reply.error_code == error, (request, reply)


def test_a_fetch_from_a_diverged_log_gets_the_diverging_epoch() -> None:
    from streambus.raft.messages import FetchRequest, OffsetAndEpoch

    env = _replicated_env(("a", "b"))  # leader log: LeaderChange@0 epoch 1, a,b@1-2
    env.in_flight.clear()
    env.node(1).step(Envelope(2, 1, FetchRequest(2, 1, 9, 1, 5, 100)))
    env.process(1)
    [reply] = [e.message for e in env.in_flight if isinstance(e.message, FetchResponse)]
    assert reply.diverging_epoch == OffsetAndEpoch(1, 3) and not reply.batches
