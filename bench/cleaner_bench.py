"""Log cleaner throughput, and produce latency while it runs (issue 7's closing numbers).

Method: one broker subprocess.  With the cleaner switched off (``log.cleaner.threads=0`` as a
dynamic broker default), confluent-kafka loads a ``cleanup.policy=compact`` topic with
``--records`` keyed records over ``--keys`` keys (5% tombstones) in 1 MiB segments.  A second
producer then sends one small record every 2 ms (acks=all, linger.ms=0) to another topic and
records each delivery latency: first for a few seconds with the cleaner idle (baseline), then
with the cleaner switched back on, until its pass ends.  The cleaner's own numbers (bytes
read, seconds, MB/s) come from its log line; ``--io-max-bytes-per-second`` sets
``log.cleaner.io.max.bytes.per.second`` for a throttled run.

    python bench/cleaner_bench.py [--records 500000] [--keys 10000]
        [--io-max-bytes-per-second 5000000]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "compat-tests"))

from broker_process import Broker  # noqa: E402

_CLEANED = re.compile(r"cleaned offsets \[(\d+), (\d+)\) by (\S+) in ([\d.]+) s: read (\d+) "
                      r"bytes \(([\d.]+) MB/s\), wrote (\d+), kept (\d+) of (\d+) records")


def _cli(broker: Broker, *argv: str) -> None:
    subprocess.run([sys.executable, "-m", "streambus.cli.admin", "--bootstrap-server",
                    broker.bootstrap, *argv], check=True, capture_output=True, cwd=REPO_ROOT)


def _load(broker: Broker, topic: str, records: int, keys: int) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config={
        "cleanup.policy": "compact", "segment.bytes": str(1 << 20)})])[topic].result(30)
    admin.create_topics([NewTopic("latency", 1, 1)])["latency"].result(30)
    rng = random.Random(1)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20,
                         "batch.num.messages": 2000, "queue.buffering.max.messages": 500_000})
    for index in range(records):
        value = None if rng.random() < 0.05 else b"value-%09d-" % index + b"x" * 80
        while True:
            try:
                producer.produce(topic, key=b"key-%06d" % rng.randrange(keys), value=value,
                                 partition=0)
                break
            except BufferError:
                producer.poll(0.01)
        if index % 20_000 == 0:
            producer.poll(0)
    producer.flush(120)
    # One more record, so the last full segment is no longer the active one.
    producer.produce(topic, key=b"end", value=b"end", partition=0)
    producer.flush(30)


class _LatencyProbe:
    """Sends one record every 2 ms from a thread and keeps (send time, latency) pairs."""

    def __init__(self, bootstrap: str) -> None:
        from confluent_kafka import Producer

        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                                  "linger.ms": 0, "enable.idempotence": False})
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        next_send = time.monotonic()
        while not self._stop.is_set():
            sent = time.monotonic()

            def on_delivery(error, _message, sent=sent) -> None:
                if error is None:
                    self.samples.append((sent, time.monotonic() - sent))

            self.producer.produce("latency", b"p", partition=0, on_delivery=on_delivery)
            self.producer.poll(0)
            next_send += 0.002
            time.sleep(max(0.0, next_send - time.monotonic()))
        self.producer.flush(10)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def between(self, start: float, end: float) -> list[float]:
        return [latency for sent, latency in self.samples if start <= sent < end]


def _percentiles(latencies: list[float]) -> str:
    if len(latencies) < 20:
        return f"{len(latencies)} samples"
    quantiles = statistics.quantiles(latencies, n=100)
    return (f"{len(latencies)} samples, p50 {quantiles[49] * 1000:.2f} ms, "
            f"p99 {quantiles[98] * 1000:.2f} ms, max {max(latencies) * 1000:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--io-max-bytes-per-second", type=float, default=None)
    args = parser.parse_args()
    overrides = {"log.cleaner.backoff.ms": "100", "log_level": "INFO"}
    if args.io_max_bytes_per_second:
        overrides["log.cleaner.io.max.bytes.per.second"] = str(args.io_max_bytes_per_second)
    broker = Broker(Path(tempfile.mkdtemp(prefix="cleaner-bench-")), overrides=overrides).start()
    try:
        _cli(broker, "configs", "alter", "--broker-defaults", "--add-config",
             "log.cleaner.threads=0")
        started = time.monotonic()
        _load(broker, "compacted", args.records, args.keys)
        size = sum(p.stat().st_size for p in (broker.data_dir / "compacted-0").glob("*.log"))
        print(f"loaded {args.records} records ({size / 1e6:.1f} MB) in "
              f"{time.monotonic() - started:.1f} s")
        probe = _LatencyProbe(broker.bootstrap)
        probe.start()
        time.sleep(5)
        baseline_end = time.monotonic()
        log_before = broker.log_tail(10**9).count("cleaned offsets")
        _cli(broker, "configs", "alter", "--broker-defaults", "--delete-config",
             "log.cleaner.threads")
        clean_start = time.monotonic()
        while broker.log_tail(10**9).count("cleaned offsets") == log_before:
            time.sleep(0.05)
        clean_end = time.monotonic()
        probe.stop()
        match = _CLEANED.findall(broker.log_tail(10**9))[-1]
        print(f"cleaner pass: offsets [{match[0]}, {match[1]}), {match[3]} s, read "
              f"{int(match[4]) / 1e6:.1f} MB ({match[5]} MB/s of log read), wrote "
              f"{int(match[6]) / 1e6:.2f} MB, kept {match[7]} of {match[8]} records "
              f"(throttle: {args.io_max_bytes_per_second or 'none'})")
        print(f"produce latency, cleaner idle:    {_percentiles(probe.between(0, baseline_end))}")
        print(f"produce latency, cleaner running: "
              f"{_percentiles(probe.between(clean_start, clean_end))}")
    finally:
        broker.stop()
        broker.close()


if __name__ == "__main__":
    main()
