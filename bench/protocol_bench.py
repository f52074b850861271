"""Micro-benchmark of the hot protocol paths: decode Produce, encode Produce/Fetch/Metadata responses.

Method: build one fixed message per case (1 topic x 1 partition with a 1 KiB
records blob for Produce; 1 x 1 with a 64 KiB blob for Fetch; 10 topics x 3
partitions for Metadata), warm the compiled codec once, then report the best
per-operation time over several timeit repeats (best-of is the least noisy on a
shared machine). Run: ``python bench/protocol_bench.py [--number N]``.
"""

from __future__ import annotations

import argparse
import sys
import timeit
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streambus.protocol import codec, headers  # noqa: E402
from streambus.protocol.messages import (  # noqa: E402
    FetchResponse,
    MetadataResponse,
    ProduceRequest,
    ProduceResponse,
)


def produce_request(records_bytes: int) -> ProduceRequest:
    return ProduceRequest(
        transactional_id=None,
        acks=-1,
        timeout_ms=30_000,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name="orders",
                partition_data=[ProduceRequest.PartitionProduceData(index=0, records=bytes(records_bytes))],
            )
        ],
    )


def produce_response() -> ProduceResponse:
    return ProduceResponse(
        responses=[
            ProduceResponse.TopicProduceResponse(
                name="orders",
                partition_responses=[ProduceResponse.PartitionProduceResponse(index=0, base_offset=1234, log_start_offset=0)],
            )
        ],
        throttle_time_ms=0,
    )


def fetch_response(records_bytes: int) -> FetchResponse:
    return FetchResponse(
        session_id=0,
        responses=[
            FetchResponse.FetchableTopicResponse(
                topic="orders",
                partitions=[
                    FetchResponse.PartitionData(
                        partition_index=0,
                        high_watermark=5000,
                        last_stable_offset=5000,
                        log_start_offset=0,
                        records=memoryview(bytes(records_bytes)),
                    )
                ],
            )
        ],
    )


def metadata_response(topic_count: int, partition_count: int) -> MetadataResponse:
    brokers = [MetadataResponse.MetadataResponseBroker(node_id=i, host=f"broker-{i}.local", port=9092, rack=None) for i in range(3)]
    topics = []
    for t in range(topic_count):
        partitions = [
            MetadataResponse.MetadataResponsePartition(
                partition_index=p,
                leader_id=p % 3,
                leader_epoch=7,
                replica_nodes=[0, 1, 2],
                isr_nodes=[0, 1, 2],
                offline_replicas=[],
            )
            for p in range(partition_count)
        ]
        topics.append(
            MetadataResponse.MetadataResponseTopic(
                name=f"topic-{t}", topic_id=uuid.UUID(int=t + 1), partitions=partitions
            )
        )
    return MetadataResponse(brokers=brokers, cluster_id="cluster-1", controller_id=0, topics=topics)


def cases() -> list[tuple[str, object]]:
    produce_v9 = codec.encode(produce_request(1024), 9)
    produce_v7 = codec.encode(produce_request(1024), 7)
    frame = headers.encode_request_header(0, 9, 42, "bench-client") + produce_v9
    pr, fr, mr = produce_response(), fetch_response(64 * 1024), metadata_response(10, 3)
    metadata_v12 = codec.encode(mr, 12)
    return [
        ("decode ProduceRequest v9 (1x1, 1 KiB)", lambda: codec.decode(ProduceRequest, 9, produce_v9)),
        ("decode ProduceRequest v7 (1x1, 1 KiB)", lambda: codec.decode(ProduceRequest, 7, produce_v7)),
        ("decode header + ProduceRequest v9", lambda: codec.decode_request(0, 9, frame, headers.decode_request_header(frame)[1])),
        ("encode ProduceResponse v9 (1x1)", lambda: codec.encode(pr, 9)),
        ("encode FetchResponse v12 (1x1, 64 KiB) -> bytes", lambda: codec.encode(fr, 12)),
        ("encode_parts FetchResponse v12 (1x1, 64 KiB)", lambda: codec.encode_parts(fr, 12)),
        ("encode MetadataResponse v12 (10 topics x 3)", lambda: codec.encode(mr, 12)),
        ("decode MetadataResponse v12 (10 topics x 3)", lambda: codec.decode(MetadataResponse, 12, metadata_v12)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--number", type=int, default=20_000, help="operations per repeat")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    # Calibration: on a shared machine the absolute numbers move with load, so print
    # the cost of a bare loop alongside them (about 15-25 ms on an idle laptop core).
    loop_ms = min(timeit.repeat("for _ in r: pass", setup="r = range(10**6)", number=1, repeat=5)) * 1e3
    print(f"python {sys.version.split()[0]}; best of {args.repeat} x {args.number} ops; 1M empty loop = {loop_ms:.1f} ms")
    for name, fn in cases():
        fn()  # compile the codec for this class/version outside the timing
        best = min(timeit.repeat(fn, number=args.number, repeat=args.repeat)) / args.number
        print(f"{name:52s} {best * 1e6:8.2f} us/op")
    return 0


if __name__ == "__main__":
    sys.exit(main())
