"""KRaft RPCs on the Kafka wire: core messages <-> generated Kafka message classes.

This module owns the field mapping between ``raft/messages.py`` and the Kafka schemas of
Vote (52), BeginQuorumEpoch (53), EndQuorumEpoch (54), Fetch (1) and FetchSnapshot (59), all
for the one partition ``__cluster_metadata``-0 (topic id ``Uuid.METADATA_TOPIC_ID`` = 0...01).
It does no I/O: ``raft/transport.py`` frames and sends what it builds.

Vote v2 (KIP-996 adds ``PreVote`` and renames Candidate* to Replica*) is newer than the pinned
schemas the code generator reads (``../shared/kafka-spec``, Kafka 4.0 development at 1eb76443),
so :class:`VoteRequestV2`/:class:`VoteResponseV2` below are written by hand in the generated
classes' table format, from Kafka 4.0's ``VoteRequest.json``/``VoteResponse.json``: the
request's partition gains ``PreVote: bool [v2+]`` after ``LastOffset``; the response is
unchanged from v1.  Both sides of a controller listener are StreamBus, so this is the one
place to change if the upstream schema differs.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar

from streambus.protocol.api_keys import ApiKey
from streambus.protocol.messages.begin_quorum_epoch import (
    BeginQuorumEpochRequest as WireBeginRequest,
)
from streambus.protocol.messages.begin_quorum_epoch import (
    BeginQuorumEpochResponse as WireBeginResponse,
)
from streambus.protocol.messages.end_quorum_epoch import EndQuorumEpochRequest as WireEndRequest
from streambus.protocol.messages.end_quorum_epoch import EndQuorumEpochResponse as WireEndResponse
from streambus.protocol.messages.fetch import FetchRequest as WireFetchRequest
from streambus.protocol.messages.fetch import FetchResponse as WireFetchResponse
from streambus.protocol.messages.fetch_snapshot import (
    FetchSnapshotRequest as WireSnapshotRequest,
)
from streambus.protocol.messages.fetch_snapshot import (
    FetchSnapshotResponse as WireSnapshotResponse,
)
from streambus.protocol.primitives import ZERO_UUID
from streambus.raft.batches import decode_batches, encode_batches
from streambus.raft.messages import (
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
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

__all__ = [
    "METADATA_TOPIC",
    "METADATA_TOPIC_ID",
    "RAFT_API_VERSIONS",
    "VoteRequestV2",
    "VoteResponseV2",
    "encode_request",
    "decode_request",
    "encode_response",
    "decode_response",
    "WireError",
]

METADATA_TOPIC = "__cluster_metadata"
#: Kafka's ``Uuid.METADATA_TOPIC_ID``.
METADATA_TOPIC_ID = uuid.UUID(int=1)

#: The version each RPC is sent at (and the range a controller listener accepts).
RAFT_API_VERSIONS: dict[int, tuple[int, int]] = {
    int(ApiKey.VOTE): (2, 2),
    int(ApiKey.BEGIN_QUORUM_EPOCH): (1, 1),
    int(ApiKey.END_QUORUM_EPOCH): (1, 1),
    int(ApiKey.FETCH): (17, 17),
    int(ApiKey.FETCH_SNAPSHOT): (1, 1),
}


class WireError(ValueError):
    """A KRaft request that names another partition or cluster, or lacks a partition."""

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


# ----------------------------------------------------------------------------- Vote v2


@dataclass(slots=True, kw_only=True)
class VoteRequestV2:
    API_KEY: ClassVar[int | None] = 52
    VALID_VERSIONS: ClassVar[tuple[int, int]] = (0, 2)
    FLEXIBLE_MIN: ClassVar[int | None] = 0

    @dataclass(slots=True, kw_only=True)
    class PartitionData:
        FIELDS: ClassVar[tuple] = (
            ('partition_index', 'int32', (0, 32767), None, None, None, False, None),
            ('replica_epoch', 'int32', (0, 32767), None, None, None, False, None),
            ('replica_id', 'int32', (0, 32767), None, None, None, False, None),
            ('replica_directory_id', 'uuid', (1, 32767), None, None, None, True, None),
            ('voter_directory_id', 'uuid', (1, 32767), None, None, None, True, None),
            ('last_offset_epoch', 'int32', (0, 32767), None, None, None, False, None),
            ('last_offset', 'int64', (0, 32767), None, None, None, False, None),
            ('pre_vote', 'bool', (2, 32767), None, None, None, False, None),
        )

        partition_index: int = 0
        replica_epoch: int = 0
        replica_id: int = 0
        replica_directory_id: uuid.UUID = ZERO_UUID
        voter_directory_id: uuid.UUID = ZERO_UUID
        last_offset_epoch: int = 0
        last_offset: int = 0
        pre_vote: bool = False

    @dataclass(slots=True, kw_only=True)
    class TopicData:
        FIELDS: ClassVar[tuple] = (
            ('topic_name', 'string', (0, 32767), None, None, None, False, None),
            ('partitions', '[]PartitionData', (0, 32767), None, None, None, False, None),
        )

        topic_name: str = ''
        partitions: list[VoteRequestV2.PartitionData] = field(default_factory=list)

    FIELDS: ClassVar[tuple] = (
        ('cluster_id', 'string', (0, 32767), (0, 32767), None, None, False, None),
        ('voter_id', 'int32', (1, 32767), None, None, None, True, None),
        ('topics', '[]TopicData', (0, 32767), None, None, None, False, None),
    )

    cluster_id: str | None = None
    voter_id: int = -1
    topics: list[VoteRequestV2.TopicData] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class VoteResponseV2:
    API_KEY: ClassVar[int | None] = 52
    VALID_VERSIONS: ClassVar[tuple[int, int]] = (0, 2)
    FLEXIBLE_MIN: ClassVar[int | None] = 0

    @dataclass(slots=True, kw_only=True)
    class NodeEndpoint:
        FIELDS: ClassVar[tuple] = (
            ('node_id', 'int32', (1, 32767), None, None, None, False, None),
            ('host', 'string', (1, 32767), None, None, None, False, None),
            ('port', 'uint16', (1, 32767), None, None, None, False, None),
        )

        node_id: int = 0
        host: str = ''
        port: int = 0

    @dataclass(slots=True, kw_only=True)
    class PartitionData:
        FIELDS: ClassVar[tuple] = (
            ('partition_index', 'int32', (0, 32767), None, None, None, False, None),
            ('error_code', 'int16', (0, 32767), None, None, None, False, None),
            ('leader_id', 'int32', (0, 32767), None, None, None, False, None),
            ('leader_epoch', 'int32', (0, 32767), None, None, None, False, None),
            ('vote_granted', 'bool', (0, 32767), None, None, None, False, None),
        )

        partition_index: int = 0
        error_code: int = 0
        leader_id: int = 0
        leader_epoch: int = 0
        vote_granted: bool = False

    @dataclass(slots=True, kw_only=True)
    class TopicData:
        FIELDS: ClassVar[tuple] = (
            ('topic_name', 'string', (0, 32767), None, None, None, False, None),
            ('partitions', '[]PartitionData', (0, 32767), None, None, None, False, None),
        )

        topic_name: str = ''
        partitions: list[VoteResponseV2.PartitionData] = field(default_factory=list)

    FIELDS: ClassVar[tuple] = (
        ('error_code', 'int16', (0, 32767), None, None, None, False, None),
        ('topics', '[]TopicData', (0, 32767), None, None, None, False, None),
        ('node_endpoints', '[]NodeEndpoint', (1, 32767), None, (1, 32767), 0, False, None),
    )

    error_code: int = 0
    topics: list[VoteResponseV2.TopicData] = field(default_factory=list)
    node_endpoints: list[VoteResponseV2.NodeEndpoint] = field(default_factory=list)


#: Request / response classes per api key, for decoding on the controller listener.
REQUEST_CLASSES: dict[int, type] = {
    int(ApiKey.VOTE): VoteRequestV2,
    int(ApiKey.BEGIN_QUORUM_EPOCH): WireBeginRequest,
    int(ApiKey.END_QUORUM_EPOCH): WireEndRequest,
    int(ApiKey.FETCH): WireFetchRequest,
    int(ApiKey.FETCH_SNAPSHOT): WireSnapshotRequest,
}
RESPONSE_CLASSES: dict[int, type] = {
    int(ApiKey.VOTE): VoteResponseV2,
    int(ApiKey.BEGIN_QUORUM_EPOCH): WireBeginResponse,
    int(ApiKey.END_QUORUM_EPOCH): WireEndResponse,
    int(ApiKey.FETCH): WireFetchResponse,
    int(ApiKey.FETCH_SNAPSHOT): WireSnapshotResponse,
}


# ----------------------------------------------------------------------------- requests


def encode_request(message: Message, destination: int, cluster_id: str, *, tick_ms: int,
                   leader_endpoint: tuple[str, str, int] | None = None) -> tuple[int, Any]:
    """(api key, wire request) for a core request sent to ``destination``."""
    if isinstance(message, VoteRequest):
        partition = VoteRequestV2.PartitionData(
            replica_epoch=message.epoch, replica_id=message.candidate_id,
            last_offset_epoch=message.last_offset_epoch, last_offset=message.last_offset,
            pre_vote=message.pre_vote)
        return int(ApiKey.VOTE), VoteRequestV2(
            cluster_id=cluster_id, voter_id=destination,
            topics=[VoteRequestV2.TopicData(topic_name=METADATA_TOPIC, partitions=[partition])])
    if isinstance(message, BeginQuorumEpochRequest):
        endpoints = [] if leader_endpoint is None else [WireBeginRequest.LeaderEndpoint(
            name=leader_endpoint[0], host=leader_endpoint[1], port=leader_endpoint[2])]
        return int(ApiKey.BEGIN_QUORUM_EPOCH), WireBeginRequest(
            cluster_id=cluster_id, voter_id=destination, leader_endpoints=endpoints,
            topics=[WireBeginRequest.TopicData(topic_name=METADATA_TOPIC, partitions=[
                WireBeginRequest.PartitionData(leader_id=message.leader_id,
                                               leader_epoch=message.leader_epoch)])])
    if isinstance(message, EndQuorumEpochRequest):
        candidates = [WireEndRequest.ReplicaInfo(candidate_id=c)
                      for c in message.preferred_successors]
        return int(ApiKey.END_QUORUM_EPOCH), WireEndRequest(
            cluster_id=cluster_id,
            topics=[WireEndRequest.TopicData(topic_name=METADATA_TOPIC, partitions=[
                WireEndRequest.PartitionData(leader_id=message.leader_id,
                                             leader_epoch=message.leader_epoch,
                                             preferred_candidates=candidates)])])
    if isinstance(message, FetchRequest):
        partition = WireFetchRequest.FetchPartition(
            partition=0, current_leader_epoch=message.current_leader_epoch,
            fetch_offset=message.fetch_offset, last_fetched_epoch=message.last_fetched_epoch,
            log_start_offset=-1, partition_max_bytes=message.max_bytes)
        return int(ApiKey.FETCH), WireFetchRequest(
            cluster_id=cluster_id,
            replica_state=WireFetchRequest.ReplicaState(replica_id=message.replica_id,
                                                        replica_epoch=-1),
            max_wait_ms=message.max_wait_ticks * tick_ms, min_bytes=0,
            max_bytes=message.max_bytes,
            topics=[WireFetchRequest.FetchTopic(topic_id=METADATA_TOPIC_ID,
                                                partitions=[partition])])
    if isinstance(message, FetchSnapshotRequest):
        snapshot = message.snapshot_id
        return int(ApiKey.FETCH_SNAPSHOT), WireSnapshotRequest(
            cluster_id=cluster_id, replica_id=message.replica_id, max_bytes=message.max_bytes,
            topics=[WireSnapshotRequest.TopicSnapshot(name=METADATA_TOPIC, partitions=[
                WireSnapshotRequest.PartitionSnapshot(
                    partition=0, current_leader_epoch=message.current_leader_epoch,
                    snapshot_id=WireSnapshotRequest.SnapshotId(end_offset=snapshot.end_offset,
                                                               epoch=snapshot.epoch),
                    position=message.position)])])
    raise TypeError(f"not a KRaft request: {message!r}")


def _one_partition(topics: list[Any], name_attr: str = "topic_name") -> Any:
    if len(topics) != 1 or len(topics[0].partitions) != 1:
        raise WireError(42, "a KRaft request names exactly one partition")  # INVALID_REQUEST
    topic = topics[0]
    name = getattr(topic, name_attr, METADATA_TOPIC)
    if name_attr != "topic_id" and name != METADATA_TOPIC:
        raise WireError(42, f"unknown KRaft topic {name!r}")
    return topic.partitions[0]


def _check_cluster(cluster_id: str | None, expected: str) -> None:
    if cluster_id is not None and cluster_id != expected:
        raise WireError(104, f"cluster id {cluster_id!r} is not {expected!r}")


def decode_request(api_key: int, request: Any, cluster_id: str, *, tick_ms: int
                   ) -> tuple[int, Message]:
    """(sender id, core request) from a decoded wire request.

    Raises:
        WireError: wrong cluster (INCONSISTENT_CLUSTER_ID) or partition (INVALID_REQUEST).
    """
    _check_cluster(request.cluster_id, cluster_id)
    if api_key == ApiKey.VOTE:
        p = _one_partition(request.topics)
        return p.replica_id, VoteRequest(p.replica_epoch, p.replica_id, request.voter_id,
                                         p.last_offset_epoch, p.last_offset, p.pre_vote)
    if api_key == ApiKey.BEGIN_QUORUM_EPOCH:
        p = _one_partition(request.topics)
        return p.leader_id, BeginQuorumEpochRequest(p.leader_id, p.leader_epoch,
                                                    request.voter_id)
    if api_key == ApiKey.END_QUORUM_EPOCH:
        p = _one_partition(request.topics)
        successors = tuple(c.candidate_id for c in p.preferred_candidates) or tuple(
            p.preferred_successors)
        return p.leader_id, EndQuorumEpochRequest(p.leader_id, p.leader_epoch, successors)
    if api_key == ApiKey.FETCH:
        topic = request.topics[0] if len(request.topics) == 1 else None
        if topic is None or topic.topic_id != METADATA_TOPIC_ID:
            raise WireError(42, "a KRaft Fetch names the metadata topic id only")
        p = _one_partition(request.topics, "topic_id")
        replica_id = request.replica_state.replica_id
        max_wait_ticks = max(0, math.ceil(request.max_wait_ms / tick_ms)) if (
            request.max_wait_ms >= 0) else -1
        return replica_id, FetchRequest(replica_id, p.current_leader_epoch, p.fetch_offset,
                                        p.last_fetched_epoch, max_wait_ticks,
                                        min(request.max_bytes, p.partition_max_bytes))
    if api_key == ApiKey.FETCH_SNAPSHOT:
        p = _one_partition(request.topics, "name")
        return request.replica_id, FetchSnapshotRequest(
            request.replica_id, p.current_leader_epoch,
            SnapshotId(p.snapshot_id.end_offset, p.snapshot_id.epoch), p.position,
            request.max_bytes)
    raise WireError(42, f"api key {api_key} is not a KRaft RPC")


# ----------------------------------------------------------------------------- responses


def encode_response(message: Message, *, timestamp_ms: int) -> Any:
    """The wire response for a core response."""
    if isinstance(message, VoteResponse):
        return VoteResponseV2(topics=[VoteResponseV2.TopicData(
            topic_name=METADATA_TOPIC, partitions=[VoteResponseV2.PartitionData(
                error_code=message.error_code, leader_id=message.leader_id,
                leader_epoch=message.leader_epoch, vote_granted=message.vote_granted)])])
    if isinstance(message, BeginQuorumEpochResponse):
        return WireBeginResponse(topics=[WireBeginResponse.TopicData(
            topic_name=METADATA_TOPIC, partitions=[WireBeginResponse.PartitionData(
                error_code=message.error_code, leader_id=message.leader_id,
                leader_epoch=message.leader_epoch)])])
    if isinstance(message, EndQuorumEpochResponse):
        return WireEndResponse(topics=[WireEndResponse.TopicData(
            topic_name=METADATA_TOPIC, partitions=[WireEndResponse.PartitionData(
                error_code=message.error_code, leader_id=message.leader_id,
                leader_epoch=message.leader_epoch)])])
    if isinstance(message, FetchResponse):
        return _encode_fetch_response(message, timestamp_ms)
    if isinstance(message, FetchSnapshotResponse):
        snapshot = message.snapshot_id
        return WireSnapshotResponse(topics=[WireSnapshotResponse.TopicSnapshot(
            name=METADATA_TOPIC, partitions=[WireSnapshotResponse.PartitionSnapshot(
                index=0, error_code=message.error_code,
                snapshot_id=WireSnapshotResponse.SnapshotId(end_offset=snapshot.end_offset,
                                                            epoch=snapshot.epoch),
                current_leader=WireSnapshotResponse.LeaderIdAndEpoch(
                    leader_id=message.leader_id, leader_epoch=message.leader_epoch),
                size=message.size, position=message.position,
                unaligned_records=message.data)])])
    raise TypeError(f"not a KRaft response: {message!r}")


def _encode_fetch_response(message: FetchResponse, timestamp_ms: int) -> Any:
    partition = WireFetchResponse.PartitionData(
        partition_index=0, error_code=message.error_code,
        high_watermark=message.high_watermark, last_stable_offset=message.high_watermark,
        log_start_offset=message.log_start_offset,
        current_leader=WireFetchResponse.LeaderIdAndEpoch(leader_id=message.leader_id,
                                                          leader_epoch=message.leader_epoch),
        records=encode_batches(message.batches, timestamp_ms))
    if message.diverging_epoch is not None:
        partition.diverging_epoch = WireFetchResponse.EpochEndOffset(
            epoch=message.diverging_epoch.epoch, end_offset=message.diverging_epoch.offset)
    if message.snapshot_id is not None:
        partition.snapshot_id = WireFetchResponse.SnapshotId(
            end_offset=message.snapshot_id.end_offset, epoch=message.snapshot_id.epoch)
    return WireFetchResponse(responses=[WireFetchResponse.FetchableTopicResponse(
        topic_id=METADATA_TOPIC_ID, partitions=[partition])])


def decode_response(api_key: int, response: Any, request: Message) -> Message:
    """The core response for a wire response to ``request`` (whose echo fields it copies).

    Raises:
        WireError: the response does not carry the one metadata partition.
        CorruptRecordError: a Fetch response's records are damaged.
    """
    if api_key == ApiKey.VOTE:
        p = _one_partition(response.topics)
        assert isinstance(request, VoteRequest)
        return VoteResponse(p.error_code or response.error_code, p.leader_id, p.leader_epoch,
                            p.vote_granted, request.pre_vote, request.sequence)
    if api_key in (ApiKey.BEGIN_QUORUM_EPOCH, ApiKey.END_QUORUM_EPOCH):
        if not response.topics and response.error_code:
            raise WireError(response.error_code, "request refused")
        p = _one_partition(response.topics)
        cls = (BeginQuorumEpochResponse if api_key == ApiKey.BEGIN_QUORUM_EPOCH
               else EndQuorumEpochResponse)
        return cls(p.error_code or response.error_code, p.leader_id, p.leader_epoch,
                   request.sequence)
    if api_key == ApiKey.FETCH:
        assert isinstance(request, FetchRequest)
        p = _one_partition(response.responses, "topic_id")
        diverging = None
        if p.diverging_epoch.epoch >= 0:
            diverging = OffsetAndEpoch(p.diverging_epoch.epoch, p.diverging_epoch.end_offset)
        snapshot_id = None
        if p.snapshot_id.end_offset >= 0:
            snapshot_id = SnapshotId(p.snapshot_id.end_offset, p.snapshot_id.epoch)
        batches = tuple(decode_batches(p.records)) if p.records else ()
        return FetchResponse(p.error_code or response.error_code, p.current_leader.leader_id,
                             p.current_leader.leader_epoch, p.high_watermark,
                             p.log_start_offset, request.fetch_offset, diverging, snapshot_id,
                             batches, request.sequence)
    if api_key == ApiKey.FETCH_SNAPSHOT:
        assert isinstance(request, FetchSnapshotRequest)
        p = _one_partition(response.topics, "name")
        return FetchSnapshotResponse(
            p.error_code or response.error_code, p.current_leader.leader_id,
            p.current_leader.leader_epoch, SnapshotId(p.snapshot_id.end_offset,
                                                      p.snapshot_id.epoch),
            p.size, p.position, bytes(p.unaligned_records or b""), request.sequence)
    raise WireError(42, f"api key {api_key} is not a KRaft RPC")


def error_response(api_key: int, error_code: int) -> Any:
    """A wire response that carries only a top-level error (wrong cluster, bad request)."""
    response = RESPONSE_CLASSES[api_key]()
    response.error_code = error_code
    return response
