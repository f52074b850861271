"""Every group API at every advertised version, through the real handlers and runtime.

Goal: no response carries a field its version cannot (the codec raises on a non-ignorable
field a version lacks), version-specific shapes are right (JoinGroup's MEMBER_ID_REQUIRED from
v4, LeaveGroup v0-v2's single member, OffsetFetch v8's groups), and what a client decodes at
each version is what happened.  Method: each request is encoded and decoded at the version (as
a client would send it), handled by the real handler over a real ``GroupCoordinatorRuntime``
on partition logs in a temp dir, and the response is encoded and decoded back.
"""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from grouptest_support import subscription
from test_group_runtime import FakeHost, runtime_for
from streambus.broker.handlers import (
    all_handlers,
    consumer_group_describe,
    consumer_group_heartbeat,
    delete_groups,
    describe_groups,
    heartbeat,
    join_group,
    leave_group,
    list_groups,
    offset_commit,
    offset_delete,
    offset_fetch,
    sync_group,
)
from streambus.protocol import codec
from streambus.protocol.api_keys import ApiKey
from streambus.protocol.error_codes import ErrorCode as E
from streambus.protocol.messages.consumer_group_describe import ConsumerGroupDescribeRequest
from streambus.protocol.messages.consumer_group_heartbeat import ConsumerGroupHeartbeatRequest
from streambus.protocol.messages.delete_groups import DeleteGroupsRequest
from streambus.protocol.messages.describe_groups import DescribeGroupsRequest
from streambus.protocol.messages.heartbeat import HeartbeatRequest
from streambus.protocol.messages.join_group import JoinGroupRequest
from streambus.protocol.messages.leave_group import LeaveGroupRequest
from streambus.protocol.messages.list_groups import ListGroupsRequest
from streambus.protocol.messages.offset_commit import OffsetCommitRequest
from streambus.protocol.messages.offset_delete import OffsetDeleteRequest
from streambus.protocol.messages.offset_fetch import OffsetFetchRequest
from streambus.protocol.messages.sync_group import SyncGroupRequest

SPECS = {spec.api_key: spec for spec in all_handlers()}
HANDLERS = {
    ApiKey.JOIN_GROUP: join_group.handle, ApiKey.SYNC_GROUP: sync_group.handle,
    ApiKey.HEARTBEAT: heartbeat.handle, ApiKey.LEAVE_GROUP: leave_group.handle,
    ApiKey.OFFSET_COMMIT: offset_commit.handle, ApiKey.OFFSET_FETCH: offset_fetch.handle,
    ApiKey.DESCRIBE_GROUPS: describe_groups.handle, ApiKey.LIST_GROUPS: list_groups.handle,
    ApiKey.DELETE_GROUPS: delete_groups.handle, ApiKey.OFFSET_DELETE: offset_delete.handle,
    ApiKey.CONSUMER_GROUP_HEARTBEAT: consumer_group_heartbeat.handle,
    ApiKey.CONSUMER_GROUP_DESCRIBE: consumer_group_describe.handle,
}


def versions(api_key: ApiKey) -> list[int]:
    spec = SPECS[api_key]
    return list(range(spec.min_version, spec.max_version + 1))


def test_advertised_ranges_are_kafka_4_1s() -> None:
    assert {ApiKey(k).name: (s.min_version, s.max_version) for k, s in SPECS.items()
            if k in HANDLERS} == {
        "OFFSET_COMMIT": (2, 9), "OFFSET_FETCH": (1, 9), "JOIN_GROUP": (0, 9),
        "HEARTBEAT": (0, 4), "LEAVE_GROUP": (0, 5), "SYNC_GROUP": (0, 5),
        "DESCRIBE_GROUPS": (0, 5), "LIST_GROUPS": (0, 5), "DELETE_GROUPS": (0, 2),
        "OFFSET_DELETE": (0, 0), "CONSUMER_GROUP_HEARTBEAT": (0, 1),
        "CONSUMER_GROUP_DESCRIBE": (0, 0)}


class Broker:
    """Real runtime on temp-dir logs; ``call`` goes through the wire format both ways."""

    def __init__(self, directory: Path) -> None:
        self.clock = [1_000]
        self.host = FakeHost(directory, self.clock)
        self.runtime = runtime_for(self.host, self.clock)
        self.node = SimpleNamespace(group_coordinator=self.runtime)

    async def call(self, api_key: ApiKey, version: int, request: Any, *, after_ms: int = 0) -> Any:
        wire = codec.encode_request(api_key, version, request)
        decoded = codec.decode_request(api_key, version, wire)
        context = SimpleNamespace(api_version=version, node=self.node, client_host="127.0.0.1",
                                  header=SimpleNamespace(client_id="client"))
        outcome = HANDLERS[api_key](context, decoded)
        if inspect.isawaitable(outcome):
            task = asyncio.ensure_future(outcome)
            await asyncio.sleep(0)
            if after_ms:
                self.clock[0] += after_ms
                self.runtime.fire_timers(self.clock[0])
            outcome = await asyncio.wait_for(task, 5)
        body = codec.encode_response(api_key, version, outcome)
        return codec.decode_response(api_key, version, body)

    async def join(self, version: int, group: str = "g") -> Any:
        request = JoinGroupRequest(
            group_id=group, session_timeout_ms=10_000, member_id="", protocol_type="consumer",
            protocols=[JoinGroupRequest.JoinGroupRequestProtocol(name="range",
                                                                 metadata=subscription("t"))])
        if version >= 1:
            request.rebalance_timeout_ms = 30_000
        first = await self.call(ApiKey.JOIN_GROUP, version, request, after_ms=100)
        if version < 4:
            return first
        assert (first.error_code, first.generation_id) == (E.MEMBER_ID_REQUIRED, -1)
        request.member_id = first.member_id
        return await self.call(ApiKey.JOIN_GROUP, version, request, after_ms=100)


def run(tmp_path: Path, scenario) -> None:
    async def main() -> None:
        broker = Broker(tmp_path)
        await broker.runtime.start()
        try:
            await scenario(broker)
        finally:
            await broker.runtime.stop()
            broker.host.close()

    asyncio.run(main())


@pytest.mark.parametrize("version", versions(ApiKey.JOIN_GROUP))
def test_join_group_every_version(tmp_path: Path, version: int) -> None:
    async def scenario(broker: Broker) -> None:
        response = await broker.join(version)
        assert (response.error_code, response.generation_id) == (0, 1)
        assert response.leader == response.member_id and response.member_id.startswith("client-")
        assert response.protocol_name == "range"
        assert [m.member_id for m in response.members] == [response.member_id]
        assert response.members[0].metadata == subscription("t")
        if version >= 7:
            assert response.protocol_type == "consumer"

    run(tmp_path, scenario)


@pytest.mark.parametrize("version", versions(ApiKey.SYNC_GROUP))
def test_sync_heartbeat_and_leave_every_version(tmp_path: Path, version: int) -> None:
    async def scenario(broker: Broker) -> None:
        member = (await broker.join(5)).member_id
        request = SyncGroupRequest(group_id="g", generation_id=1, member_id=member,
                                   assignments=[SyncGroupRequest.SyncGroupRequestAssignment(
                                       member_id=member, assignment=b"mine")])
        if version >= 5:
            request.protocol_type, request.protocol_name = "consumer", "range"
        response = await broker.call(ApiKey.SYNC_GROUP, version, request)
        assert (response.error_code, response.assignment) == (0, b"mine")
        heartbeat_version = min(version, 4)
        beat = await broker.call(ApiKey.HEARTBEAT, heartbeat_version, HeartbeatRequest(
            group_id="g", generation_id=1, member_id=member))
        assert beat.error_code == 0
        stale = await broker.call(ApiKey.HEARTBEAT, heartbeat_version, HeartbeatRequest(
            group_id="g", generation_id=0, member_id=member))
        assert stale.error_code == E.ILLEGAL_GENERATION

    run(tmp_path, scenario)


@pytest.mark.parametrize("version", versions(ApiKey.LEAVE_GROUP))
def test_leave_group_every_version(tmp_path: Path, version: int) -> None:
    async def scenario(broker: Broker) -> None:
        member = (await broker.join(5)).member_id
        if version < 3:
            unknown = await broker.call(ApiKey.LEAVE_GROUP, version,
                                        LeaveGroupRequest(group_id="g", member_id="nobody"))
            assert (unknown.error_code, unknown.members) == (E.UNKNOWN_MEMBER_ID, [])
            left = await broker.call(ApiKey.LEAVE_GROUP, version,
                                     LeaveGroupRequest(group_id="g", member_id=member))
            assert left.error_code == 0
        else:
            left = await broker.call(ApiKey.LEAVE_GROUP, version, LeaveGroupRequest(
                group_id="g", members=[LeaveGroupRequest.MemberIdentity(member_id=member),
                                       LeaveGroupRequest.MemberIdentity(member_id="nobody")]))
            assert [(m.member_id, m.error_code) for m in left.members] == [
                (member, 0), ("nobody", E.UNKNOWN_MEMBER_ID)]
        listed = await broker.call(ApiKey.LIST_GROUPS, 4, ListGroupsRequest())
        assert [(g.group_id, g.group_state) for g in listed.groups] == [("g", "Empty")]

    run(tmp_path, scenario)


@pytest.mark.parametrize("version", versions(ApiKey.OFFSET_COMMIT))
def test_offset_commit_then_fetch_every_version(tmp_path: Path, version: int) -> None:
    async def scenario(broker: Broker) -> None:
        commit = OffsetCommitRequest(group_id="standalone", topics=[
            OffsetCommitRequest.OffsetCommitRequestTopic(name="t", partitions=[
                OffsetCommitRequest.OffsetCommitRequestPartition(
                    partition_index=1, committed_offset=40 + version, committed_metadata="m")])])
        response = await broker.call(ApiKey.OFFSET_COMMIT, version, commit)
        assert response.topics[0].partitions[0].error_code == 0
        for fetch_version in versions(ApiKey.OFFSET_FETCH):
            if fetch_version >= 8:
                request = OffsetFetchRequest(groups=[OffsetFetchRequest.OffsetFetchRequestGroup(
                    group_id="standalone", topics=[OffsetFetchRequest.OffsetFetchRequestTopics(
                        name="t", partition_indexes=[0, 1])])])
                fetched = await broker.call(ApiKey.OFFSET_FETCH, fetch_version, request)
                [group] = fetched.groups
                partitions = group.topics[0].partitions
                assert group.error_code == 0
            else:
                request = OffsetFetchRequest(group_id="standalone", topics=[
                    OffsetFetchRequest.OffsetFetchRequestTopic(name="t", partition_indexes=[0, 1])])
                fetched = await broker.call(ApiKey.OFFSET_FETCH, fetch_version, request)
                partitions = fetched.topics[0].partitions
            assert [(p.partition_index, p.committed_offset, p.metadata) for p in partitions] == [
                (0, -1, ""), (1, 40 + version, "m")], f"OffsetFetch v{fetch_version}"

    run(tmp_path, scenario)


def test_offset_fetch_all_topics_and_coordinator_errors_per_shape(tmp_path: Path) -> None:
    async def scenario(broker: Broker) -> None:
        await broker.call(ApiKey.OFFSET_COMMIT, 8, OffsetCommitRequest(group_id="s", topics=[
            OffsetCommitRequest.OffsetCommitRequestTopic(name="t", partitions=[
                OffsetCommitRequest.OffsetCommitRequestPartition(partition_index=0,
                                                                 committed_offset=3)])]))
        for version in (2, 7):
            fetched = await broker.call(ApiKey.OFFSET_FETCH, version,
                                        OffsetFetchRequest(group_id="s", topics=None))
            assert [(t.name, [p.committed_offset for p in t.partitions]) for t in fetched.topics] \
                == [("t", [3])]
        await broker.runtime.stop()  # now every group answers NOT_COORDINATOR
        v1 = await broker.call(ApiKey.OFFSET_FETCH, 1, OffsetFetchRequest(group_id="s", topics=[
            OffsetFetchRequest.OffsetFetchRequestTopic(name="t", partition_indexes=[0])]))
        assert v1.topics[0].partitions[0].error_code == E.NOT_COORDINATOR
        v2 = await broker.call(ApiKey.OFFSET_FETCH, 2, OffsetFetchRequest(group_id="s", topics=None))
        assert v2.error_code == E.NOT_COORDINATOR
        v8 = await broker.call(ApiKey.OFFSET_FETCH, 8, OffsetFetchRequest(groups=[
            OffsetFetchRequest.OffsetFetchRequestGroup(group_id="s", topics=None)]))
        assert v8.groups[0].error_code == E.NOT_COORDINATOR

    run(tmp_path, scenario)


@pytest.mark.parametrize("version", versions(ApiKey.DESCRIBE_GROUPS))
def test_describe_list_delete_every_version(tmp_path: Path, version: int) -> None:
    async def scenario(broker: Broker) -> None:
        member = (await broker.join(5)).member_id
        await broker.call(ApiKey.SYNC_GROUP, 3, SyncGroupRequest(
            group_id="g", generation_id=1, member_id=member,
            assignments=[SyncGroupRequest.SyncGroupRequestAssignment(member_id=member,
                                                                     assignment=b"a")]))
        request = DescribeGroupsRequest(groups=["g", "missing"])
        if version >= 3:
            request.include_authorized_operations = True
        described = await broker.call(ApiKey.DESCRIBE_GROUPS, version, request)
        group, missing = described.groups
        assert (group.group_state, group.protocol_data, missing.group_state) == (
            "Stable", "range", "Dead")
        assert [(m.member_id, m.member_assignment, m.client_host) for m in group.members] == [
            (member, b"a", "/127.0.0.1")]
        if version >= 3:
            assert group.authorized_operations == (1 << 3) | (1 << 6) | (1 << 8)
        listed = await broker.call(ApiKey.LIST_GROUPS, version, ListGroupsRequest())
        assert [g.group_id for g in listed.groups] == ["g"]
        if version >= 4:
            assert listed.groups[0].group_state == "Stable"
        delete_version = min(version, 2)
        deleted = await broker.call(ApiKey.DELETE_GROUPS, delete_version,
                                    DeleteGroupsRequest(groups_names=["g", "missing"]))
        assert [(r.group_id, r.error_code) for r in deleted.results] == [
            ("g", E.NON_EMPTY_GROUP), ("missing", E.GROUP_ID_NOT_FOUND)]
        offsets = await broker.call(ApiKey.OFFSET_DELETE, 0, OffsetDeleteRequest(group_id="g"))
        assert offsets.error_code == 0  # a consumer-protocol group may delete unsubscribed offsets

    run(tmp_path, scenario)


@pytest.mark.parametrize("version", versions(ApiKey.CONSUMER_GROUP_HEARTBEAT))
def test_consumer_group_heartbeat_and_describe(tmp_path: Path, version: int) -> None:
    async def scenario(broker: Broker) -> None:
        request = ConsumerGroupHeartbeatRequest(
            group_id="k", member_id="m-1" if version >= 1 else "", member_epoch=0,
            rebalance_timeout_ms=30_000, subscribed_topic_names=["t"], topic_partitions=[])
        response = await broker.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, version, request)
        assert (response.error_code, response.member_epoch) == (0, 1)
        assert sorted(response.assignment.topic_partitions[0].partitions) == [0, 1, 2, 3]
        described = await broker.call(ApiKey.CONSUMER_GROUP_DESCRIBE, 0,
                                      ConsumerGroupDescribeRequest(group_ids=["k", "x"]))
        group, missing = described.groups
        assert (group.group_state, group.members[0].member_id) == ("Stable", response.member_id)
        assert missing.error_code == E.GROUP_ID_NOT_FOUND

    run(tmp_path, scenario)
