"""KIP-848 consumer groups: heartbeat validation, server-side assignment, revoke-before-assign
reconciliation, leaving and fencing, replay, and the two assignors.

Goal: a partition is never owned by two members, members converge on the target assignment,
and errors are Kafka's.  Method: drive ConsumerGroupHeartbeat through ``Harness`` as a client
would (acknowledging revocations by reporting its owned partitions) and check the invariant
after every step.
"""

from __future__ import annotations

import uuid

import pytest

from grouptest_support import FakeTopics, Harness
from streambus.coordinator.group.assignors import range_assign, uniform_assign
from streambus.coordinator.group.config import GroupConfig
from streambus.coordinator.group.coordinator import GroupCoordinatorShard
from streambus.coordinator.group.state import ConsumerGroupState, MemberState
from streambus.protocol.error_codes import ErrorCode as E
from streambus.protocol.messages.consumer_group_heartbeat import ConsumerGroupHeartbeatRequest

TopicPartitions = ConsumerGroupHeartbeatRequest.TopicPartitions


def topic_id(name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_OID, name)


class Member:
    """A KIP-848 client: remembers its epoch and what it owns, acknowledges revocations."""

    def __init__(self, h: Harness, member_id: str, topics=("t",), assignor: str | None = None) -> None:
        self.h, self.member_id, self.topics, self.assignor = h, member_id, list(topics), assignor
        self.epoch = 0
        self.owned: dict[uuid.UUID, set[int]] = {}

    def heartbeat(self, *, full: bool = False, version: int = 1, **overrides):
        joining = self.epoch == 0
        request = ConsumerGroupHeartbeatRequest(
            group_id="g", member_id=self.member_id, member_epoch=self.epoch,
            rebalance_timeout_ms=30_000 if joining or full else -1,
            subscribed_topic_names=self.topics if joining or full else None,
            server_assignor=self.assignor,
            topic_partitions=[TopicPartitions(topic_id=t, partitions=sorted(p))
                              for t, p in self.owned.items()] if not joining else [])
        for name, value in overrides.items():
            setattr(request, name, value)
        response = self.h.apply(self.h.shard.consumer_group_heartbeat(
            request, api_version=version, client_id=self.member_id, client_host="/h",
            now_ms=self.h.now_ms))
        if response.error_code == 0:
            self.epoch = response.member_epoch
            if response.assignment is not None:
                # A real client revokes first, then reports; here that is immediate.
                self.owned = {tp.topic_id: set(tp.partitions)
                              for tp in response.assignment.topic_partitions}
        return response

    def partitions(self) -> set[int]:
        return set().union(*self.owned.values()) if self.owned else set()


def assert_no_partition_owned_twice(h: Harness) -> None:
    group = h.group()
    seen: dict[tuple, str] = {}
    for member in group.members.values():
        for t, ps in list(member.assigned.items()) + list(member.pending_revocation.items()):
            for p in ps:
                assert (t, p) not in seen, f"{(t, p)} owned by {seen[(t, p)]} and {member.member_id}"
                seen[(t, p)] = member.member_id


def converge(h: Harness, members: list[Member], rounds: int = 10) -> None:
    for _ in range(rounds):
        for member in members:
            assert member.heartbeat().error_code == 0
            assert_no_partition_owned_twice(h)
        if h.group().state is ConsumerGroupState.STABLE:
            return
    raise AssertionError(f"group did not converge: {h.group().state}")


def test_first_member_gets_every_partition_at_epoch_one() -> None:
    h = Harness()
    a = Member(h, "a")
    response = a.heartbeat()
    assert (response.error_code, response.member_id, response.member_epoch) == (0, "a", 1)
    assert response.heartbeat_interval_ms == 5000
    assert a.owned == {topic_id("t"): {0, 1, 2, 3}}
    assert h.group().state is ConsumerGroupState.STABLE


def test_v0_member_gets_a_member_id_from_the_coordinator() -> None:
    h = Harness()
    response = Member(h, "").heartbeat(version=0)
    assert response.error_code == 0 and response.member_id


def test_second_member_waits_for_revocation_before_getting_partitions() -> None:
    h = Harness()
    a, b = Member(h, "a"), Member(h, "b")
    a.heartbeat()
    b.heartbeat()  # target: two each; all four still belong to a
    assert b.partitions() == set() and h.group().members["b"].state is MemberState.UNRELEASED_PARTITIONS
    response = a.heartbeat()  # a learns it must give two up
    assert h.group().members["a"].state is MemberState.UNREVOKED_PARTITIONS
    assert response.member_epoch == 1 and len(a.partitions()) == 2
    a.heartbeat()  # a reports it revoked them: moves to the new epoch
    assert h.group().members["a"].member_epoch == 2
    b.heartbeat()  # now free: b gets them
    assert a.partitions() | b.partitions() == {0, 1, 2, 3}
    assert not a.partitions() & b.partitions()
    assert h.group().state is ConsumerGroupState.STABLE
    assert_no_partition_owned_twice(h)


def test_three_members_converge_balanced_with_range_and_uniform() -> None:
    for assignor in ("uniform", "range"):
        h = Harness(topics=FakeTopics({"t": 6}))
        members = [Member(h, m, assignor=assignor) for m in ("a", "b", "c")]
        converge(h, members)
        assert sorted(len(m.partitions()) for m in members) == [2, 2, 2]
        if assignor == "range":
            assert [sorted(m.partitions()) for m in members] == [[0, 1], [2, 3], [4, 5]]


def test_leaving_member_releases_its_partitions_to_the_others() -> None:
    h = Harness()
    a, b = Member(h, "a"), Member(h, "b")
    converge(h, [a, b])
    epoch = h.group().group_epoch
    response = b.heartbeat(member_epoch=-1)
    assert (response.error_code, response.member_epoch) == (0, -1)
    assert h.group().group_epoch == epoch + 1 and "b" not in h.group().members
    converge(h, [a])
    assert a.partitions() == {0, 1, 2, 3}


def test_session_timeout_fences_a_silent_member() -> None:
    h = Harness()
    a, b = Member(h, "a"), Member(h, "b")
    converge(h, [a, b])
    for _ in range(4):
        h.advance(40_000)
        a.heartbeat()
    assert "b" not in h.group().members
    converge(h, [a])
    assert a.partitions() == {0, 1, 2, 3}


def test_member_that_never_revokes_is_fenced_after_its_rebalance_timeout() -> None:
    h = Harness()
    a = Member(h, "a")
    a.heartbeat()
    Member(h, "b").heartbeat()
    a.heartbeat(topic_partitions=None)  # told to revoke, never confirms
    assert h.group().members["a"].state is MemberState.UNREVOKED_PARTITIONS
    h.advance(30_000)
    assert "a" not in h.group().members


@pytest.mark.parametrize(("overrides", "error", "message"), [
    ({"group_id": ""}, E.INVALID_REQUEST, "GroupId can't be empty."),
    ({"rebalance_timeout_ms": -1}, E.INVALID_REQUEST,
     "RebalanceTimeoutMs must be provided in first request."),
    ({"topic_partitions": None}, E.INVALID_REQUEST, "TopicPartitions must be empty when (re-)joining."),
    ({"subscribed_topic_names": []}, E.INVALID_REQUEST,
     "SubscribedTopicNames or SubscribedTopicRegex must be set in first request."),
    ({"member_id": ""}, E.INVALID_REQUEST, "MemberId can't be empty."),
    ({"member_epoch": -3}, E.INVALID_REQUEST, "MemberEpoch is invalid."),
    ({"server_assignor": "sticky"}, E.UNSUPPORTED_ASSIGNOR, None),
    ({"subscribed_topic_regex": "(unclosed"}, E.INVALID_REGULAR_EXPRESSION, None),
])
def test_invalid_heartbeats(overrides, error, message) -> None:
    h = Harness()
    response = Member(h, "a").heartbeat(**overrides)
    assert response.error_code == error
    if message is not None:
        assert response.error_message == message
    assert h.log == []


def test_epoch_and_membership_errors() -> None:
    h = Harness()
    a = Member(h, "a")
    a.heartbeat()
    assert a.heartbeat(member_epoch=5).error_code == E.FENCED_MEMBER_EPOCH
    assert Member(h, "ghost").heartbeat(member_epoch=3).error_code == E.UNKNOWN_MEMBER_ID
    h2 = Harness()
    assert Member(h2, "x").heartbeat(member_epoch=2).error_code == E.GROUP_ID_NOT_FOUND


def test_regex_subscription_follows_matching_topics() -> None:
    h = Harness(topics=FakeTopics({"orders-a": 2, "orders-b": 1, "other": 3}))
    a = Member(h, "a", topics=())
    a.heartbeat(subscribed_topic_names=None, subscribed_topic_regex="orders-.*")
    assert a.owned == {topic_id("orders-a"): {0, 1}, topic_id("orders-b"): {0}}


def test_classic_join_to_a_consumer_group_is_inconsistent_and_an_empty_one_converts() -> None:
    h = Harness()
    a = Member(h, "a")
    a.heartbeat()
    assert h.response(h.join("")).error_code == E.INCONSISTENT_GROUP_PROTOCOL
    a.heartbeat(member_epoch=-1)
    assert h.response(h.join("", version=3)) is None  # parked: a classic rebalance began
    assert h.group().type_name == "classic"


def test_replay_rebuilds_the_consumer_group() -> None:
    h = Harness(topics=FakeTopics({"t": 6}))
    members = [Member(h, m) for m in ("a", "b", "c")]
    converge(h, members)
    members[2].heartbeat(member_epoch=-1)
    converge(h, members[:2])
    fresh = GroupCoordinatorShard(GroupConfig(), h.topics)
    for record in h.log:
        fresh.replay(record)
    live, loaded = h.group(), fresh.groups["g"]
    assert (loaded.group_epoch, loaded.assignment_epoch, loaded.subscription_metadata) == (
        live.group_epoch, live.assignment_epoch, live.subscription_metadata)
    assert loaded.target == live.target and loaded.partition_owner == live.partition_owner
    assert {m: (x.member_epoch, x.state, x.assigned, x.subscribed_topic_names)
            for m, x in loaded.members.items()} == {
        m: (x.member_epoch, x.state, x.assigned, x.subscribed_topic_names)
        for m, x in live.members.items()}


def test_describe_and_list_report_consumer_groups() -> None:
    h = Harness()
    a = Member(h, "a")
    a.heartbeat()
    [described] = h.shard.consumer_group_describe(["g"])
    assert (described.group_state, described.group_epoch, described.assignor_name) == (
        "Stable", 1, "uniform")
    [member] = described.members
    assert member.assignment.topic_partitions[0].topic_name == "t"
    assert member.assignment.topic_partitions[0].partitions == [0, 1, 2, 3]
    [listed] = h.shard.list_groups(types_filter=["consumer"])
    assert (listed.group_type, listed.protocol_type, listed.group_state) == (
        "consumer", "consumer", "Stable")
    [missing] = h.shard.consumer_group_describe(["nope"])
    assert missing.error_code == E.GROUP_ID_NOT_FOUND


# -- assignors ------------------------------------------------------------------------------------

T1, T2 = uuid.UUID(int=1), uuid.UUID(int=2)
TOPICS = {T1: ("a", 5), T2: ("b", 3)}


def flat(assignment) -> dict[str, list]:
    return {m: sorted((str(t)[-1], p) for t, ps in a.items() for p in ps)
            for m, a in assignment.items()}


def test_range_gives_contiguous_ranges_per_topic() -> None:
    result = range_assign({"m1": frozenset({T1, T2}), "m2": frozenset({T1, T2})}, TOPICS)
    assert result == {"m1": {T1: {0, 1, 2}, T2: {0, 1}}, "m2": {T1: {3, 4}, T2: {2}}}


def test_uniform_is_balanced_and_deterministic() -> None:
    members = {m: frozenset({T1, T2}) for m in ("m1", "m2", "m3")}
    first = uniform_assign(members, TOPICS)
    assert first == uniform_assign(members, TOPICS)
    sizes = sorted(sum(len(p) for p in a.values()) for a in first.values())
    assert sizes == [2, 3, 3]
    every = sorted((t, p) for a in first.values() for t, ps in a.items() for p in ps)
    assert every == [(T1, p) for p in range(5)] + [(T2, p) for p in range(3)]


def test_uniform_is_sticky_when_a_member_joins() -> None:
    before = uniform_assign({m: frozenset({T1, T2}) for m in ("m1", "m2")}, TOPICS)
    after = uniform_assign({m: frozenset({T1, T2}) for m in ("m1", "m2", "m3")}, TOPICS, before)
    moved = sum(len(ps - after[m].get(t, set())) for m in ("m1", "m2") for t, ps in before[m].items())
    assert moved == 2  # only what m3 needs for balance
    assert sorted(sum(len(p) for p in a.values()) for a in after.values()) == [2, 3, 3]


def test_uniform_respects_heterogeneous_subscriptions() -> None:
    result = uniform_assign({"m1": frozenset({T1}), "m2": frozenset({T1, T2})}, TOPICS)
    assert T2 not in result["m1"] and result["m2"][T2] == {0, 1, 2}
    assert len(result["m1"][T1]) + len(result["m2"].get(T1, ())) == 5
