"""Consumer groups and transactions in a three-node cluster, entered through a node that is not
the quorum controller.

Goal: a three-member kafka-python group and a two-member confluent-kafka group bootstrapped
through a non-controller node consume a six-partition topic with every record delivered
exactly once and commit offsets that read back; FindCoordinator, asked of that node, names the
leader of the key's ``__consumer_offsets`` / ``__transaction_state`` partition; a
confluent-kafka transactional producer bootstrapped there commits a transaction spanning
partitions led by different brokers (markers travel as WriteTxnMarkers to the other leaders),
aborts one, commits another, and a read_committed consumer sees exactly the committed records.

Method: one module cluster (the nodes of ``test_compat_cluster``) with few internal-topic
partitions and no initial rebalance delay.  Group members poll in threads; records are
produced only once every member holds partitions, so no rebalance can redeliver any.  Every
wait polls with a deadline.
"""

from __future__ import annotations

import threading
import time
from typing import Iterator

import pytest

from broker_process import BrokerStartError
from compat_clients import make_records, produce_confluent, unique_topic
from test_compat_cluster import Cluster

from streambus.coordinator.runtime import OFFSETS_TOPIC, partition_for
from streambus.coordinator.txn.runtime import TRANSACTION_STATE_TOPIC

DEADLINE_S = 30.0
PARTITION_COUNT = 6
RECORDS_PER_PARTITION = 20
OVERRIDES = {
    "offsets.topic.num.partitions": "6",
    "transaction.state.log.num.partitions": "6",
    "group.initial.rebalance.delay.ms": "0",
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    instance = Cluster(tmp_path_factory.mktemp("cluster-coordinators"))
    for node in instance.nodes.values():
        node.overrides.update(OVERRIDES)
    try:
        instance.start()
    except BrokerStartError:
        instance.stop()
        raise
    yield instance
    instance.stop()


@pytest.fixture()
def via(cluster: Cluster) -> str:
    """The bootstrap address of a node that is not the quorum controller."""
    controller = cluster.wait_for_leader()
    return cluster.nodes[min(i for i in cluster.nodes if i != controller)].bootstrap


# ----------------------------------------------------------------------------- helpers


def _create_topic(bootstrap: str, name: str) -> None:
    from streambus.client.admin import connect_admin
    from streambus.protocol.messages.create_topics import CreateTopicsRequest

    with connect_admin(bootstrap, timeout_ms=10_000) as admin:
        [result] = admin.create_topics([CreateTopicsRequest.CreatableTopic(
            name=name, num_partitions=PARTITION_COUNT, replication_factor=1)])
    assert result.error_code == 0, (result.error_code, result.error_message)


def _leaders(bootstrap: str, topic: str) -> dict[int, int]:
    """Partition -> leader, once every partition of ``topic`` has one on ``bootstrap``."""
    from streambus.client.admin import connect_admin

    deadline = time.monotonic() + DEADLINE_S
    while True:
        with connect_admin(bootstrap, timeout_ms=5000) as admin:
            topics = [t for t in admin.metadata([topic]).topics if t.error_code == 0]
        leaders = {p.partition_index: p.leader_id for t in topics for p in t.partitions}
        if leaders and all(leader >= 0 for leader in leaders.values()):
            return leaders
        assert time.monotonic() < deadline, f"{topic} has no leaders: {leaders}"
        time.sleep(0.2)


def _find_coordinator(bootstrap: str, key: str, key_type: int) -> int:
    """The node id FindCoordinator (v3) on ``bootstrap`` names, once it names one."""
    from streambus.client.connection import BrokerConnection, parse_bootstrap_servers
    from streambus.protocol.messages.find_coordinator import FindCoordinatorRequest

    deadline = time.monotonic() + DEADLINE_S
    with BrokerConnection.open(parse_bootstrap_servers(bootstrap)[0], timeout_ms=5000) as conn:
        while True:
            response = conn.send(FindCoordinatorRequest(key=key, key_type=key_type), 3)
            if response.error_code == 0:
                return response.node_id
            assert time.monotonic() < deadline, f"FindCoordinator: {response.error_code}"
            time.sleep(0.2)


def _expected_coordinator(bootstrap: str, internal_topic: str, key: str) -> int:
    leaders = _leaders(bootstrap, internal_topic)
    return leaders[partition_for(key, len(leaders))]


def _produce_everywhere(bootstrap: str, topic: str, seed: str) -> set[bytes]:
    values: set[bytes] = set()
    for partition in range(PARTITION_COUNT):
        records = make_records(RECORDS_PER_PARTITION, seed=f"{seed}{partition}-", value_size=16)
        produce_confluent(bootstrap, topic, records, partition=partition)
        values |= {r.value for r in records}
    return values


def _wait(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class _Members:
    """Group members polling in threads; ``seen`` collects every delivered value."""

    def __init__(self, poll_once) -> None:  # type: ignore[no-untyped-def]
        self.seen: list[bytes] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poll_once = poll_once
        self._threads: list[threading.Thread] = []

    def start(self, members: list) -> None:  # type: ignore[type-arg]
        for member in members:
            thread = threading.Thread(target=self._run, args=(member,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _run(self, member) -> None:  # type: ignore[no-untyped-def]
        try:
            while not self._stop.is_set():
                values = self._poll_once(member)
                with self._lock:
                    self.seen += values
        except BaseException as exc:  # surfaced by stop()
            self.errors.append(exc)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        assert not self.errors, self.errors


# ----------------------------------------------------------------------------- tests


def test_kafka_python_group_through_non_controller_consumes_each_record_once(
        cluster: Cluster, via: str) -> None:
    from kafka import KafkaConsumer, TopicPartition

    topic, group = unique_topic("kp-group-topic"), unique_topic("kp-group")
    _create_topic(via, topic)
    consumers = [KafkaConsumer(topic, bootstrap_servers=via, group_id=group,
                               client_id=f"kp-member-{i}", auto_offset_reset="earliest",
                               enable_auto_commit=False, heartbeat_interval_ms=500)
                 for i in range(3)]

    def poll_once(consumer) -> list[bytes]:  # type: ignore[no-untyped-def]
        from kafka.errors import CommitFailedError, RebalanceInProgressError

        batches = consumer.poll(timeout_ms=200)
        values = [m.value for messages in batches.values() for m in messages]
        if values:
            try:
                consumer.commit()
            except (CommitFailedError, RebalanceInProgressError):
                # A rebalance still settling on a loaded machine refuses the commit, as Kafka
                # does; the client's next poll rejoins and commits, and the committed offsets
                # are checked below.
                pass
        return values

    members = _Members(poll_once)
    members.start(consumers)
    try:
        _wait(lambda: all(c.assignment() for c in consumers)
              and sum(len(c.assignment()) for c in consumers) == PARTITION_COUNT,
              "three members holding every partition")
        expected = _produce_everywhere(cluster.bootstrap(), topic, "kp")
        _wait(lambda: len(members.seen) >= len(expected), "every record")
        time.sleep(0.5)  # a duplicate would show up now
    finally:
        members.stop()
        for consumer in consumers:
            consumer.close()

    assert sorted(members.seen) == sorted(expected)
    assert _find_coordinator(via, group, 0) == _expected_coordinator(via, OFFSETS_TOPIC, group)
    reader = KafkaConsumer(bootstrap_servers=via, group_id=group, enable_auto_commit=False)
    try:
        offsets = {p: reader.committed(TopicPartition(topic, p)) for p in range(PARTITION_COUNT)}
    finally:
        reader.close()
    assert offsets == {p: RECORDS_PER_PARTITION for p in range(PARTITION_COUNT)}


def test_confluent_group_through_non_controller_consumes_each_record_once(
        cluster: Cluster, via: str) -> None:
    from confluent_kafka import Consumer, TopicPartition

    topic, group = unique_topic("ck-group-topic"), unique_topic("ck-group")
    _create_topic(via, topic)
    config = {"bootstrap.servers": via, "group.id": group, "auto.offset.reset": "earliest",
              "enable.auto.commit": False, "heartbeat.interval.ms": 500}
    consumers = [Consumer({**config, "client.id": f"ck-member-{i}"}) for i in range(2)]
    assigned: dict[int, int] = {}

    def subscribe(index: int, consumer) -> None:  # type: ignore[no-untyped-def]
        def on_assign(_, partitions) -> None:  # type: ignore[no-untyped-def]
            assigned[index] = len(partitions)
        consumer.subscribe([topic], on_assign=on_assign)

    for index, consumer in enumerate(consumers):
        subscribe(index, consumer)

    def poll_once(consumer) -> list[bytes]:  # type: ignore[no-untyped-def]
        messages = [m for m in consumer.consume(num_messages=100, timeout=0.2)
                    if m.error() is None]
        if messages:
            consumer.commit(asynchronous=False)
        return [m.value() for m in messages]

    members = _Members(poll_once)
    members.start(consumers)
    try:
        _wait(lambda: len(assigned) == 2 and all(assigned.values())
              and sum(assigned.values()) == PARTITION_COUNT, "two members holding every partition")
        expected = _produce_everywhere(cluster.bootstrap(), topic, "ck")
        _wait(lambda: len(members.seen) >= len(expected), "every record")
        time.sleep(0.5)
    finally:
        members.stop()
        for consumer in consumers:
            consumer.close()

    assert sorted(members.seen) == sorted(expected)
    assert _find_coordinator(via, group, 0) == _expected_coordinator(via, OFFSETS_TOPIC, group)
    reader = Consumer(config)
    try:
        committed = reader.committed([TopicPartition(topic, p) for p in range(PARTITION_COUNT)],
                                     timeout=10)
    finally:
        reader.close()
    assert {tp.partition: tp.offset for tp in committed} == {
        p: RECORDS_PER_PARTITION for p in range(PARTITION_COUNT)}


def test_transaction_through_non_controller_spans_partitions_of_different_leaders(
        cluster: Cluster, via: str) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition

    topic, transactional_id = unique_topic("txn-topic"), unique_topic("txn-id")
    _create_topic(via, topic)
    leaders = _leaders(via, topic)
    by_leader = {leader: partition for partition, leader in sorted(leaders.items())}
    assert len(by_leader) >= 2, f"partitions not spread over brokers: {leaders}"
    targets = sorted(by_leader.values())

    producer = Producer({"bootstrap.servers": via, "transactional.id": transactional_id,
                         "linger.ms": 5})
    producer.init_transactions(DEADLINE_S)
    committed: list[bytes] = []
    for round_index, commit in enumerate((True, False, True)):
        producer.begin_transaction()
        for partition in targets:
            for index in range(5):
                value = f"r{round_index}-p{partition}-{index}".encode()
                producer.produce(topic, value=value, partition=partition)
                if commit:
                    committed.append(value)
        if commit:
            producer.commit_transaction(DEADLINE_S)
        else:
            producer.abort_transaction(DEADLINE_S)

    assert _find_coordinator(via, transactional_id, 1) == _expected_coordinator(
        via, TRANSACTION_STATE_TOPIC, transactional_id)
    consumer = Consumer({"bootstrap.servers": via, "group.id": unique_topic("txn-reader"),
                         "isolation.level": "read_committed", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITION_COUNT)])
    seen: list[bytes] = []
    deadline = time.monotonic() + DEADLINE_S
    quiet_until = None
    try:
        while time.monotonic() < deadline:
            messages = [m for m in consumer.consume(num_messages=100, timeout=0.2)
                        if m.error() is None]
            seen += [m.value() for m in messages]
            if len(seen) >= len(committed):
                quiet_until = quiet_until or time.monotonic() + 1.0
                if time.monotonic() >= quiet_until:
                    break
    finally:
        consumer.close()
    assert sorted(seen) == sorted(committed)
