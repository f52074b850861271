"""Offsets and admin operations: OffsetCommit/Fetch/Delete, expiry, List/Describe/DeleteGroups,
and replay rebuilding the same state from the records.

Method: the pure shard through ``Harness``; offsets only change when the records are replayed,
as in the runtime, so every assertion on a fetch also checks the replay path.
"""

from __future__ import annotations

import dataclasses

import pytest

from grouptest_support import SESSION_TIMEOUT_MS, Harness, subscription
from streambus.coordinator.group.config import GroupConfig
from streambus.coordinator.group.coordinator import GroupCoordinatorShard
from streambus.coordinator.group.offsets import FetchedOffset
from streambus.coordinator.group.state import ClassicGroupState as S
from streambus.protocol.error_codes import ErrorCode as E
from streambus.protocol.messages.offset_commit import OffsetCommitRequest
from streambus.protocol.messages.offset_delete import OffsetDeleteRequest

SETTLE_MS = 200


def commit(h: Harness, offsets: dict[tuple[str, int], int], *, group: str = "g",
           member_id: str = "", generation: int = -1, version: int = 8, metadata: str = "",
           retention_ms: int = -1) -> dict[tuple[str, int], int]:
    topics: dict[str, list] = {}
    for (topic, partition), offset in offsets.items():
        topics.setdefault(topic, []).append(OffsetCommitRequest.OffsetCommitRequestPartition(
            partition_index=partition, committed_offset=offset, committed_metadata=metadata))
    request = OffsetCommitRequest(
        group_id=group, generation_id_or_member_epoch=generation, member_id=member_id,
        retention_time_ms=retention_ms,
        topics=[OffsetCommitRequest.OffsetCommitRequestTopic(name=t, partitions=p)
                for t, p in topics.items()])
    response = h.apply(h.shard.offset_commit(request, api_version=version, now_ms=h.now_ms))
    return {(t.name, p.partition_index): p.error_code for t in response.topics for p in t.partitions}


def fetch(h: Harness, group: str = "g", topics=None):
    return h.shard.offset_fetch(group, topics)


def stable_pair(h: Harness) -> tuple[str, str]:
    (m1, _), (m2, _) = h.join_new_member(), h.join_new_member()
    h.advance(SETTLE_MS)
    h.sync(m2, 1)
    h.sync(m1, 1, {m1: b"a", m2: b"b"})
    return m1, m2


def test_member_commits_and_fetch_reads_them_back_missing_partitions_as_minus_one() -> None:
    h = Harness()
    m1, _ = stable_pair(h)
    assert commit(h, {("t", 0): 5, ("t", 1): 7}, member_id=m1, generation=1,
                  metadata="meta") == {("t", 0): 0, ("t", 1): 0}
    error, topics = fetch(h, topics=[("t", [0, 1, 2])])
    assert error == E.NONE
    assert topics == [("t", [FetchedOffset(0, 5, -1, "meta"), FetchedOffset(1, 7, -1, "meta"),
                             FetchedOffset(2, -1, -1, "")])]
    assert fetch(h) == (E.NONE, [("t", [FetchedOffset(0, 5, -1, "meta"),
                                        FetchedOffset(1, 7, -1, "meta")])])


@pytest.mark.parametrize(("member", "generation", "error"), [
    ("nobody", 1, E.UNKNOWN_MEMBER_ID),
    ("leader", 0, E.ILLEGAL_GENERATION),
    ("", -1, E.UNKNOWN_MEMBER_ID),  # an admin commit while the group has members
])
def test_commit_generation_and_member_checks(member: str, generation: int, error: E) -> None:
    h = Harness()
    m1, _ = stable_pair(h)
    member_id = m1 if member == "leader" else member
    assert commit(h, {("t", 0): 1}, member_id=member_id, generation=generation) == {("t", 0): error}
    assert fetch(h, topics=[("t", [0])])[1][0][1][0].committed_offset == -1


def test_commit_during_completing_rebalance_is_rebalance_in_progress() -> None:
    h = Harness()
    (m1, _), (m2, _) = h.join_new_member(), h.join_new_member()
    h.advance(SETTLE_MS)
    assert commit(h, {("t", 0): 1}, member_id=m1, generation=1) == {
        ("t", 0): E.REBALANCE_IN_PROGRESS}


def test_standalone_commit_creates_a_simple_group_that_lists_as_empty() -> None:
    h = Harness()
    assert commit(h, {("t", 0): 3}, group="simple") == {("t", 0): 0}
    [listed] = h.shard.list_groups()
    assert (listed.group_id, listed.protocol_type, listed.group_state, listed.group_type) == (
        "simple", "", "Empty", "classic")


@pytest.mark.parametrize(("version", "error"), [(8, E.ILLEGAL_GENERATION),
                                                (9, E.GROUP_ID_NOT_FOUND)])
def test_member_commit_to_a_missing_group(version: int, error: E) -> None:
    h = Harness()
    assert commit(h, {("t", 0): 3}, member_id="m", generation=4, version=version) == {
        ("t", 0): error}


def test_per_partition_errors_unknown_topic_and_oversized_metadata() -> None:
    h = Harness()
    assert commit(h, {("nope", 0): 1}) == {("nope", 0): E.UNKNOWN_TOPIC_OR_PARTITION}
    assert commit(h, {("t", 0): 1}, metadata="x" * 4097) == {("t", 0): E.OFFSET_METADATA_TOO_LARGE}
    assert commit(h, {("t", 0): 1}, metadata="x" * 4096) == {("t", 0): E.NONE}


def test_empty_group_offsets_expire_after_retention_then_the_group_is_deleted() -> None:
    day_ms = 24 * 3600 * 1000
    h = Harness(config=GroupConfig(initial_rebalance_delay_ms=100, offsets_retention_ms=day_ms))
    assert commit(h, {("t", 0): 3}) == {("t", 0): 0}
    h.advance(day_ms - 600_000)
    assert fetch(h, topics=[("t", [0])])[1][0][1][0].committed_offset == 3
    h.advance(600_000)  # the next retention check after a day
    assert fetch(h, topics=[("t", [0])])[1][0][1][0].committed_offset == -1
    assert h.group() is None


def test_legacy_commit_with_retention_time_expires_at_its_own_deadline() -> None:
    h = Harness()
    m1, _ = stable_pair(h)
    assert commit(h, {("t", 0): 3}, member_id=m1, generation=1, version=2,
                  retention_ms=1_000) == {("t", 0): 0}
    assert h.log[-1].value_version == 1
    h.advance(600_000)
    assert fetch(h, topics=[("t", [0])])[1][0][1][0].committed_offset == -1


def test_offset_delete_rules() -> None:
    h = Harness()
    delete = lambda group, topic: h.apply(h.shard.offset_delete(OffsetDeleteRequest(  # noqa: E731
        group_id=group, topics=[OffsetDeleteRequest.OffsetDeleteRequestTopic(
            name=topic, partitions=[OffsetDeleteRequest.OffsetDeleteRequestPartition(
                partition_index=0)])])))
    assert delete("nope", "t").error_code == E.GROUP_ID_NOT_FOUND
    m1, _ = stable_pair(h)  # subscribed to "t" through the consumer protocol
    commit(h, {("t", 0): 1, ("u", 0): 2}, member_id=m1, generation=1)
    assert delete("g", "t").topics[0].partitions[0].error_code == E.GROUP_SUBSCRIBED_TO_TOPIC
    assert delete("g", "u").topics[0].partitions[0].error_code == E.NONE
    assert fetch(h)[1] == [("t", [FetchedOffset(0, 1, -1, "")])]
    h.join_new_member(group="other", protocol_type="connect", protocols=[("x", b"")])
    h.advance(SETTLE_MS)
    assert delete("other", "t").error_code == E.NON_EMPTY_GROUP


def test_list_groups_filters_by_state_and_type_case_insensitively() -> None:
    h = Harness()
    stable_pair(h)
    commit(h, {("t", 0): 1}, group="idle")
    names = lambda **kw: [g.group_id for g in h.shard.list_groups(**kw)]  # noqa: E731
    assert names() == ["g", "idle"]
    assert names(states_filter=["stable"]) == ["g"]
    assert names(states_filter=["EMPTY", "Stable"]) == ["g", "idle"]
    assert names(types_filter=["consumer"]) == []
    assert names(types_filter=["Classic"]) == ["g", "idle"]


def test_describe_shows_metadata_and_assignments_only_when_stable() -> None:
    h = Harness()
    m1, m2 = stable_pair(h)
    [group, unknown] = h.shard.describe_groups(["g", "missing"])
    assert (group.group_state, group.protocol_type, group.protocol_data) == (
        "Stable", "consumer", "range")
    assert [(m.member_id, m.member_assignment, m.member_metadata, m.client_host)
            for m in group.members] == [(m1, b"a", subscription("t"), "/127.0.0.1"),
                                        (m2, b"b", subscription("t"), "/127.0.0.1")]
    assert (unknown.group_state, unknown.error_code, unknown.members) == ("Dead", 0, [])
    h.join_new_member()
    [rebalancing] = h.shard.describe_groups(["g"])
    assert rebalancing.group_state == "PreparingRebalance" and rebalancing.protocol_data == ""
    assert all(m.member_assignment == b"" and m.member_metadata == b""
               for m in rebalancing.members)


def test_delete_groups_removes_empty_groups_and_their_offsets() -> None:
    h = Harness()
    stable_pair(h)
    commit(h, {("t", 0): 9}, group="idle")
    result = h.apply(h.shard.delete_groups(["g", "idle", "missing", ""]))
    assert [(r.group_id, r.error_code) for r in result] == [
        ("g", E.NON_EMPTY_GROUP), ("idle", E.NONE), ("missing", E.GROUP_ID_NOT_FOUND),
        ("", E.INVALID_GROUP_ID)]
    assert h.group("idle") is None and "idle" not in h.shard.offsets
    assert [g.group_id for g in h.shard.list_groups()] == ["g"]


def test_replaying_the_log_rebuilds_groups_and_offsets() -> None:
    """What a restart sees: a fresh shard fed every record written so far."""
    h = Harness()
    m1, m2 = stable_pair(h)
    commit(h, {("t", 0): 4, ("t", 1): 6}, member_id=m1, generation=1)
    commit(h, {("t", 2): 1}, group="simple")
    h.apply(h.shard.delete_groups(["simple"]))
    static = h.join("", group="s", instance_id="i")
    h.advance(SETTLE_MS)
    h.sync(h.response(static).member_id, 1, {h.response(static).member_id: b"s"}, group="s")

    fresh = GroupCoordinatorShard(h.config, h.topics)
    for record in h.log:
        fresh.replay(record, h.now_ms)
    assert fresh.offsets == h.shard.offsets
    assert sorted(fresh.groups) == sorted(h.shard.groups) == ["g", "s"]
    for group_id in ("g", "s"):
        live, loaded = h.shard.groups[group_id], fresh.groups[group_id]
        assert loaded.state is S.STABLE
        assert (loaded.generation_id, loaded.leader_id, loaded.protocol_type,
                loaded.protocol_name, loaded.static_members) == (
            live.generation_id, live.leader_id, live.protocol_type, live.protocol_name,
            live.static_members)
        assert loaded.group_assignment() == live.group_assignment()
        assert loaded.subscribed_topics == live.subscribed_topics


def test_loaded_members_expire_unless_they_heartbeat() -> None:
    h = Harness()
    stable_pair(h)
    fresh = Harness()
    for record in h.log:
        fresh.shard.replay(record, fresh.now_ms)
    fresh.shard.on_loaded(fresh.now_ms)
    fresh.advance(SESSION_TIMEOUT_MS)
    assert fresh.group().members == {}
    assert fresh.group().state is S.PREPARING_REBALANCE or fresh.group().state is S.EMPTY


def test_require_stable_reports_offsets_of_open_transactions_as_unstable() -> None:
    """KIP-447: with require_stable, a partition whose offset an open transaction wrote reads
    UNSTABLE_OFFSET_COMMIT (retriable); once the marker commits it reads the new offset, and
    without require_stable the last committed offset is returned meanwhile."""
    h = Harness()
    commit(h, {("t", 0): 5, ("t", 1): 7})
    # What a TxnOffsetCommit's transactional record replays as: offset 9 for t-0, pending.
    in_transaction = dataclasses.replace(h.shard.offsets["g"][("t", 0)], committed_offset=9)
    h.shard.replay_pending_offset(producer_id=42, group_id="g", topic="t", partition=0,
                                  offset=in_transaction)
    _, stable = h.shard.offset_fetch("g", [("t", [0, 1])], require_stable=True)
    assert [(o.partition_index, o.committed_offset, o.error_code) for o in stable[0][1]] == [
        (0, -1, E.UNSTABLE_OFFSET_COMMIT), (1, 7, 0)]
    _, loose = h.shard.offset_fetch("g", [("t", [0, 1])])
    assert [o.committed_offset for o in loose[0][1]] == [5, 7]
    h.shard.complete_transaction(42, commit=True, now_ms=h.now_ms)
    _, after = h.shard.offset_fetch("g", [("t", [0, 1])], require_stable=True)
    assert [(o.committed_offset, o.error_code) for o in after[0][1]] == [(9, 0), (7, 0)]
