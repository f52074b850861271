"""Capture real clients' request frames as golden files for the codec tests (tests/data/frames/).

Runs a small workload with each of the five clients (kafka-python, aiokafka, confluent-kafka,
kcat, kafkajs) against a broker started with STREAMBUS_CAPTURE_FRAMES_DIR=DIR. The broker
writes every request frame it receives as `<api>_v<ver>_<client_id>.bin`; each client here
uses its own name as client id, so the files say which client sent what.

    python compat-tests/capture_frames.py --out /tmp/frames
    # review, then copy into tests/data/frames/

A client whose workload fails (an API the broker does not serve yet) is reported and the
others still run: the frames it did send are still captured. Exits 1 if no frame was written,
which means the broker does not honour STREAMBUS_CAPTURE_FRAMES_DIR yet.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import compat_clients as clients  # noqa: E402
import raw_wire  # noqa: E402
from broker_process import Broker  # noqa: E402

RECORDS = clients.make_records(5, base_timestamp_ms=clients.now_ms() - 1000, seed="golden")
KCAT_RECORDS = clients.make_records(5, headers=[("golden", b"1")], seed="golden")


def workload_kafka_python(bootstrap: str) -> None:
    from kafka import KafkaConsumer, TopicPartition
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

    topic = clients.unique_topic("golden-kafka-python")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="kafka-python")
    try:
        admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"retention.ms": "3600000"})])
        admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        config = {"client_id": "kafka-python"}
        clients.produce_kafka_python(bootstrap, topic, RECORDS, compression="gzip", config=config)
        clients.consume_kafka_python(bootstrap, topic, len(RECORDS), config=config)
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="kafka-python")
        consumer.offsets_for_times({TopicPartition(topic, 0): RECORDS[2].timestamp_ms})
        consumer.close()
        admin.delete_topics([topic])
    finally:
        admin.close()


def workload_aiokafka(bootstrap: str) -> None:
    topic = clients.unique_topic("golden-aiokafka")
    config = {"client_id": "aiokafka"}
    clients.produce_aiokafka(bootstrap, topic, RECORDS, compression="lz4", config=config)
    clients.consume_aiokafka(bootstrap, topic, len(RECORDS), config=config)

    async def offsets_for_times() -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, client_id="aiokafka")
        await consumer.start()
        try:
            await consumer.offsets_for_times({TopicPartition(topic, 0): RECORDS[2].timestamp_ms})
        finally:
            await consumer.stop()

    asyncio.run(offsets_for_times())


def workload_confluent(bootstrap: str) -> None:
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

    topic = clients.unique_topic("golden-confluent")
    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "confluent-kafka"})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=15)
    resource = ConfigResource(ResourceType.TOPIC, topic)
    admin.describe_configs([resource])[resource].result(timeout=15)
    config = {"client.id": "confluent-kafka"}
    clients.produce_confluent(bootstrap, topic, RECORDS, compression="zstd",
                              config={**config, "enable.idempotence": True})
    clients.consume_confluent(bootstrap, topic, len(RECORDS), config=config)
    admin.delete_topics([topic])[topic].result(timeout=15)


def workload_kcat(bootstrap: str) -> None:
    topic = clients.unique_topic("golden-kcat")
    config = {"client.id": "kcat"}
    clients.produce_kcat(bootstrap, topic, KCAT_RECORDS, compression="snappy", config=config)
    clients.consume_kcat(bootstrap, topic, len(KCAT_RECORDS), config=config)
    clients.kcat_query_offset_for_time(bootstrap, topic, 0, clients.now_ms() - 60_000, "kcat")


def workload_kafkajs(bootstrap: str) -> None:
    topic = clients.unique_topic("golden-kafkajs")
    clients.run_node_script("admin.js", {"brokers": [bootstrap], "clientId": "kafkajs",
                                         "operations": [
        {"op": "createTopics", "args": {"topics": [{"topic": topic, "numPartitions": 1}]}},
        {"op": "describeTopicConfigs", "args": {"topic": topic}},
    ]})
    clients.run_node_script("produce.js", {
        "brokers": [bootstrap], "clientId": "kafkajs", "topic": topic, "partition": 0,
        "compression": "gzip", "acks": -1, "idempotent": False,
        "messages": [{"key": clients._b64(r.key), "value": clients._b64(r.value),
                      "headers": [[n, clients._b64(v)] for n, v in r.headers],
                      "timestamp": r.timestamp_ms} for r in RECORDS],
    })
    if 11 in raw_wire.api_versions(bootstrap):  # kafkajs consumes only in a group
        clients.run_node_script("consume.js", {
            "brokers": [bootstrap], "clientId": "kafkajs", "topic": topic,
            "groupId": "golden-kafkajs", "count": len(RECORDS), "timeoutMs": 20000,
        })


PROBE_CLIENT_ID = "compat-probe"
WORKLOADS = {
    "kafka-python": workload_kafka_python,
    "aiokafka": workload_aiokafka,
    "confluent-kafka": workload_confluent,
    "kcat": workload_kcat,
    "kafkajs": workload_kafkajs,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the .bin files")
    parser.add_argument("--clients", default=",".join(WORKLOADS), help="comma-separated subset")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    failed = []
    with tempfile.TemporaryDirectory(prefix="streambus-capture-") as work_dir:
        broker = Broker(Path(work_dir),
                        env={"STREAMBUS_CAPTURE_FRAMES_DIR": str(args.out.resolve())}).start()
        try:
            for name in args.clients.split(","):
                try:
                    WORKLOADS[name](broker.bootstrap)
                    print(f"{name}: workload done")
                except Exception:
                    failed.append(name)
                    print(f"{name}: workload FAILED (frames sent so far are kept)\n"
                          f"{traceback.format_exc()}", file=sys.stderr)
        finally:
            broker.finish()

    # The kafkajs workload's ApiVersions probe (raw_wire) is not a client's frame.
    for probe_frame in args.out.glob(f"*_{PROBE_CLIENT_ID}.bin"):
        probe_frame.unlink()
    frames = sorted(args.out.glob("*.bin"))
    for path in frames:
        print(f"{path.name}\t{path.stat().st_size} B")
    if not frames:
        print("no frames captured: does the broker honour STREAMBUS_CAPTURE_FRAMES_DIR?",
              file=sys.stderr)
        return 1
    print(f"{len(frames)} frames in {args.out}; failed workloads: {failed or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
