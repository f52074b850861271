"""What TLS and ACL checks cost on produce throughput.

Method: the same produce workload (confluent-kafka, acks=1, linger.ms=5, batch.size=1 MiB,
100 B values, one partition) against fresh brokers that differ only in security:

* PLAINTEXT: no authorizer (the default quick start);
* PLAINTEXT + ACLs: the authorizer on (config ACLs, ANONYMOUS allowed to write the topic) with
  1,000 unrelated ACLs in force, so every Produce is checked against a realistic index;
* SSL: TLS 1.3 with a self-signed CA made here;
* SASL_SSL + ACLs: SCRAM-SHA-512 plus the authorizer: the full production setup.

Each mode runs ``--rounds`` times on a new topic and the median records/s is reported, with the
change relative to PLAINTEXT. Also printed: the cost of one cached ``Authorizer.authorize``
decision (the per-topic hot-path check). Client and broker share this machine's cores, so
compare runs on the same machine only.

    python bench/security_bench.py [--count 300000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import timeit
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT / "compat-tests"), str(REPO_ROOT)]

from broker_process import Broker  # noqa: E402
from security_support import write_users_file  # noqa: E402
from streambus.testing.tls_certs import make_tls_files  # noqa: E402

import yaml  # noqa: E402


def _broker_cpu_s(broker: Broker) -> float:
    """User + system CPU seconds the broker process has used (robust to a busy machine)."""
    import os

    assert broker.process is not None
    fields = Path(f"/proc/{broker.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _produce(bootstrap: str, topic: str, count: int, size: int, config: dict) -> float:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 5,
                         "batch.size": 1 << 20, "queue.buffering.max.messages": 1_000_000,
                         "enable.idempotence": False, **config})
    value = b"x" * size
    producer.produce(topic, value, partition=0)  # connect + metadata outside the clock
    producer.flush(30)
    failures = []
    started = time.perf_counter()
    for _ in range(count):
        while True:
            try:
                producer.produce(topic, value, partition=0,
                                 on_delivery=lambda e, m: e and failures.append(e))
                break
            except BufferError:
                producer.poll(0.01)
    remaining = producer.flush(120)
    elapsed = time.perf_counter() - started
    if remaining or failures:
        raise RuntimeError(f"{remaining} undelivered, failures {failures[:3]}")
    return count / elapsed


def _modes(work: Path) -> dict[str, tuple[dict, dict]]:
    certs = make_tls_files(work / "certs")
    users = write_users_file(work / "users.yaml", {"bench": "bench-secret"})
    tls = {"tls_enabled": True, "tls_cert": str(certs.server_cert),
           "tls_key": str(certs.server_key), "min_tls_version": "1.3"}
    filler = [{"principal": f"User:other-{i}", "operations": ["read", "write"],
               "resources": [f"topic:unrelated-{i}", f"group:g-{i}"]} for i in range(250)]
    ssl_client = {"security.protocol": "SSL", "ssl.ca.location": str(certs.ca_cert)}
    return {
        "PLAINTEXT": ({}, {}),
        "PLAINTEXT + ACLs": ({"acls": filler + [
            {"principal": "User:ANONYMOUS", "operations": ["write", "create"],
             "resources": ["topic:bench-*"]}]}, {}),
        "SSL": ({"security": tls}, ssl_client),
        "SASL_SSL + ACLs": (
            {"security": {**tls, "auth_enabled": True, "auth_mechanism": "SCRAM-SHA-512",
                          "users_file": str(users)},
             "acls": filler + [{"principal": "User:bench", "operations": ["write", "create"],
                                "resources": ["topic:bench-*"]}]},
            {**ssl_client, "security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512",
             "sasl.username": "bench", "sasl.password": "bench-secret"}),
    }


def _authorize_cost_ns() -> float:
    from streambus.security.authorizer import (
        AclBinding, AclOperation, Authorizer, PatternType, PermissionType, ResourceType)

    bindings = [AclBinding(ResourceType.TOPIC, f"t{i}", PatternType.LITERAL, f"User:u{i}", "*",
                           AclOperation.WRITE, PermissionType.ALLOW) for i in range(1000)]
    authorizer = Authorizer(bindings)
    authorizer.authorize("User:u1", "10.0.0.1", AclOperation.WRITE, ResourceType.TOPIC, "t1")
    loops = 1_000_000
    seconds = timeit.timeit(
        lambda: authorizer.authorize("User:u1", "10.0.0.1", AclOperation.WRITE,
                                     ResourceType.TOPIC, "t1"), number=loops)
    return seconds / loops * 1e9


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=300_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="streambus-security-bench-") as directory:
        work = Path(directory)
        brokers: dict[str, tuple[Broker, dict]] = {}
        try:
            for index, (name, (config, client)) in enumerate(_modes(work).items()):
                broker_dir = work / f"broker-{index}"
                broker_dir.mkdir()
                config_file = broker_dir / "streambus.yaml"
                config_file.write_text(yaml.safe_dump(config))
                brokers[name] = (Broker(broker_dir, config_file=config_file).start(), client)
            # Rounds interleave the modes, so drift in machine load hits them all alike.
            rates: dict[str, list[float]] = {name: [] for name in brokers}
            cpu_us: dict[str, list[float]] = {name: [] for name in brokers}
            names = list(brokers)
            for round_index in range(args.rounds):
                # Rotate who goes first: the first run of a round pays for the others' cleanup.
                order = names[round_index % len(names):] + names[:round_index % len(names)]
                for name in order:
                    broker, client = brokers[name]
                    cpu_before = _broker_cpu_s(broker)
                    rates[name].append(_produce(broker.bootstrap,
                                                f"bench-{uuid.uuid4().hex[:8]}", args.count,
                                                args.size, client))
                    cpu_us[name].append((_broker_cpu_s(broker) - cpu_before) * 1e6
                                        / args.count * 1000)
        finally:
            for broker, _ in brokers.values():
                broker.finish()
        results = {name: statistics.median(values) for name, values in rates.items()}
        cpu = {name: statistics.median(values) for name, values in cpu_us.items()}
    base, cpu_base = results["PLAINTEXT"], cpu["PLAINTEXT"]
    print(f"produce, {args.count} x {args.size} B, acks=1, median of {args.rounds}:\n")
    print("| mode | records/s | vs PLAINTEXT | broker CPU ms per 1k records | vs PLAINTEXT |")
    print("|---|---|---|---|---|")
    for name, rate in results.items():
        print(f"| {name} | {rate:,.0f} | {100 * (rate / base - 1):+.1f}% | "
              f"{cpu[name] / 1000:.3f} | {100 * (cpu[name] / cpu_base - 1):+.1f}% |")
    print(f"\ncached Authorizer.authorize decision: {_authorize_cost_ns():.0f} ns")


if __name__ == "__main__":
    main()
