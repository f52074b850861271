"""Consumer groups with real clients: balanced, exactly-once delivery within a group, rebalances.

Goal: groups of three members of each client (kafka-python, aiokafka, confluent-kafka with the
range and the cooperative-sticky assignor, kafkajs, kcat -G) read a pre-filled six-partition
topic with every record delivered once, to exactly one member, each partition owned by one
member; a member that leaves, or that stops heartbeating, has its partitions moved to the
others, which then read every new record once.

Method: a module broker with ``group.initial.rebalance.delay.ms`` = 500 ms so members started
together form one generation; clients use 300-500 ms heartbeats and the minimum 6 s session
timeout.  Every wait polls with a deadline; nothing sleeps to synchronise.  The time for a
group to become stable and to rebalance after a member leaves is printed (run with -s).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any, Iterator

import pytest

from broker_process import Broker
from compat_clients import REPO_ROOT, require_client, run_node_script

PARTITIONS = 6
RECORD_COUNT = 300
INITIAL_REBALANCE_DELAY_MS = 500
SESSION_TIMEOUT_MS = 6000  # group.min.session.timeout.ms: the fastest failure detection
HEARTBEAT_INTERVAL_MS = 300
DEADLINE_S = 45.0

Received = dict[Any, list[tuple[int, int, bytes]]]


@pytest.fixture(scope="module")
def group_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    instance = Broker(tmp_path_factory.mktemp("groups"), overrides={
        "group.initial.rebalance.delay.ms": str(INITIAL_REBALANCE_DELAY_MS)}).start()
    yield instance
    instance.finish()


# -- helpers ------------------------------------------------------------------------------------


def create_topic(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})  # keep the handle alive until done
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=15)


def produce(bootstrap: str, topic: str, count: int = RECORD_COUNT, tag: str = "r",
            partitions: int = PARTITIONS) -> dict[tuple[int, int], bytes]:
    """``count`` distinct records spread round-robin; returns {(partition, offset): value}."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    delivered: dict[tuple[int, int], bytes] = {}
    errors = []

    def on_delivery(error, message) -> None:
        if error is not None:
            errors.append(error)
        else:
            delivered[(message.partition(), message.offset())] = message.value()

    for index in range(count):
        producer.produce(topic, f"{tag}-{index:05d}".encode(), partition=index % partitions,
                         on_delivery=on_delivery)
    assert producer.flush(20) == 0 and not errors, errors
    assert len(delivered) == count
    return delivered


def wait_until(condition: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> float:
    """Poll ``condition`` until true; returns the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > deadline_s:
            raise AssertionError(f"timed out after {deadline_s}s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - started


def assert_each_record_once(received: Received, expected: dict[tuple[int, int], bytes],
                            members: int) -> None:
    got = [(p, o) for records in received.values() for p, o, _ in records]
    duplicates = [key for key, n in Counter(got).items() if n > 1]
    assert not duplicates, f"delivered more than once: {duplicates[:10]}"
    assert set(got) == set(expected), (
        f"missing {sorted(set(expected) - set(got))[:10]}, extra {sorted(set(got) - set(expected))[:10]}")
    assert all(expected[(p, o)] == v for records in received.values() for p, o, v in records)
    owners: dict[int, set] = {}
    for member, records in received.items():
        for partition, _, _ in records:
            owners.setdefault(partition, set()).add(member)
    assert all(len(m) == 1 for m in owners.values()), f"partitions read by two members: {owners}"
    assert len([m for m, r in received.items() if r]) == members, {
        m: len(r) for m, r in received.items()}


def total(received: Received) -> int:
    return sum(len(r) for r in received.values())


# -- kafka-python members (threads) ---------------------------------------------------------------


class KafkaPythonMember(threading.Thread):
    """One kafka-python group member polling in its own thread until ``stop()``."""

    def __init__(self, bootstrap: str, topic: str, group: str, name: str, **config: Any) -> None:
        super().__init__(name=name, daemon=True)
        self.bootstrap, self.topic, self.group = bootstrap, topic, group
        self.config = config
        self.records: list[tuple[int, int, bytes]] = []
        self.assignment: frozenset[int] = frozenset()
        self.assigned_count = 0
        self.error: BaseException | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        from kafka import ConsumerRebalanceListener, KafkaConsumer

        member = self

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked) -> None:
                pass

            def on_partitions_assigned(self, assigned) -> None:
                member.assigned_count += 1

        try:
            consumer = KafkaConsumer(**{
                "bootstrap_servers": self.bootstrap, "group_id": self.group,
                "client_id": self.name, "auto_offset_reset": "earliest",
                "heartbeat_interval_ms": HEARTBEAT_INTERVAL_MS,
                "session_timeout_ms": SESSION_TIMEOUT_MS, "fetch_max_wait_ms": 100,
                "auto_commit_interval_ms": 200, **self.config})
            consumer.subscribe([self.topic], listener=Listener())
            try:
                while not self._stop_event.is_set():
                    for batch in consumer.poll(timeout_ms=50).values():
                        self.records += [(m.partition, m.offset, m.value) for m in batch]
                    self.assignment = frozenset(tp.partition for tp in consumer.assignment())
            finally:
                consumer.close()
        except BaseException as error:  # reported by the test, never swallowed
            self.error = error

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=20)
        assert not self.is_alive(), f"{self.name} did not stop"
        if self.error is not None:
            raise self.error


def kafka_python_members(bootstrap: str, topic: str, group: str, count: int,
                         **config: Any) -> list[KafkaPythonMember]:
    members = [KafkaPythonMember(bootstrap, topic, group, f"kp-{i}", **config) for i in range(count)]
    for member in members:
        member.start()
    return members


# -- three-member groups, each client ----------------------------------------------------------


def test_kafka_python_three_members_each_record_once(group_broker, topic) -> None:
    create_topic(group_broker.bootstrap, topic)
    expected = produce(group_broker.bootstrap, topic)
    members = kafka_python_members(group_broker.bootstrap, topic, f"g-{uuid.uuid4().hex[:8]}", 3)
    try:
        stable_s = wait_until(lambda: all(m.assignment for m in members), "three assignments")
        wait_until(lambda: sum(len(m.records) for m in members) >= len(expected), "all records")
    finally:
        for member in members:
            member.stop()
    print(f"\nkafka-python: three-member group stable after {stable_s:.2f}s")
    assert_each_record_once({m.name: m.records for m in members}, expected, 3)


def test_aiokafka_three_members_each_record_once(group_broker, topic) -> None:
    from aiokafka import AIOKafkaConsumer

    create_topic(group_broker.bootstrap, topic)
    expected = produce(group_broker.bootstrap, topic)
    group = f"g-{uuid.uuid4().hex[:8]}"

    async def run() -> Received:
        consumers = [AIOKafkaConsumer(
            topic, bootstrap_servers=group_broker.bootstrap, group_id=group,
            client_id=f"aio-{i}", auto_offset_reset="earliest", fetch_max_wait_ms=100,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS, session_timeout_ms=SESSION_TIMEOUT_MS)
            for i in range(3)]
        received: Received = {i: [] for i in range(3)}
        await asyncio.gather(*(c.start() for c in consumers))
        try:
            deadline = time.monotonic() + DEADLINE_S

            async def drain(index: int, consumer) -> None:
                while total(received) < len(expected) and time.monotonic() < deadline:
                    batches = await consumer.getmany(timeout_ms=100)
                    for batch in batches.values():
                        received[index] += [(m.partition, m.offset, m.value) for m in batch]

            await asyncio.gather(*(drain(i, c) for i, c in enumerate(consumers)))
        finally:
            await asyncio.gather(*(c.stop() for c in consumers))
        return received

    assert_each_record_once(asyncio.run(run()), expected, 3)


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_confluent_kafka_three_members_each_record_once(group_broker, topic, strategy) -> None:
    from confluent_kafka import Consumer

    create_topic(group_broker.bootstrap, topic)
    expected = produce(group_broker.bootstrap, topic)
    group = f"g-{uuid.uuid4().hex[:8]}"
    consumers = [Consumer({
        "bootstrap.servers": group_broker.bootstrap, "group.id": group,
        "client.id": f"rdk-{i}", "auto.offset.reset": "earliest",
        "partition.assignment.strategy": strategy, "fetch.wait.max.ms": 100,
        "heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS, "session.timeout.ms": SESSION_TIMEOUT_MS,
    }) for i in range(3)]
    received: Received = {i: [] for i in range(3)}
    try:
        for consumer in consumers:
            consumer.subscribe([topic])
        deadline = time.monotonic() + DEADLINE_S
        while total(received) < len(expected) and time.monotonic() < deadline:
            for index, consumer in enumerate(consumers):
                message = consumer.poll(0.02)
                if message is None:
                    continue
                assert message.error() is None, message.error()
                received[index].append((message.partition(), message.offset(), message.value()))
        assignments = [sorted(tp.partition for tp in c.assignment()) for c in consumers]
    finally:
        for consumer in consumers:
            consumer.close()
    assert_each_record_once(received, expected, 3)
    assert sorted(p for a in assignments for p in a) == list(range(PARTITIONS))


def test_kafkajs_three_member_group_each_record_once(group_broker, topic) -> None:
    require_client("kafkajs")
    create_topic(group_broker.bootstrap, topic)
    expected = produce(group_broker.bootstrap, topic)
    result = run_node_script("group_consume.js", {
        "brokers": [group_broker.bootstrap], "topic": topic,
        "groupId": f"g-{uuid.uuid4().hex[:8]}", "members": 3, "count": len(expected),
        "timeoutMs": int(DEADLINE_S * 1000), "sessionTimeout": SESSION_TIMEOUT_MS,
        "heartbeatInterval": HEARTBEAT_INTERVAL_MS,
    }, timeout_s=DEADLINE_S + 15)
    import base64

    received: Received = {}
    for item in result["records"]:
        received.setdefault(item["member"], []).append(
            (item["partition"], int(item["offset"]), base64.b64decode(item["value"])))
    assert_each_record_once(received, expected, 3)
    assigned = sorted(p for a in result["assignments"].values() for ps in a.values() for p in ps)
    assert assigned == list(range(PARTITIONS))


def test_kcat_balanced_consumers_each_record_once(group_broker, topic) -> None:
    require_client("kcat")
    create_topic(group_broker.bootstrap, topic)
    expected = produce(group_broker.bootstrap, topic)
    group = f"g-{uuid.uuid4().hex[:8]}"
    argv = ["kcat", "-C", "-b", group_broker.bootstrap, "-G", group, topic, "-J", "-q", "-e",
            "-X", "auto.offset.reset=earliest", "-X", f"session.timeout.ms={SESSION_TIMEOUT_MS}",
            "-X", f"heartbeat.interval.ms={HEARTBEAT_INTERVAL_MS}", "-X", "fetch.wait.max.ms=100"]
    processes = [subprocess.Popen(argv + ["-X", f"client.id=kcat-{i}"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE) for i in range(3)]
    received: Received = {}
    try:
        for index, process in enumerate(processes):
            stdout, stderr = process.communicate(timeout=DEADLINE_S)
            assert process.returncode == 0, stderr.decode(errors="replace")
            received[index] = [(item["partition"], item["offset"], item["payload"].encode())
                               for item in map(json.loads, stdout.decode().splitlines()) if item]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert_each_record_once(received, expected, 3)


# -- members leaving and failing -----------------------------------------------------------------


def test_member_that_leaves_has_its_partitions_moved_to_the_others(group_broker, topic) -> None:
    create_topic(group_broker.bootstrap, topic)
    expected = produce(group_broker.bootstrap, topic)
    members = kafka_python_members(group_broker.bootstrap, topic, f"g-{uuid.uuid4().hex[:8]}", 3)
    try:
        wait_until(lambda: sum(len(m.records) for m in members) >= len(expected), "all records")
        leaving, stayers = members[0], members[1:]
        assert leaving.assignment, "the leaving member owned partitions"
        started = time.monotonic()
        leaving.stop()  # LeaveGroup
        rebalance_s = wait_until(
            lambda: set().union(*(m.assignment for m in stayers)) == set(range(PARTITIONS))
            and all(m.assignment for m in stayers), "the two others to own every partition")
        print(f"\nkafka-python: rebalance after a member left took {rebalance_s:.2f}s "
              f"(leave to reassignment {time.monotonic() - started:.2f}s)")
        before = {m.name: len(m.records) for m in stayers}
        more = produce(group_broker.bootstrap, topic, tag="after-leave")
        wait_until(lambda: sum(len(m.records) - before[m.name] for m in stayers) >= len(more),
                   "records produced after the leave")
    finally:
        for member in members[1:]:
            member.stop()
    new = {m.name: [r for r in m.records[before[m.name]:] if r[2].startswith(b"after-leave")]
           for m in stayers}
    assert_each_record_once(new, more, 2)


_SILENT_MEMBER = """
import json, sys
from kafka import KafkaConsumer
consumer = KafkaConsumer(bootstrap_servers=sys.argv[1], group_id=sys.argv[3], client_id="doomed",
                         auto_offset_reset="earliest", heartbeat_interval_ms={heartbeat},
                         session_timeout_ms={session}, fetch_max_wait_ms=100)
consumer.subscribe([sys.argv[2]])
while True:
    consumer.poll(timeout_ms=50)
    print(json.dumps(sorted(tp.partition for tp in consumer.assignment())), flush=True)
""".format(heartbeat=HEARTBEAT_INTERVAL_MS, session=SESSION_TIMEOUT_MS)


def test_member_that_stops_heartbeating_loses_its_partitions(group_broker, topic) -> None:
    """A member killed with SIGKILL sends no LeaveGroup: its session timeout expires it."""
    create_topic(group_broker.bootstrap, topic)
    group = f"g-{uuid.uuid4().hex[:8]}"
    members = kafka_python_members(group_broker.bootstrap, topic, group, 2)
    doomed = subprocess.Popen([sys.executable, "-c", _SILENT_MEMBER, group_broker.bootstrap, topic,
                               group], stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    last_line = [""]

    def doomed_owns_partitions() -> bool:
        line = doomed.stdout.readline()
        last_line[0] = line
        return bool(json.loads(line or "[]")) and all(m.assignment for m in members) and (
            len(set().union(*(m.assignment for m in members))) + len(json.loads(line)) == PARTITIONS)

    try:
        wait_until(doomed_owns_partitions, "three members sharing the partitions")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        killed = time.monotonic()
        took_s = wait_until(lambda: set().union(*(m.assignment for m in members)) == set(range(PARTITIONS)),
                            "the survivors to own every partition")
        print(f"\nkafka-python: partitions of a silent member moved after {took_s:.2f}s "
              f"(session timeout {SESSION_TIMEOUT_MS} ms)")
        assert took_s >= SESSION_TIMEOUT_MS / 1000 - 1.5, "moved before the session could expire"
        assert time.monotonic() - killed < SESSION_TIMEOUT_MS / 1000 + 10
        before = {m.name: len(m.records) for m in members}
        more = produce(group_broker.bootstrap, topic, tag="after-kill")
        wait_until(lambda: sum(len(m.records) - before[m.name] for m in members) >= len(more),
                   "records produced after the kill")
    finally:
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait()
        for member in members:
            member.stop()
    new = {m.name: [r for r in m.records[before[m.name]:] if r[2].startswith(b"after-kill")]
           for m in members}
    assert_each_record_once(new, more, 2)
