"""Per-request broker CPU cost, measured in-process: frame in -> encoded response out.

Method: start a BrokerNode on a temporary data dir (listener on a free loopback port, not used),
create 10 topics x 3 partitions, then feed pre-encoded request frames straight to the
dispatcher, as the connection would, and time N calls of each.  This isolates the broker's own
work (header + body decode, handler, log append/read, response encode) from sockets and clients.

    python bench/dispatch_bench.py [--iterations 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streambus.broker.node import BrokerNode  # noqa: E402
from streambus.config import BrokerConfig  # noqa: E402
from streambus.protocol import codec  # noqa: E402
from streambus.protocol.api_keys import ApiKey  # noqa: E402
from streambus.protocol.headers import encode_request_header  # noqa: E402
from streambus.protocol.messages.create_topics import CreateTopicsRequest  # noqa: E402
from streambus.protocol.messages.fetch import FetchRequest  # noqa: E402
from streambus.protocol.messages.metadata import MetadataRequest  # noqa: E402
from streambus.protocol.messages.produce import ProduceRequest  # noqa: E402
from streambus.protocol.records.record import make_batch  # noqa: E402


class _Connection:
    connection_id = 1
    client_host = "127.0.0.1"
    principal = "User:ANONYMOUS"
    listener_name = "PLAINTEXT"
    sasl = None

    def protocol_error(self, reason: str, detail: str) -> None:
        raise AssertionError(f"{reason}: {detail}")


def _frame(api_key: int, version: int, request: object) -> bytes:
    return encode_request_header(api_key, version, 7, "bench") + codec.encode_request(
        api_key, version, request)


def _time(label: str, dispatcher, frame: bytes, iterations: int) -> None:
    connection = _Connection()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(iterations):
            # A fresh writable buffer each time, as the framing layer hands out.
            result = dispatcher.handle_frame(connection, memoryview(bytearray(frame)))
        best = min(best, time.perf_counter() - started)
        assert isinstance(result, list), result
    print(f"{label:<58} {best / iterations * 1e6:8.2f} us/request")


async def main(iterations: int, acls: bool = False) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        # --acls: the authorizer on, with 1,000 unrelated ACLs and a prefixed ALLOW for the
        # bench topics, so every request below also pays its ACL checks.
        acl_entries = [{"principal": f"User:other-{i}", "operations": ["read", "write"],
                        "resources": [f"topic:unrelated-{i}"]} for i in range(500)]
        acl_entries.append({"principal": "User:ANONYMOUS",
                            "operations": ["all"], "resources": ["topic:bench-*", "cluster"]})
        config = BrokerConfig(data_dir=Path(data_dir), listen="127.0.0.1:0",
                              http_listen="127.0.0.1:0", acls=acl_entries if acls else ())
        node = BrokerNode(config)
        await node.start()
        try:
            dispatcher = node.dispatcher
            connection = _Connection()
            topics = [f"bench-{i}" for i in range(10)]
            create = CreateTopicsRequest(topics=[
                CreateTopicsRequest.CreatableTopic(name=t, num_partitions=3, replication_factor=1)
                for t in topics])
            dispatcher.handle_frame(connection, memoryview(bytearray(
                _frame(ApiKey.CREATE_TOPICS, 7, create))))
            metadata = MetadataRequest(topics=None)
            _time("Metadata v12, all 10 topics x 3 partitions (cached)", dispatcher,
                  _frame(ApiKey.METADATA, 12, metadata), iterations)
            batch = make_batch([b"x" * 100] * 10)
            produce = ProduceRequest(acks=1, timeout_ms=1000, topic_data=[
                ProduceRequest.TopicProduceData(name=topics[0], partition_data=[
                    ProduceRequest.PartitionProduceData(index=0, records=batch)])])
            _time("Produce v9, acks=1, one 10 x 100 B batch (append to log)", dispatcher,
                  _frame(ApiKey.PRODUCE, 9, produce), iterations)
            big = make_batch([b"x" * 1024] * 64)
            produce_big = ProduceRequest(acks=1, timeout_ms=1000, topic_data=[
                ProduceRequest.TopicProduceData(name=topics[1], partition_data=[
                    ProduceRequest.PartitionProduceData(index=0, records=big)])])
            _time("Produce v9, acks=1, one 64 x 1 KiB batch (append to log)", dispatcher,
                  _frame(ApiKey.PRODUCE, 9, produce_big), iterations)
            fetch = FetchRequest(max_wait_ms=0, min_bytes=1, max_bytes=1 << 20,
                                 isolation_level=0, session_id=0, session_epoch=-1, topics=[
                FetchRequest.FetchTopic(topic=topics[1], partitions=[
                    FetchRequest.FetchPartition(partition=0, fetch_offset=0,
                                                partition_max_bytes=1 << 20)])])
            _time("Fetch v12, one partition, up to 1 MiB from offset 0", dispatcher,
                  _frame(ApiKey.FETCH, 12, fetch), max(iterations // 20, 100))
        finally:
            await node.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20000)
    parser.add_argument("--acls", action="store_true", help="with the authorizer on")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.iterations, arguments.acls))
