"""Thin produce/consume/offset adapters over the five real Kafka clients, one shape for all.

Every producer takes a list of `OutRecord` and returns the acknowledged offsets in send order
(None where the client cannot tell, e.g. acks=0 or kcat). Every consumer reads one partition by
assign + seek (no consumer group) and returns `ConsumedRecord`s, so tests can compare whole
records across clients. kafkajs has no group-less assign; `consume_kafkajs` uses a group and
is only called by tests that first check the broker advertises JoinGroup.

Adapters never retry or swallow errors: a failed delivery raises `ClientError` with the
client's own error text, so a test failure names the client and the error.

Quirks handled here, once:
* confluent-kafka (2.16) refuses to build a Consumer without `group.id` ("group.id must be
  set"), so the assign-style consumer sets a unique, never-joined group id with auto-commit
  off. librdkafka then may send FindCoordinator in the background; it never joins.
* librdkafka (confluent-kafka and kcat) defaults to `isolation.level=read_committed`; we keep
  the default on purpose, so Fetch and ListOffsets with isolation_level=1 are exercised.
* kcat cannot set per-record timestamps, and its `-H` headers apply to every record.
* kafka-python 3.0 is idempotent by default (InitProducerId + acks=all); with acks 0/1 it
  silently turns idempotence off unless the caller asked for it explicitly.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

COMPAT_DIR = Path(__file__).resolve().parent
REPO_ROOT = COMPAT_DIR.parent
JS_DIR = COMPAT_DIR / "js"
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
CLIENT_TIMEOUT_S = 30.0


class ClientError(AssertionError):
    """A client reported an error or did not finish before its deadline."""


@dataclass(frozen=True)
class OutRecord:
    """A record to produce. timestamp_ms None lets the client stamp CreateTime itself."""

    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int | None = None


@dataclass(frozen=True)
class ConsumedRecord:
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int
    timestamp_type: str  # "create" or "append"

    def payload(self) -> tuple[bytes | None, bytes | None, tuple[tuple[str, bytes], ...]]:
        return (self.key, self.value, self.headers)


@dataclass
class ProduceResult:
    offsets: list[int | None]
    client: str
    details: dict = field(default_factory=dict)


def unique_topic(prefix: str = "compat") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def make_records(
    count: int,
    *,
    base_timestamp_ms: int | None = None,
    headers: Sequence[tuple[str, bytes]] | None = None,
    value_size: int = 120,
    seed: str = "r",
) -> list[OutRecord]:
    """Printable, compressible, distinct records (kcat's line format needs printable text)."""
    records = []
    for index in range(count):
        filler = (f"{seed}{index:06d}-" * (value_size // 8 + 1))[: max(value_size, 8)]
        record_headers = tuple(headers) if headers is not None else (
            ("trace", f"t-{index}".encode()),
            ("source", b"compat"),
        )
        timestamp = None if base_timestamp_ms is None else base_timestamp_ms + index * 7
        records.append(
            OutRecord(f"key-{index}".encode(), filler.encode(), record_headers, timestamp)
        )
    return records


def now_ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------------------------------------
# confluent-kafka


def produce_confluent(
    bootstrap: str,
    topic: str,
    records: Iterable[OutRecord],
    *,
    compression: str = "none",
    acks: str = "all",
    partition: int = 0,
    config: dict | None = None,
    timeout_s: float = CLIENT_TIMEOUT_S,
) -> ProduceResult:
    from confluent_kafka import Producer

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": acks,
        "compression.type": compression,
        "linger.ms": 5,
        "client.id": "compat-confluent-producer",
        **(config or {}),
    })
    records = list(records)
    reports: list[tuple[object, int | None]] = [None] * len(records)  # type: ignore[list-item]

    def on_delivery_for(index: int):
        def on_delivery(error, message) -> None:
            reports[index] = (error, message.offset())
        return on_delivery

    for index, record in enumerate(records):
        while True:
            try:
                producer.produce(
                    topic,
                    value=record.value,
                    key=record.key,
                    partition=partition,
                    timestamp=record.timestamp_ms or 0,
                    headers=list(record.headers) or None,
                    on_delivery=on_delivery_for(index),
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(timeout_s)
    if remaining:
        raise ClientError(f"confluent-kafka: {remaining} records undelivered after {timeout_s}s")
    failures = [(i, r[0]) for i, r in enumerate(reports) if r is None or r[0] is not None]
    if failures:
        raise ClientError(f"confluent-kafka delivery failures (index, error): {failures[:5]}")
    offsets = [None if acks == "0" else r[1] for r in reports]  # type: ignore[index]
    return ProduceResult(offsets, "confluent-kafka")


def consume_confluent(
    bootstrap: str,
    topic: str,
    count: int,
    *,
    partition: int = 0,
    start_offset: int = 0,
    config: dict | None = None,
    timeout_s: float = CLIENT_TIMEOUT_S,
) -> list[ConsumedRecord]:
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"compat-assign-only-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "client.id": "compat-confluent-consumer",
        "fetch.wait.max.ms": 100,
        **(config or {}),
    })
    out: list[ConsumedRecord] = []
    try:
        consumer.assign([TopicPartition(topic, partition, start_offset)])
        deadline = time.monotonic() + timeout_s
        while len(out) < count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                continue
            if message.error():
                raise ClientError(f"confluent-kafka consume error: {message.error()}")
            timestamp_type, timestamp = message.timestamp()
            out.append(ConsumedRecord(
                offset=message.offset(),
                key=message.key(),
                value=message.value(),
                headers=tuple(message.headers() or ()),
                timestamp_ms=timestamp,
                timestamp_type="append" if timestamp_type == TIMESTAMP_LOG_APPEND_TIME else "create",
            ))
    finally:
        consumer.close()
    if len(out) < count:
        raise ClientError(f"confluent-kafka consumed {len(out)}/{count} records in {timeout_s}s")
    return out


def watermarks_confluent(bootstrap: str, topic: str, partition: int = 0) -> tuple[int, int]:
    """(log start offset, high watermark) via ListOffsets earliest/latest."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"compat-watermarks-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
    })
    try:
        return consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=CLIENT_TIMEOUT_S, cached=False
        )
    finally:
        consumer.close()


# ---------------------------------------------------------------------------------------------
# kafka-python


def produce_kafka_python(
    bootstrap: str,
    topic: str,
    records: Iterable[OutRecord],
    *,
    compression: str = "none",
    acks: str = "all",
    partition: int = 0,
    config: dict | None = None,
    timeout_s: float = CLIENT_TIMEOUT_S,
) -> ProduceResult:
    from kafka import KafkaProducer

    producer = KafkaProducer(**{
        "bootstrap_servers": bootstrap,
        "acks": {"0": 0, "1": 1, "all": "all"}[acks],
        "compression_type": None if compression == "none" else compression,
        "linger_ms": 5,
        "client_id": "compat-kafka-python-producer",
        **(config or {}),
    })
    try:
        futures = [
            producer.send(
                topic,
                value=record.value,
                key=record.key,
                partition=partition,
                timestamp_ms=record.timestamp_ms,
                headers=list(record.headers),
            )
            for record in records
        ]
        producer.flush(timeout=timeout_s)
        offsets: list[int | None] = []
        for index, future in enumerate(futures):
            try:
                metadata = future.get(timeout=timeout_s)
            except Exception as error:  # the client's own exception type names the error
                raise ClientError(
                    f"kafka-python delivery failure at index {index}: {error!r}"
                ) from error
            offsets.append(None if acks == "0" else metadata.offset)
        details = {"idempotent": producer._transaction_manager is not None}
    finally:
        producer.close(timeout=5)
    return ProduceResult(offsets, "kafka-python", details)


def _kafka_python_consumer(bootstrap: str, **config):
    from kafka import KafkaConsumer

    return KafkaConsumer(**{
        "bootstrap_servers": bootstrap,
        "group_id": None,
        "enable_auto_commit": False,
        "client_id": "compat-kafka-python-consumer",
        "fetch_max_wait_ms": 100,
        **config,
    })


def consume_kafka_python(
    bootstrap: str,
    topic: str,
    count: int,
    *,
    partition: int = 0,
    start_offset: int = 0,
    config: dict | None = None,
    timeout_s: float = CLIENT_TIMEOUT_S,
) -> list[ConsumedRecord]:
    from kafka import TopicPartition

    consumer = _kafka_python_consumer(bootstrap, **(config or {}))
    out: list[ConsumedRecord] = []
    try:
        topic_partition = TopicPartition(topic, partition)
        consumer.assign([topic_partition])
        consumer.seek(topic_partition, start_offset)
        deadline = time.monotonic() + timeout_s
        while len(out) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                for message in batch:
                    out.append(ConsumedRecord(
                        offset=message.offset,
                        key=message.key,
                        value=message.value,
                        headers=tuple((k, v) for k, v in (message.headers or ())),
                        timestamp_ms=message.timestamp,
                        timestamp_type="append" if message.timestamp_type == 1 else "create",
                    ))
    finally:
        consumer.close()
    if len(out) < count:
        raise ClientError(f"kafka-python consumed {len(out)}/{count} records in {timeout_s}s")
    return out


# ---------------------------------------------------------------------------------------------
# aiokafka


def produce_aiokafka(
    bootstrap: str,
    topic: str,
    records: Iterable[OutRecord],
    *,
    compression: str = "none",
    acks: str = "all",
    partition: int = 0,
    config: dict | None = None,
    timeout_s: float = CLIENT_TIMEOUT_S,
) -> ProduceResult:
    from aiokafka import AIOKafkaProducer

    records = list(records)

    async def run() -> list[int | None]:
        producer = AIOKafkaProducer(**{
            "bootstrap_servers": bootstrap,
            "acks": {"0": 0, "1": 1, "all": "all"}[acks],
            "compression_type": None if compression == "none" else compression,
            "linger_ms": 5,
            "client_id": "compat-aiokafka-producer",
            **(config or {}),
        })
        await producer.start()
        try:
            futures = [
                await producer.send(
                    topic,
                    value=record.value,
                    key=record.key,
                    partition=partition,
                    timestamp_ms=record.timestamp_ms,
                    headers=list(record.headers),
                )
                for record in records
            ]
            results = await asyncio.wait_for(asyncio.gather(*futures), timeout_s)
        finally:
            await producer.stop()
        return [None if acks == "0" else metadata.offset for metadata in results]

    try:
        return ProduceResult(asyncio.run(run()), "aiokafka")
    except ClientError:
        raise
    except Exception as error:
        raise ClientError(f"aiokafka produce failed: {error!r}") from error


def consume_aiokafka(
    bootstrap: str,
    topic: str,
    count: int,
    *,
    partition: int = 0,
    start_offset: int = 0,
    config: dict | None = None,
    timeout_s: float = CLIENT_TIMEOUT_S,
) -> list[ConsumedRecord]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def run() -> list[ConsumedRecord]:
        consumer = AIOKafkaConsumer(**{
            "bootstrap_servers": bootstrap,
            "group_id": None,
            "enable_auto_commit": False,
            "client_id": "compat-aiokafka-consumer",
            "fetch_max_wait_ms": 100,
            **(config or {}),
        })
        await consumer.start()
        out: list[ConsumedRecord] = []
        try:
            topic_partition = TopicPartition(topic, partition)
            consumer.assign([topic_partition])
            consumer.seek(topic_partition, start_offset)
            deadline = time.monotonic() + timeout_s
            while len(out) < count and time.monotonic() < deadline:
                batches = await consumer.getmany(topic_partition, timeout_ms=200)
                for message in batches.get(topic_partition, []):
                    out.append(ConsumedRecord(
                        offset=message.offset,
                        key=message.key,
                        value=message.value,
                        headers=tuple((k, v) for k, v in (message.headers or ())),
                        timestamp_ms=message.timestamp,
                        timestamp_type="append" if message.timestamp_type == 1 else "create",
                    ))
        finally:
            await consumer.stop()
        return out

    out = asyncio.run(run())
    if len(out) < count:
        raise ClientError(f"aiokafka consumed {len(out)}/{count} records in {timeout_s}s")
    return out


# ---------------------------------------------------------------------------------------------
# kcat (librdkafka 2.0.2 as Debian ships it)

KCAT_KEY_DELIMITER = "\t"


def produce_kcat(
    bootstrap: str,
    topic: str,
    records: Iterable[OutRecord],
    *,
    compression: str = "none",
    acks: str = "all",
    partition: int = 0,
    config: dict | None = None,
    timeout_s: float = CLIENT_TIMEOUT_S,
) -> ProduceResult:
    """kcat -P: one line per record, key and value split by a tab, same headers on all."""
    records = list(records)
    headers = records[0].headers if records else ()
    lines = []
    for record in records:
        assert record.headers == headers, "kcat -H applies the same headers to every record"
        assert record.timestamp_ms is None, "kcat cannot set per-record timestamps"
        assert record.key is not None and record.value is not None
        for part in (record.key, record.value):
            assert b"\n" not in part and KCAT_KEY_DELIMITER.encode() not in part
        lines.append(record.key + KCAT_KEY_DELIMITER.encode() + record.value)
    argv = [
        "kcat", "-P", "-b", bootstrap, "-t", topic, "-p", str(partition),
        "-K", KCAT_KEY_DELIMITER, "-z", compression,
        "-X", f"acks={'-1' if acks == 'all' else acks}",
        "-X", "client.id=compat-kcat-producer",
        "-X", "linger.ms=5",
    ]
    for name, value in (config or {}).items():
        argv += ["-X", f"{name}={value}"]
    for name, value in headers:
        argv += ["-H", f"{name}={value.decode()}"]
    completed = subprocess.run(
        argv, input=b"\n".join(lines) + b"\n", capture_output=True, timeout=timeout_s
    )
    stderr = completed.stderr.decode(errors="replace")
    # kcat prints "% Delivery failed for message: ..." per failed record; treat it as fatal
    # even if the exit code says otherwise.
    if completed.returncode != 0 or "delivery failed" in stderr.lower():
        raise ClientError(f"kcat -P exit {completed.returncode}: {stderr.strip()}")
    return ProduceResult([None] * len(records), "kcat", {"stderr": stderr})


def consume_kcat(
    bootstrap: str,
    topic: str,
    count: int,
    *,
    partition: int = 0,
    start_offset: int = 0,
    config: dict | None = None,
    timeout_s: float = CLIENT_TIMEOUT_S,
) -> list[ConsumedRecord]:
    """kcat -C -J -e: assign-style (no -G), exits at end of partition or after `count`."""
    argv = [
        "kcat", "-C", "-b", bootstrap, "-t", topic, "-p", str(partition),
        "-o", str(start_offset), "-c", str(count), "-e", "-J", "-q",
        "-X", "client.id=compat-kcat-consumer",
    ]
    for name, value in (config or {}).items():
        argv += ["-X", f"{name}={value}"]
    completed = subprocess.run(argv, capture_output=True, timeout=timeout_s)
    if completed.returncode != 0:
        raise ClientError(
            f"kcat -C exit {completed.returncode}: {completed.stderr.decode(errors='replace')}"
        )
    out = []
    for line in completed.stdout.decode().splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        raw_headers = item.get("headers") or []
        # kcat 1.7 writes headers as a flat [name, value, ...] array; its help text shows an
        # object, so accept both.
        pairs = (raw_headers.items() if isinstance(raw_headers, dict) else
                 zip(raw_headers[0::2], raw_headers[1::2]))
        headers = tuple((name, None if v is None else v.encode()) for name, v in pairs)
        out.append(ConsumedRecord(
            offset=item["offset"],
            key=None if item.get("key") is None else item["key"].encode(),
            value=None if item.get("payload") is None else item["payload"].encode(),
            headers=headers,
            timestamp_ms=item["ts"],
            timestamp_type={"create": "create", "logappend": "append"}.get(item["tstype"], item["tstype"]),
        ))
    if len(out) < count:
        raise ClientError(
            f"kcat consumed {len(out)}/{count} records; stderr: "
            f"{completed.stderr.decode(errors='replace')}"
        )
    return out


def kcat_query_offset_for_time(
    bootstrap: str, topic: str, partition: int, timestamp_ms: int, client_id: str = "compat-kcat"
) -> int:
    """kcat -Q: the offset of the first record with timestamp >= timestamp_ms (-1 if none)."""
    completed = subprocess.run(
        ["kcat", "-Q", "-b", bootstrap, "-t", f"{topic}:{partition}:{timestamp_ms}",
         "-X", f"client.id={client_id}"],
        capture_output=True, timeout=CLIENT_TIMEOUT_S,
    )
    if completed.returncode != 0:
        raise ClientError(f"kcat -Q exit {completed.returncode}: {completed.stderr.decode()}")
    # Output: "<topic> [<partition>] offset <n>"
    text = completed.stdout.decode().strip()
    return int(text.rsplit("offset", 1)[1].split()[0])


# ---------------------------------------------------------------------------------------------
# kafkajs (node scripts in compat-tests/js, JSON in on stdin, JSON out on stdout)


def run_node_script(script: str, payload: dict, timeout_s: float = 60.0) -> dict:
    completed = subprocess.run(
        ["node", str(JS_DIR / script)],
        input=json.dumps(payload).encode(),
        capture_output=True,
        timeout=timeout_s,
        cwd=REPO_ROOT,
    )
    stderr = completed.stderr.decode(errors="replace")
    if completed.returncode != 0:
        raise ClientError(f"kafkajs {script} exit {completed.returncode}: {stderr.strip()[-3000:]}")
    try:
        return json.loads(completed.stdout)
    except json.JSONDecodeError as error:
        raise ClientError(f"kafkajs {script} printed non-JSON: {completed.stdout[:500]!r}") from error


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def produce_kafkajs(
    bootstrap: str,
    topic: str,
    records: Iterable[OutRecord],
    *,
    compression: str = "none",
    acks: str = "all",
    partition: int = 0,
    idempotent: bool = False,
    timeout_s: float = 60.0,
    security: dict | None = None,
) -> ProduceResult:
    """``security``: {"ssl": {...}, "sasl": {...}} as js/common.js reads them."""
    records = list(records)
    result = run_node_script("produce.js", {
        **(security or {}),
        "idempotent": idempotent,
        "brokers": [bootstrap],
        "topic": topic,
        "partition": partition,
        "compression": compression,
        "acks": {"0": 0, "1": 1, "all": -1}[acks],
        "messages": [
            {
                "key": _b64(r.key),
                "value": _b64(r.value),
                "headers": [[name, _b64(value)] for name, value in r.headers],
                "timestamp": r.timestamp_ms,
            }
            for r in records
        ],
    }, timeout_s)
    # kafkajs answers one baseOffset per send; records in one send are consecutive.
    offsets: list[int | None] = []
    if acks == "0":
        offsets = [None] * len(records)
    else:
        base_offset = int(result["metadata"][0]["baseOffset"])
        offsets = list(range(base_offset, base_offset + len(records)))
    return ProduceResult(offsets, "kafkajs", result)


def consume_kafkajs(
    bootstrap: str, topic: str, count: int, *, timeout_s: float = 60.0,
    security: dict | None = None,
) -> list[ConsumedRecord]:
    """Group-based (kafkajs has no assign): subscribe fromBeginning, read `count` records."""
    result = run_node_script("consume.js", {
        **(security or {}),
        "brokers": [bootstrap],
        "topic": topic,
        "groupId": f"compat-kafkajs-{uuid.uuid4().hex[:8]}",
        "count": count,
        "timeoutMs": int(timeout_s * 1000) - 5000,
    }, timeout_s)
    return [
        ConsumedRecord(
            offset=int(item["offset"]),
            key=_unb64(item["key"]),
            value=_unb64(item["value"]),
            headers=tuple((name, _unb64(value)) for name, value in item["headers"]),
            timestamp_ms=int(item["timestamp"]),
            timestamp_type="create",  # kafkajs does not expose the timestamp type
        )
        for item in result["records"]
    ]


def kafkajs_admin(bootstrap: str, operations: list[dict], timeout_s: float = 60.0) -> list[dict]:
    """Run admin operations in order; each result is {"ok": value} or {"error": {...}}."""
    return run_node_script("admin.js", {"brokers": [bootstrap], "operations": operations},
                           timeout_s)["results"]


# ---------------------------------------------------------------------------------------------
# registry

PRODUCERS = {
    "confluent-kafka": produce_confluent,
    "kafka-python": produce_kafka_python,
    "aiokafka": produce_aiokafka,
    "kcat": produce_kcat,
    "kafkajs": produce_kafkajs,
}
ASSIGN_CONSUMERS = {
    "confluent-kafka": consume_confluent,
    "kafka-python": consume_kafka_python,
    "aiokafka": consume_aiokafka,
    "kcat": consume_kcat,
}


def kcat_available() -> bool:
    return shutil.which("kcat") is not None


def kafkajs_available() -> bool:
    return shutil.which("node") is not None and (REPO_ROOT / "node_modules" / "kafkajs").is_dir()


def client_supports_producer_timestamps(client: str) -> bool:
    return client != "kcat"


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false", "no")


REQUIRE_ALL_CLIENTS = env_flag("STREAMBUS_REQUIRE_ALL_CLIENTS")


def client_missing(reason: str) -> None:
    """Skip locally, fail when CI requires every client (STREAMBUS_REQUIRE_ALL_CLIENTS=1)."""
    import pytest

    if REQUIRE_ALL_CLIENTS:
        pytest.fail(f"{reason} (STREAMBUS_REQUIRE_ALL_CLIENTS=1 forbids skipping)", pytrace=False)
    pytest.skip(reason)


def require_client(client: str) -> None:
    """Skip or fail (see client_missing) when a non-Python client is not installed."""
    if client == "kcat" and not kcat_available():
        client_missing("kcat not on PATH (apt-get install kcat)")
    if client == "kafkajs" and not kafkajs_available():
        client_missing("kafkajs not installed (node + `npm ci` in the repo root)")
