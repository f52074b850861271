"""StreamBus broker benchmark: produce/consume throughput and produce latency with confluent-kafka.

What it measures (one fresh topic per workload, single partition unless --partitions):

1. Produce throughput, records/s and MB/s of record values, for small records (default
   1,000,000 x 100 B) and large records (default 300,000 x 1 KiB), at acks=1 and acks=all.
   Producer: linger.ms=5, batch.size=1 MiB, compression none. The clock runs from the first
   produce() call until flush() returns, so every record is acknowledged when it stops.
2. Consume throughput: an assign-style consumer (no group) reads each produced topic from the
   beginning with large fetches; the clock runs from assign() to the last record.
3. Produce latency at a fixed rate (default 10,000 records/s for 10 s, 100 B records, acks=all):
   records are paced against a schedule, each delivery callback takes the time since its own
   produce() call, and p50/p99/max are printed.

How to run:

    python bench/broker_bench.py                          # starts its own broker (temp dir)
    python bench/broker_bench.py --small-count 100000 --large-count 30000 --latency-seconds 3
    python bench/broker_bench.py --bootstrap 127.0.0.1:9092   # an already-running broker

The output is Markdown: a machine line (nproc, CPU model, Python, librdkafka) then the tables;
paste it into a PR or issue as is. The benchmark client and the broker share the machine's
cores, and confluent-kafka's Python produce() call is itself a cost (roughly 1-2 µs/record),
so results on a 2-core box understate what the broker alone could do; compare runs on the
same machine only.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "compat-tests"))

MIB = 1024 * 1024


@dataclass
class Throughput:
    workload: str
    acks: str
    record_count: int
    record_size: int
    seconds: float

    def row(self) -> str:
        rate = self.record_count / self.seconds
        mb_per_s = self.record_count * self.record_size / self.seconds / 1e6
        return (f"| {self.workload} | {self.record_count:,} | {self.record_size} B | {self.acks} "
                f"| {self.seconds:.2f} | {rate:,.0f} | {mb_per_s:.1f} |")


def machine_line() -> str:
    import confluent_kafka

    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"Machine: nproc={os.cpu_count()}, CPU: {model}, Python {platform.python_version()}, "
            f"confluent-kafka {confluent_kafka.__version__} "
            f"(librdkafka {confluent_kafka.libversion()[0]})")


_ADMIN_CLIENTS: dict[str, object] = {}


def create_topic(bootstrap: str, partitions: int) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"bench-{uuid.uuid4().hex[:10]}"
    # One AdminClient per broker for the whole run (each new one costs a bootstrap).
    admin = _ADMIN_CLIENTS.setdefault(bootstrap, AdminClient({"bootstrap.servers": bootstrap}))
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=30)
    return topic


def make_producer(bootstrap: str, acks: str, linger_ms: int):
    from confluent_kafka import Producer

    return Producer({
        "bootstrap.servers": bootstrap,
        "acks": acks,
        "linger.ms": linger_ms,
        "batch.size": MIB,
        "compression.type": "none",
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1024 * 1024,
        "client.id": "streambus-bench",
    })


def produce_throughput(bootstrap: str, topic: str, count: int, size: int, acks: str,
                       linger_ms: int) -> float:
    producer = make_producer(bootstrap, acks, linger_ms)
    value = os.urandom(size)
    failures = []

    def on_delivery(error, _message) -> None:
        if error is not None:
            failures.append(error)

    produce = producer.produce
    poll = producer.poll
    started = time.perf_counter()
    for _ in range(count):
        while True:
            try:
                produce(topic, value, on_delivery=on_delivery)
                break
            except BufferError:
                poll(0.001)
    remaining = producer.flush(120)
    seconds = time.perf_counter() - started
    if remaining or failures:
        raise SystemExit(f"produce failed: {remaining} undelivered, {len(failures)} errors "
                         f"(first: {failures[:1]})")
    return seconds


def consume_throughput(bootstrap: str, topic: str, partitions: int, count: int) -> float:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"bench-assign-only-{uuid.uuid4().hex[:8]}",  # never joined; assign() only
        "enable.auto.commit": False,
        "fetch.max.bytes": 50 * MIB,
        "max.partition.fetch.bytes": 10 * MIB,
        "fetch.wait.max.ms": 100,
        "queued.max.messages.kbytes": 256 * 1024,
        "isolation.level": "read_uncommitted",
    })
    received = 0
    started = time.perf_counter()
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    deadline = time.monotonic() + 300
    while received < count and time.monotonic() < deadline:
        for message in consumer.consume(num_messages=10_000, timeout=0.5):
            if message.error():
                raise SystemExit(f"consume failed: {message.error()}")
            received += 1
    seconds = time.perf_counter() - started
    consumer.close()
    if received < count:
        raise SystemExit(f"consumed only {received}/{count} records")
    return seconds


def consume_throughput_kcat(bootstrap: str, topic: str, count: int) -> float | None:
    """Consume with kcat (librdkafka in C): no Python call per record, so this measures the
    broker's fetch path rather than the Python client loop.  None when kcat is absent."""
    import shutil
    import subprocess

    kcat = shutil.which("kcat")
    if kcat is None:
        return None
    started = time.perf_counter()
    completed = subprocess.run(
        [kcat, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
         "-f", "\\n", "-X", "fetch.max.bytes=52428800",
         "-X", "max.partition.fetch.bytes=10485760", "-X", "isolation.level=read_uncommitted"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True, timeout=300)
    seconds = time.perf_counter() - started
    received = completed.stdout.count(b"\n")
    if received < count:
        raise SystemExit(f"kcat consumed only {received}/{count} records")
    return seconds


def produce_latency(bootstrap: str, topic: str, rate: int, duration_s: float, size: int,
                    acks: str, linger_ms: int) -> list[float]:
    producer = make_producer(bootstrap, acks, linger_ms)
    value = os.urandom(size)
    latencies_ms: list[float] = []
    failures = []

    def on_delivery_from(sent_at: float):
        def on_delivery(error, _message) -> None:
            if error is not None:
                failures.append(error)
            else:
                latencies_ms.append((time.perf_counter() - sent_at) * 1000)
        return on_delivery

    total = int(rate * duration_s)
    interval = 1.0 / rate
    started = time.perf_counter()
    for index in range(total):
        due = started + index * interval
        while True:
            now = time.perf_counter()
            if now >= due:
                break
            producer.poll(0)
            if due - now > 0.002:
                time.sleep(0.001)
        producer.produce(topic, value, on_delivery=on_delivery_from(time.perf_counter()))
        producer.poll(0)
    producer.flush(60)
    if failures:
        raise SystemExit(f"latency run: {len(failures)} delivery errors (first: {failures[0]})")
    return latencies_ms


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def run(args: argparse.Namespace, bootstrap: str) -> None:
    print(machine_line())
    print(f"Broker: {bootstrap}; partitions per topic: {args.partitions}; "
          f"producer linger.ms={args.linger_ms}, batch.size=1 MiB, compression none\n")
    workloads = [("small", args.small_count, args.small_size),
                 ("large", args.large_count, args.large_size)]
    produced: list[tuple[str, int, int, str]] = []
    print("| produce | records | size | acks | seconds | records/s | MB/s |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for name, count, size in workloads:
        for acks in args.acks.split(","):
            topic = create_topic(bootstrap, args.partitions)
            seconds = produce_throughput(bootstrap, topic, count, size, acks, args.linger_ms)
            print(Throughput(name, acks, count, size, seconds).row(), flush=True)
            produced.append((topic, count, size, acks))
    if not args.skip_consume:
        print("\n| consume | records | size | acks at produce | seconds | records/s | MB/s |")
        print("|---|---:|---:|---|---:|---:|---:|")
        seen_sizes = set()
        for topic, count, size, acks in produced:
            if size in seen_sizes:
                continue  # one consume run per record size is enough
            seen_sizes.add(size)
            seconds = consume_throughput(bootstrap, topic, args.partitions, count)
            print(Throughput("confluent-kafka (Python loop), assign", acks, count, size,
                             seconds).row(), flush=True)
            kcat_seconds = consume_throughput_kcat(bootstrap, topic, count)
            if kcat_seconds is not None:
                print(Throughput("kcat (librdkafka, C), from beginning", acks, count, size,
                                 kcat_seconds).row(), flush=True)
    if args.latency_seconds > 0:
        topic = create_topic(bootstrap, args.partitions)
        latencies = sorted(produce_latency(
            bootstrap, topic, args.latency_rate, args.latency_seconds, args.small_size,
            args.latency_acks, args.linger_ms,
        ))
        print("\n| produce latency | rate | seconds | acks | records | p50 ms | p99 ms | max ms |")
        print("|---|---:|---:|---|---:|---:|---:|---:|")
        print(f"| {args.small_size} B records | {args.latency_rate:,}/s | {args.latency_seconds:g} "
              f"| {args.latency_acks} | {len(latencies):,} | {statistics.median(latencies):.2f} "
              f"| {percentile(latencies, 0.99):.2f} | {latencies[-1]:.2f} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", help="use this running broker instead of starting one")
    parser.add_argument("--small-count", type=int, default=1_000_000)
    parser.add_argument("--small-size", type=int, default=100)
    parser.add_argument("--large-count", type=int, default=300_000)
    parser.add_argument("--large-size", type=int, default=1024)
    parser.add_argument("--acks", default="1,all", help="comma-separated, e.g. 1,all")
    parser.add_argument("--linger-ms", type=int, default=5)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--skip-consume", action="store_true")
    parser.add_argument("--latency-rate", type=int, default=10_000)
    parser.add_argument("--latency-seconds", type=float, default=10.0, help="0 skips it")
    parser.add_argument("--latency-acks", default="all")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="broker --override when the bench starts the broker")
    args = parser.parse_args(argv)

    if args.bootstrap:
        run(args, args.bootstrap)
        _ADMIN_CLIENTS.clear()
        return
    from broker_process import Broker

    overrides = dict(item.split("=", 1) for item in args.override)
    with tempfile.TemporaryDirectory(prefix="streambus-bench-") as work_dir:
        broker = Broker(Path(work_dir), overrides=overrides).start()
        try:
            run(args, broker.bootstrap)
            _ADMIN_CLIENTS.clear()  # disconnect before the broker stops, not after
        except BaseException:
            print(broker.log_tail(), file=sys.stderr)
            raise
        finally:
            broker.finish()


if __name__ == "__main__":
    main()
