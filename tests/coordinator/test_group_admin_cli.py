"""``streambus groups`` and the group admin client against the real group handlers.

Goal: the CLI's group commands and ``GroupAdminMixin`` build requests every advertised version
can carry, and read the handlers' answers right (list filters, describe with members,
assignments, offsets and lag, delete, reset-offsets).  Method: a fake transport encodes each
request at the negotiated version, decodes it as the broker would, runs the real handler over a
pure shard (through a one-shard stand-in for the runtime), and encodes/decodes the response
back; ListOffsets and Metadata come from a table.  No sockets, no threads.
"""

from __future__ import annotations

import io
import json
from types import SimpleNamespace
from typing import Any

import pytest

from grouptest_support import Harness, subscription
from streambus.broker.handlers import (
    consumer_group_describe,
    delete_groups,
    describe_groups,
    list_groups,
    offset_commit,
    offset_fetch,
)
from streambus.cli.admin import main
from streambus.client.admin import AdminClient
from streambus.coordinator.group.consumer_protocol import assigned_partitions
from streambus.protocol import codec
from streambus.protocol.api_keys import ApiKey
from streambus.protocol.messages.consumer_protocol_assignment import ConsumerProtocolAssignment
from streambus.protocol.messages.list_offsets import ListOffsetsResponse
from streambus.protocol.messages.metadata import MetadataResponse

HANDLERS = {
    ApiKey.LIST_GROUPS: list_groups.handle,
    ApiKey.DESCRIBE_GROUPS: describe_groups.handle,
    ApiKey.CONSUMER_GROUP_DESCRIBE: consumer_group_describe.handle,
    ApiKey.DELETE_GROUPS: delete_groups.handle,
    ApiKey.OFFSET_FETCH: offset_fetch.handle,
    ApiKey.OFFSET_COMMIT: offset_commit.handle,
}
END_OFFSETS = {("t", p): 50 for p in range(4)}


class OneShardCoordinator:
    """The runtime's interface over one pure shard, applying results like the runtime."""

    def __init__(self, h: Harness) -> None:
        self.h = h

    def shard_for(self, group_id: str, *, create_topic: bool):
        return 0, self.h.shard

    def loaded_shards(self):
        return [self.h.shard]

    def execute(self, group_id, operation, error_response, *, create_topic=True):
        result = operation(self.h.shard, 10_000, self.h.now_ms)
        return self.h.apply(result)


class FakeTransport:
    def __init__(self, h: Harness, versions: dict[int, int] | None = None) -> None:
        self.node = SimpleNamespace(group_coordinator=OneShardCoordinator(h))
        self.versions = versions or {}
        self.sent: list[tuple[int, int]] = []

    def version_for(self, api_key: int) -> int:
        from streambus.client.connection import CLIENT_VERSIONS

        return self.versions.get(api_key, CLIENT_VERSIONS[api_key][1])

    def send(self, request: Any, version: int | None = None) -> Any:
        api_key = type(request).API_KEY
        self.sent.append((api_key, version))
        wire = codec.encode_request(api_key, version, request)
        decoded = codec.decode_request(api_key, version, wire)
        if api_key == ApiKey.LIST_OFFSETS:
            response = ListOffsetsResponse(topics=[ListOffsetsResponse.ListOffsetsTopicResponse(
                name=t.name, partitions=[ListOffsetsResponse.ListOffsetsPartitionResponse(
                    partition_index=p.partition_index,
                    offset=0 if p.timestamp == -2 else END_OFFSETS[(t.name, p.partition_index)])
                    for p in t.partitions]) for t in decoded.topics])
        elif api_key == ApiKey.METADATA:
            response = MetadataResponse(topics=[MetadataResponse.MetadataResponseTopic(
                name=t.name, partitions=[MetadataResponse.MetadataResponsePartition(
                    partition_index=p) for p in range(4)]) for t in decoded.topics])
        else:
            context = SimpleNamespace(api_version=version, node=self.node, client_host="h",
                                      header=SimpleNamespace(client_id="cli"))
            response = HANDLERS[api_key](context, decoded)
        return codec.decode_response(api_key, version, codec.encode_response(api_key, version, response))

    def close(self) -> None:
        pass


def assignment_bytes(partitions: list[int]) -> bytes:
    return (0).to_bytes(2, "big") + codec.encode(ConsumerProtocolAssignment(assigned_partitions=[
        ConsumerProtocolAssignment.TopicPartition(topic="t", partitions=partitions)]), 0)


def stable_group(h: Harness) -> tuple[str, str]:
    (m1, _), (m2, _) = h.join_new_member(client_id="c1"), h.join_new_member(client_id="c2")
    h.advance(200)
    h.sync(m2, 1)
    h.sync(m1, 1, {m1: assignment_bytes([0, 1]), m2: assignment_bytes([2, 3])})
    return m1, m2


def run_cli(h: Harness, *argv: str, versions=None) -> tuple[int, Any, str]:
    out, err = io.StringIO(), io.StringIO()
    transport = FakeTransport(h, versions)
    code = main(["--output", "json", *argv], connect=lambda *a: AdminClient(transport),
                stdout=out, stderr=err)
    text = out.getvalue()
    return code, json.loads(text) if text.strip() else None, err.getvalue()


def commit(h: Harness, group: str, offsets: dict[int, int]) -> None:
    client = AdminClient(FakeTransport(h))
    assert client.commit_offsets(group, {("t", p): o for p, o in offsets.items()}) == {
        ("t", p): 0 for p in offsets}


def test_describe_shows_members_assignments_offsets_and_lag() -> None:
    h = Harness()
    m1, m2 = stable_group(h)
    from streambus.protocol.messages.offset_commit import OffsetCommitRequest

    h.apply(h.shard.offset_commit(OffsetCommitRequest(
        group_id="g", generation_id_or_member_epoch=1, member_id=m1,
        topics=[OffsetCommitRequest.OffsetCommitRequestTopic(name="t", partitions=[
            OffsetCommitRequest.OffsetCommitRequestPartition(partition_index=0, committed_offset=30),
            OffsetCommitRequest.OffsetCommitRequestPartition(partition_index=1, committed_offset=50)])]),
        api_version=8, now_ms=h.now_ms))
    code, document, stderr = run_cli(h, "groups", "describe", "g")
    assert code == 0, stderr
    [view] = document["groups"]
    assert (view["state"], view["type"], view["protocol"]) == ("Stable", "classic", "range")
    assert [(m["member_id"], m["client_id"], m["assignment"]) for m in view["members"]] == [
        (m1, "c1", [{"topic": "t", "partitions": [0, 1]}]),
        (m2, "c2", [{"topic": "t", "partitions": [2, 3]}])]
    assert [(o["partition"], o["committed_offset"], o["log_end_offset"], o["lag"], o["member_id"])
            for o in view["offsets"]] == [(0, 30, 50, 20, m1), (1, 50, 50, 0, m1),
                                          (2, None, 50, None, m2), (3, None, 50, None, m2)]


@pytest.mark.parametrize("version", [0, 3, 4, 5])
def test_list_filters_by_state_on_every_list_groups_version(version: int) -> None:
    h = Harness()
    stable_group(h)
    commit(h, "idle", {0: 1})
    code, document, _ = run_cli(h, "groups", "list", versions={ApiKey.LIST_GROUPS: version})
    assert code == 0 and [g["group_id"] for g in document["groups"]] == ["g", "idle"]
    code, document, _ = run_cli(h, "groups", "list", "--state", "Empty",
                                versions={ApiKey.LIST_GROUPS: version})
    expected = ["idle"] if version >= 4 else ["g", "idle"]  # v0-v3 cannot say the state
    assert [g["group_id"] for g in document["groups"]] == expected


@pytest.mark.parametrize("fetch_version", [1, 7, 8])
def test_reset_offsets_dry_run_then_execute(fetch_version: int) -> None:
    h = Harness()
    commit(h, "idle", {0: 10, 1: 10})
    versions = {ApiKey.OFFSET_FETCH: fetch_version}
    code, document, _ = run_cli(h, "groups", "reset-offsets", "idle", "--topic", "t:0,1",
                                "--shift-by", "-4", versions=versions)
    assert code == 0 and document["executed"] is False
    assert [o["offset"] for o in document["offsets"]] == [6, 6]
    assert h.shard.offset_fetch("idle", [("t", [0])])[1][0][1][0].committed_offset == 10
    code, document, _ = run_cli(h, "groups", "reset-offsets", "idle", "--topic", "t",
                                "--to-offset", "99", "--execute", versions=versions)
    assert code == 0 and [o["offset"] for o in document["offsets"]] == [50, 50, 50, 50]  # clamped
    client = AdminClient(FakeTransport(h, versions))
    everything = [("t", p) for p in range(4)]
    assert {tp: c.offset for tp, c in client.fetch_committed_offsets("idle", everything).items()} \
        == {("t", p): 50 for p in range(4)}
    if fetch_version < 2:
        with pytest.raises(ValueError, match="cannot ask for every offset"):
            client.fetch_committed_offsets("idle")
    else:
        assert set(client.fetch_committed_offsets("idle")) == set(everything)


def test_reset_offsets_refuses_a_group_with_members() -> None:
    h = Harness()
    stable_group(h)
    code, _, stderr = run_cli(h, "groups", "reset-offsets", "g", "--topic", "t", "--to-earliest",
                              "--execute")
    assert code == 1 and "inactive" in stderr and "Stable" in stderr


def test_delete_reports_deleted_missing_and_non_empty() -> None:
    h = Harness()
    stable_group(h)
    commit(h, "idle", {0: 1})
    code, document, stderr = run_cli(h, "groups", "delete", "idle", "nope", "--if-exists")
    assert (code, document) == (0, {"deleted": ["idle"], "missing": ["nope"]})
    code, document, stderr = run_cli(h, "groups", "delete", "g")
    assert code == 1 and "NON_EMPTY_GROUP" in stderr and document == {"deleted": [], "missing": []}


def test_describe_of_a_missing_group_is_an_error() -> None:
    code, _, stderr = run_cli(Harness(), "groups", "describe", "nope")
    assert code == 1 and "GROUP_ID_NOT_FOUND" in stderr


def test_assignment_parser_reads_what_consumers_send() -> None:
    assert assigned_partitions(assignment_bytes([3, 1])) == {"t": [1, 3]}
    assert assigned_partitions(b"") == {}
    assert assigned_partitions(b"\x00") is None
    assert subscription("t")[:2] == b"\x00\x01"
