"""KRaft RPCs survive the Kafka wire: core message -> wire class -> bytes -> back.

Method: for every request and response kind, encode with raft.wire and the generic codec at
the version the transport uses, decode again and compare whole core messages (responses keep
the echo fields of the request they answer).
"""

from __future__ import annotations

import pytest

from streambus.protocol import codec
from streambus.raft import wire
from streambus.raft.messages import (
    Batch,
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    OffsetAndEpoch,
    SnapshotId,
    VoteRequest,
    VoteResponse,
)

REQUESTS = [
    VoteRequest(epoch=4, candidate_id=2, voter_id=3, last_offset_epoch=3, last_offset=17),
    VoteRequest(epoch=4, candidate_id=2, voter_id=3, last_offset_epoch=4, last_offset=17,
                pre_vote=True),
    BeginQuorumEpochRequest(leader_id=2, leader_epoch=4, voter_id=3),
    EndQuorumEpochRequest(leader_id=2, leader_epoch=4, preferred_successors=(3, 1)),
    FetchRequest(replica_id=3, current_leader_epoch=4, fetch_offset=17, last_fetched_epoch=3,
                 max_wait_ticks=5, max_bytes=65536),
    FetchSnapshotRequest(replica_id=3, current_leader_epoch=4, snapshot_id=SnapshotId(10, 2),
                         position=64, max_bytes=1024),
]


def _round_trip_request(message):
    api_key, request = wire.encode_request(message, 3, "cluster-a", tick_ms=100)
    version = wire.RAFT_API_VERSIONS[api_key][1]
    data = codec.encode(request, version)
    decoded, end = codec.decode(wire.REQUEST_CLASSES[api_key], version, data)
    assert end == len(data)
    return wire.decode_request(api_key, decoded, "cluster-a", tick_ms=100)


@pytest.mark.parametrize("message", REQUESTS, ids=lambda m: type(m).__name__)
def test_requests_round_trip(message) -> None:
    source, decoded = _round_trip_request(message)
    assert decoded == message
    assert source == {VoteRequest: 2, BeginQuorumEpochRequest: 2, EndQuorumEpochRequest: 2,
                      FetchRequest: 3, FetchSnapshotRequest: 3}[type(message)]


RESPONSES = [
    (REQUESTS[1], VoteResponse(0, 2, 4, True, pre_vote=True, sequence=9)),
    (REQUESTS[0], VoteResponse(74, 1, 5, False, sequence=9)),
    (REQUESTS[2], BeginQuorumEpochResponse(0, 2, 4, sequence=9)),
    (REQUESTS[3], EndQuorumEpochResponse(0, 2, 4, sequence=9)),
    (REQUESTS[4], FetchResponse(0, 2, 4, 15, 0, 17, batches=(
        Batch(17, 4, (b"a", b"bc")), Batch(19, 4, (b"lc",), control=True)), sequence=9)),
    (REQUESTS[4], FetchResponse(0, 2, 4, -1, 0, 17, diverging_epoch=OffsetAndEpoch(3, 12),
                                sequence=9)),
    (REQUESTS[4], FetchResponse(0, 2, 4, 40, 30, 17, snapshot_id=SnapshotId(30, 3),
                                sequence=9)),
    (REQUESTS[5], FetchSnapshotResponse(0, 2, 4, SnapshotId(10, 2), 100, 64, b"xyz",
                                        sequence=9)),
]


@pytest.mark.parametrize(("request_message", "message"), RESPONSES,
                         ids=lambda m: type(m).__name__)
def test_responses_round_trip_and_keep_the_request_echoes(request_message, message) -> None:
    from dataclasses import replace

    request = replace(request_message, sequence=9)
    api_key = wire.encode_request(request, 3, "c", tick_ms=100)[0]
    version = wire.RAFT_API_VERSIONS[api_key][1]
    data = codec.encode(wire.encode_response(message, timestamp_ms=1000), version)
    decoded, _ = codec.decode(wire.RESPONSE_CLASSES[api_key], version, data)
    assert wire.decode_response(api_key, decoded, request) == message


def test_a_request_for_another_cluster_is_refused() -> None:
    api_key, request = wire.encode_request(REQUESTS[0], 3, "cluster-a", tick_ms=100)
    with pytest.raises(wire.WireError) as error:
        wire.decode_request(api_key, request, "cluster-b", tick_ms=100)
    assert error.value.error_code == 104  # INCONSISTENT_CLUSTER_ID
