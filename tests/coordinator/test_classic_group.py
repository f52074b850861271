"""Classic groups: every state transition and the errors Kafka returns on the way.

Goal: drive one pure shard through Empty -> PreparingRebalance -> CompletingRebalance ->
Stable and back, with joins, syncs, heartbeats, leaves and timeouts, and check the responses
exactly as Kafka's GroupMetadataManager produces them.  Method: ``Harness`` applies results as
the runtime would and steps a manual clock through timer deadlines; no sleeps, no asyncio.
"""

from __future__ import annotations

import pytest

from grouptest_support import REBALANCE_TIMEOUT_MS, SESSION_TIMEOUT_MS, Harness, subscription
from streambus.coordinator.group.config import GroupConfig
from streambus.coordinator.group.state import ClassicGroupState as S
from streambus.protocol.coordinator_records import GroupMetadataKey
from streambus.protocol.error_codes import ErrorCode as E
from streambus.protocol.messages.heartbeat import HeartbeatRequest
from streambus.protocol.messages.join_group import JoinGroupResponse
from streambus.protocol.messages.leave_group import LeaveGroupRequest
from streambus.protocol.messages.sync_group import SyncGroupResponse

DELAY_MS = 100  # the harness's group.initial.rebalance.delay.ms
#: Members joining together: the first delay, plus one extension because others arrived.
SETTLE_MS = 2 * DELAY_MS


def heartbeat(h: Harness, member_id: str, generation_id: int, instance_id: str | None = None):
    return h.apply(h.shard.heartbeat(HeartbeatRequest(
        group_id="g", generation_id=generation_id, member_id=member_id,
        group_instance_id=instance_id), now_ms=h.now_ms)).error_code


def leave(h: Harness, *identities: tuple[str, str | None]):
    return h.apply(h.shard.leave_group("g", [
        LeaveGroupRequest.MemberIdentity(member_id=m, group_instance_id=i) for m, i in identities],
        now_ms=h.now_ms))


def stable_group(h: Harness, count: int) -> list[str]:
    """``count`` members joined in one generation, leader synced; returns member ids (leader first)."""
    joined = [h.join_new_member() for _ in range(count)]
    h.advance(SETTLE_MS)
    ids = [member_id for member_id, _ in joined]
    responses = [h.response(token) for _, token in joined]
    assert all(r.error_code == 0 and r.generation_id == 1 for r in responses)
    leader = responses[0].leader
    followers = [m for m in ids if m != leader]
    tokens = [h.sync(m, 1) for m in followers]
    h.sync(leader, 1, {m: f"assignment-{m}".encode() for m in ids})
    assert all(h.response(t).assignment == f"assignment-{m}".encode()
               for t, m in zip(tokens, followers))
    assert h.group().state is S.STABLE
    return [leader, *followers]


# -- JoinGroup ----------------------------------------------------------------------------------


def test_first_join_v4_plus_gets_member_id_required_and_persists_the_new_group() -> None:
    h = Harness()
    token = h.join("", version=4, client_id="client")
    assert h.response(token) == JoinGroupResponse(error_code=E.MEMBER_ID_REQUIRED,
                                                  member_id="client-1", protocol_name=None)
    group = h.group()
    assert group.state is S.EMPTY and group.pending_join_members == {"client-1"}
    assert [type(rec.key) for rec in h.log] == [GroupMetadataKey]
    assert h.log[0].value.members == [] and h.log[0].value.generation == 0


def test_join_v3_without_member_id_is_added_directly() -> None:
    h = Harness()
    token = h.join("", version=3)
    assert h.response(token) is None  # parked: the initial rebalance is delayed
    assert list(h.group().members) == ["c-1"]
    assert h.group().state is S.PREPARING_REBALANCE
    h.advance(DELAY_MS)
    response = h.response(token)
    assert (response.error_code, response.member_id, response.leader, response.generation_id) == (
        0, "c-1", "c-1", 1)


def test_pending_member_that_never_rejoins_is_forgotten_after_its_session_timeout() -> None:
    h = Harness()
    member_id = h.response(h.join("")).member_id
    h.advance(SESSION_TIMEOUT_MS)
    assert h.group().pending_join_members == set()
    assert h.response(h.join(member_id)).error_code == E.UNKNOWN_MEMBER_ID


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"group": ""}, E.INVALID_GROUP_ID),
    ({"session_timeout_ms": 5999}, E.INVALID_SESSION_TIMEOUT),
    ({"session_timeout_ms": 1800001}, E.INVALID_SESSION_TIMEOUT),
])
def test_join_rejects_invalid_group_ids_and_session_timeouts(kwargs, error) -> None:
    h = Harness()
    response = h.response(h.join("", **kwargs))
    assert response.error_code == error and h.log == []


def test_known_member_id_on_an_unknown_group_is_unknown_member() -> None:
    h = Harness()
    response = h.response(h.join("ghost-7"))
    assert (response.error_code, response.member_id) == (E.UNKNOWN_MEMBER_ID, "ghost-7")
    assert h.group() is None


def test_join_phase_elects_the_first_member_leader_and_only_it_gets_the_member_list() -> None:
    h = Harness()
    (m1, t1), (m2, t2) = h.join_new_member(), h.join_new_member()
    h.advance(SETTLE_MS)
    leader, follower = h.response(t1), h.response(t2)
    assert h.group().state is S.COMPLETING_REBALANCE
    assert leader.leader == follower.leader == m1
    assert [m.member_id for m in leader.members] == [m1, m2]
    assert leader.members[0].metadata == subscription("t")
    assert follower.members == []
    assert leader.protocol_type == "consumer" and leader.protocol_name == "range"


def test_protocol_is_chosen_by_vote_among_protocols_every_member_supports() -> None:
    h = Harness()
    a, b, c = subscription("t"), subscription("t"), subscription("t")
    (_, t1) = h.join_new_member(protocols=[("roundrobin", a), ("range", a), ("sticky", a)])
    (_, t2) = h.join_new_member(protocols=[("range", b), ("roundrobin", b)])
    (_, t3) = h.join_new_member(protocols=[("range", c), ("roundrobin", c)])
    h.advance(SETTLE_MS)
    assert {h.response(t).protocol_name for t in (t1, t2, t3)} == {"range"}


def test_a_member_without_a_common_protocol_or_type_is_inconsistent() -> None:
    h = Harness()
    h.join_new_member(protocols=[("range", b"x")])
    assert h.response(h.join("", protocols=[("roundrobin", b"y")])).error_code == (
        E.INCONSISTENT_GROUP_PROTOCOL)
    assert h.response(h.join("", protocol_type="connect")).error_code == (
        E.INCONSISTENT_GROUP_PROTOCOL)
    assert h.response(h.join("", protocols=[])).error_code == E.INCONSISTENT_GROUP_PROTOCOL


def test_initial_rebalance_delay_is_extended_by_each_new_member() -> None:
    h = Harness()
    _, t1 = h.join_new_member()
    h.advance(DELAY_MS - 10)
    _, t2 = h.join_new_member()  # arrives inside the first delay: one more delay
    h.advance(20)
    assert h.response(t1) is None and h.group().state is S.PREPARING_REBALANCE
    h.advance(DELAY_MS)
    assert h.response(t1).generation_id == h.response(t2).generation_id == 1


def test_default_initial_rebalance_delay_is_kafkas_three_seconds() -> None:
    h = Harness(config=GroupConfig())
    _, token = h.join_new_member()
    h.advance(2999)
    assert h.response(token) is None
    h.advance(1)
    assert h.response(token).error_code == 0


def test_completing_rebalance_rejoin_with_same_metadata_repeats_the_generation() -> None:
    h = Harness()
    (m1, _), (m2, _) = h.join_new_member(), h.join_new_member()
    h.advance(SETTLE_MS)
    again = h.response(h.join(m1))
    assert (again.generation_id, again.leader, len(again.members)) == (1, m1, 2)
    assert h.group().state is S.COMPLETING_REBALANCE


# -- SyncGroup ----------------------------------------------------------------------------------


def test_leader_sync_persists_assignments_and_answers_every_parked_follower() -> None:
    h = Harness()
    (m1, _), (m2, _), (m3, _) = h.join_new_member(), h.join_new_member(), h.join_new_member()
    h.advance(SETTLE_MS)
    t2, t3 = h.sync(m2, 1), h.sync(m3, 1)
    assert h.response(t2) is None and h.response(t3) is None
    records_before = len(h.log)
    t1 = h.sync(m1, 1, {m1: b"a1", m2: b"a2"})  # m3 gets an empty assignment
    assert h.group().state is S.STABLE
    assert [h.response(t).assignment for t in (t1, t2, t3)] == [b"a1", b"a2", b""]
    assert h.response(t2) == SyncGroupResponse(protocol_type="consumer", protocol_name="range",
                                               assignment=b"a2")
    [record] = h.log[records_before:]
    assert record.value.generation == 1 and record.value.leader == m1
    assert [(m.member_id, m.assignment) for m in record.value.members] == [
        (m1, b"a1"), (m2, b"a2"), (m3, b"")]


def test_sync_in_stable_returns_the_stored_assignment() -> None:
    h = Harness()
    leader, follower = stable_group(h, 2)
    response = h.response(h.sync(follower, 1))
    assert response.error_code == 0 and response.assignment == f"assignment-{follower}".encode()


@pytest.mark.parametrize(("case", "error"), [
    ("unknown member", E.UNKNOWN_MEMBER_ID),
    ("old generation", E.ILLEGAL_GENERATION),
    ("other protocol", E.INCONSISTENT_GROUP_PROTOCOL),
    ("unknown group", E.UNKNOWN_MEMBER_ID),
    ("empty group id", E.INVALID_GROUP_ID),
])
def test_sync_errors(case: str, error: E) -> None:
    h = Harness()
    leader, _ = stable_group(h, 2)
    token = {
        "unknown member": lambda: h.sync("nobody", 1),
        "old generation": lambda: h.sync(leader, 0),
        "other protocol": lambda: h.sync(leader, 1, protocol_name="roundrobin"),
        "unknown group": lambda: h.sync(leader, 1, group="other"),
        "empty group id": lambda: h.sync(leader, 1, group=""),
    }[case]()
    assert h.response(token).error_code == error


def test_sync_while_preparing_rebalance_is_rebalance_in_progress() -> None:
    h = Harness()
    leader, follower = stable_group(h, 2)
    h.join_new_member()  # a third member: Stable -> PreparingRebalance
    assert h.group().state is S.PREPARING_REBALANCE
    assert h.response(h.sync(follower, 1)).error_code == E.REBALANCE_IN_PROGRESS


def test_new_member_during_completing_rebalance_sends_parked_syncs_back_to_rejoin() -> None:
    h = Harness()
    (m1, _), (m2, _) = h.join_new_member(), h.join_new_member()
    h.advance(SETTLE_MS)
    parked = h.sync(m2, 1)
    h.join_new_member()
    assert h.group().state is S.PREPARING_REBALANCE
    assert h.response(parked) == SyncGroupResponse(error_code=E.REBALANCE_IN_PROGRESS)


# -- Heartbeat ----------------------------------------------------------------------------------


def test_heartbeat_errors_and_rebalance_signal() -> None:
    h = Harness()
    leader, follower = stable_group(h, 2)
    assert heartbeat(h, follower, 1) == E.NONE
    assert heartbeat(h, follower, 0) == E.ILLEGAL_GENERATION
    assert heartbeat(h, "nobody", 1) == E.UNKNOWN_MEMBER_ID
    h.join_new_member()
    assert heartbeat(h, follower, 1) == E.REBALANCE_IN_PROGRESS


def test_heartbeats_keep_a_member_alive_and_silence_expires_it() -> None:
    h = Harness()
    leader, follower = stable_group(h, 2)
    for _ in range(3):
        h.advance(SESSION_TIMEOUT_MS - 1000)
        assert heartbeat(h, leader, 1) == heartbeat(h, follower, 1) == E.NONE
    h.advance(SESSION_TIMEOUT_MS - 1000)
    assert heartbeat(h, leader, 1) == E.NONE
    h.advance(1000)  # the follower's session ends
    assert follower not in h.group().members
    assert h.group().state is S.PREPARING_REBALANCE
    token = h.join(leader)  # the survivor rejoins and the join phase completes at once
    assert h.response(token).generation_id == 2 and h.response(token).members[0].member_id == leader


# -- LeaveGroup and rebalances ------------------------------------------------------------------


def test_leave_moves_stable_to_preparing_and_the_rest_form_the_next_generation() -> None:
    h = Harness()
    leader, f1, f2 = stable_group(h, 3)
    response = leave(h, (f1, None))
    assert response.members[0].error_code == 0 and h.group().state is S.PREPARING_REBALANCE
    t_leader, t_f2 = h.join(leader), h.join(f2)
    assert h.group().state is S.COMPLETING_REBALANCE
    assert h.response(t_leader).generation_id == h.response(t_f2).generation_id == 2
    assert {m.member_id for m in h.response(t_leader).members} == {leader, f2}


def test_rebalance_timeout_evicts_members_that_do_not_rejoin() -> None:
    h = Harness()
    leader, f1, f2 = stable_group(h, 3)
    token = h.join(leader, protocols=[("range", subscription("t", "u"))])  # leader forces it
    assert h.group().state is S.PREPARING_REBALANCE
    h.join(f1)
    for _ in range(REBALANCE_TIMEOUT_MS // (SESSION_TIMEOUT_MS // 2)):  # f2 stays alive...
        assert heartbeat(h, f2, 1) == E.REBALANCE_IN_PROGRESS
        h.advance(SESSION_TIMEOUT_MS // 2)
    # ...but never rejoins, so the join phase ends without it.
    assert h.response(token).generation_id == 2
    assert set(h.group().members) == {leader, f1}


def test_member_that_never_syncs_is_removed_after_the_rebalance_timeout() -> None:
    h = Harness()
    (m1, _), (m2, _) = h.join_new_member(), h.join_new_member()
    h.advance(SETTLE_MS)
    h.sync(m1, 1, {m1: b"a", m2: b"b"})
    assert h.group().state is S.STABLE and h.group().pending_sync_members == {m2}
    for _ in range(REBALANCE_TIMEOUT_MS // (SESSION_TIMEOUT_MS // 2)):
        heartbeat(h, m1, 1)
        heartbeat(h, m2, 1)
        h.advance(SESSION_TIMEOUT_MS // 2)
    assert m2 not in h.group().members and h.group().state is S.PREPARING_REBALANCE


def test_everyone_leaving_during_a_rebalance_ends_in_empty_with_a_record() -> None:
    h = Harness()
    leader, follower = stable_group(h, 2)
    leave(h, (follower, None))
    leave(h, (leader, None))
    # The last leave completes the join phase with nobody: Empty, generation 2, persisted.
    assert h.group().state is S.EMPTY and h.group().generation_id == 2
    assert h.log[-1].value.members == [] and h.log[-1].value.generation == 2


def test_leave_errors_pending_members_and_v0_style_unknown_member() -> None:
    h = Harness()
    leader, follower = stable_group(h, 2)
    pending = h.response(h.join("")).member_id
    response = leave(h, ("nobody", None), (pending, None))
    assert [m.error_code for m in response.members] == [E.UNKNOWN_MEMBER_ID, E.NONE]
    # Kafka counts the pending member as a valid leave, so a Stable group rebalances.
    assert h.group().state is S.PREPARING_REBALANCE
    unknown_group = h.apply(h.shard.leave_group("nope", [], now_ms=h.now_ms))
    assert unknown_group.error_code == E.UNKNOWN_MEMBER_ID


def test_leader_rejoin_in_stable_forces_a_rebalance_but_a_follower_does_not() -> None:
    h = Harness()
    leader, follower = stable_group(h, 2)
    same = h.response(h.join(follower))
    assert (same.generation_id, same.members) == (1, []) and h.group().state is S.STABLE
    h.join(leader)
    assert h.group().state is S.PREPARING_REBALANCE


# -- static membership (KIP-345) ------------------------------------------------------------------


def static_group(h: Harness) -> tuple[str, str]:
    t1 = h.join("", instance_id="i1", version=9, client_id="a")
    t2 = h.join("", instance_id="i2", version=9, client_id="b")
    h.advance(SETTLE_MS)
    m1, m2 = h.response(t1).member_id, h.response(t2).member_id
    h.sync(m2, 1, instance_id="i2")
    h.sync(m1, 1, {m1: b"a1", m2: b"a2"}, instance_id="i1")
    return m1, m2


def test_static_members_join_without_member_id_required() -> None:
    h = Harness()
    m1, m2 = static_group(h)
    assert m1.startswith("i1-") and m2.startswith("i2-")
    assert h.group().static_members == {"i1": m1, "i2": m2}


def test_static_member_restart_keeps_generation_and_assignment_without_rebalance() -> None:
    h = Harness()
    m1, m2 = static_group(h)
    token = h.join("", instance_id="i2", version=5)
    response = h.response(token)
    new_id = response.member_id
    assert new_id != m2 and response.error_code == 0 and response.generation_id == 1
    assert response.leader == m1 and response.members == []
    assert h.group().state is S.STABLE
    assert h.log[-1].value.members[1].member_id == new_id  # the new id is persisted
    assert h.response(h.sync(new_id, 1, instance_id="i2")).assignment == b"a2"
    assert heartbeat(h, m2, 1, instance_id="i2") == E.FENCED_INSTANCE_ID
    assert heartbeat(h, m1, 1, instance_id="i1") == E.NONE


def test_static_leader_restart_on_v9_is_told_to_skip_the_assignment() -> None:
    h = Harness()
    m1, m2 = static_group(h)
    response = h.response(h.join("", instance_id="i1", version=9))
    assert response.skip_assignment is True and response.leader == response.member_id
    assert {m.member_id for m in response.members} == {response.member_id, m2}


def test_static_leader_restart_before_v9_is_not_told_it_leads() -> None:
    h = Harness()
    m1, _ = static_group(h)
    response = h.response(h.join("", instance_id="i1", version=8))
    assert response.skip_assignment is False and response.leader == m1 != response.member_id


def test_static_member_restart_while_completing_rebalance_triggers_a_rebalance() -> None:
    h = Harness()
    t1 = h.join("", instance_id="i1")
    t2 = h.join("", instance_id="i2")
    h.advance(SETTLE_MS)
    old = h.response(t2).member_id
    parked_old_sync = h.sync(old, 1, instance_id="i2")
    h.join("", instance_id="i2")
    assert h.response(parked_old_sync).error_code == E.FENCED_INSTANCE_ID
    assert h.group().state is S.PREPARING_REBALANCE


def test_admin_removes_a_static_member_by_instance_id() -> None:
    h = Harness()
    m1, m2 = static_group(h)
    response = leave(h, ("", "i2"), ("", "unknown"))
    assert [m.error_code for m in response.members] == [E.NONE, E.UNKNOWN_MEMBER_ID]
    assert m2 not in h.group().members and "i2" not in h.group().static_members


# -- unload -------------------------------------------------------------------------------------


def test_unload_answers_parked_joins_with_not_coordinator() -> None:
    h = Harness()
    _, token = h.join_new_member()
    [completion] = h.shard.on_unloaded()
    assert completion.token == token and completion.response.error_code == E.NOT_COORDINATOR
