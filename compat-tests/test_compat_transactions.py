"""Transactions with real clients: exactly the committed records reach read_committed consumers.

Goal (issue 4, "Done when"): confluent-kafka's transactional producer commits and aborts in
turn across two partitions, and read_committed consumers (confluent-kafka, kafka-python) see
exactly the committed records while read_uncommitted ones see all; an open transaction holds
read_committed consumers at the last stable offset until it commits; a consume-transform-produce
loop with ``send_offsets_to_transaction`` writes each output once and leaves the group's
committed offset at the end; kafka-python's and aiokafka's transactional producers work; a
second producer with the same ``transactional.id`` fences the first; a transaction left open
past its timeout is aborted by the broker; and all of it holds across a restart and a kill -9
between the commit decision and the markers (the transaction is then completed, never
half-visible).

Method: a module broker with 3 ``__transaction_state`` partitions and a 200 ms timeout
reaper for the tests that share it; tests that restart or kill get their own broker.  The kill
test delays marker writes with ``STREAMBUS_TEST_TXN_MARKER_DELAY_MS`` so the kill lands after
EndTxn was acknowledged and before any marker.  Records are compared as whole value sets;
every wait polls with a deadline.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Iterator

import pytest

from broker_process import Broker

DEADLINE_S = 30.0
OVERRIDES = {
    "transaction.state.log.num.partitions": "3",
    "offsets.topic.num.partitions": "3",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "200",
    "group.initial.rebalance.delay.ms": "0",
}


@pytest.fixture(scope="module")
def txn_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    instance = Broker(tmp_path_factory.mktemp("transactions"), overrides=OVERRIDES).start()
    yield instance
    instance.finish()


# -- helpers ------------------------------------------------------------------------------------


def new_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(bootstrap: str, topic: str, partitions: int = 2) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=15)


def confluent_producer(bootstrap: str, transactional_id: str, **extra):
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id,
                         "linger.ms": 5, **extra})
    producer.init_transactions(DEADLINE_S)
    return producer


def read_confluent(bootstrap: str, topic: str, partitions: int, isolation: str,
                   expected_count: int | None = None, quiet_s: float = 1.5) -> list[bytes]:
    """Every value in the partitions (assign + seek), read until ``expected_count`` values
    arrived and then ``quiet_s`` without more (or the deadline)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": new_name("reader"),
                         "isolation.level": isolation, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    values: list[bytes] = []
    deadline = time.monotonic() + DEADLINE_S
    last_arrival = time.monotonic()
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            now = time.monotonic()
            if message is not None and not message.error():
                values.append(message.value())
                last_arrival = now
            enough = expected_count is None or len(values) >= expected_count
            if enough and now - last_arrival >= quiet_s:
                break
    finally:
        consumer.close()
    return values


def read_kafka_python(bootstrap: str, topic: str, partitions: int, isolation: str) -> list[bytes]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation,
                             enable_auto_commit=False, consumer_timeout_ms=2000)
    assigned = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(assigned)
    consumer.seek_to_beginning(*assigned)
    try:
        return [message.value for message in consumer]
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str, partitions: int, isolation: str) -> list[int]:
    """ListOffsets latest as each isolation level sees it (kafka-python)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation)
    try:
        offsets = consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return [offsets[TopicPartition(topic, p)] for p in range(partitions)]
    finally:
        consumer.close()


def wait_until(predicate, what: str, timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def describe_transaction(bootstrap: str, transactional_id: str):
    from streambus.client.admin import connect_admin

    with connect_admin(bootstrap, timeout_ms=10_000) as admin:
        return admin.describe_transactions([transactional_id])[0]


def produce_transactions(bootstrap: str, topic: str, transactional_id: str, rounds: int,
                         per_round: int = 6) -> tuple[set[bytes], set[bytes]]:
    """Alternate commit (even rounds) and abort (odd rounds) across two partitions.
    Returns (committed values, aborted values)."""
    producer = confluent_producer(bootstrap, transactional_id)
    committed: set[bytes] = set()
    aborted: set[bytes] = set()
    for round_index in range(rounds):
        producer.begin_transaction()
        values = [f"{transactional_id}-r{round_index}-{i}".encode() for i in range(per_round)]
        for i, value in enumerate(values):
            producer.produce(topic, value=value, partition=i % 2)
        producer.flush(DEADLINE_S)  # written (read_uncommitted sees them) before the decision
        if round_index % 2 == 0:
            producer.commit_transaction(DEADLINE_S)
            committed.update(values)
        else:
            producer.abort_transaction(DEADLINE_S)
            aborted.update(values)
    return committed, aborted


# -- tests --------------------------------------------------------------------------------------


def test_confluent_commit_and_abort_alternate_across_two_partitions(txn_broker: Broker) -> None:
    """read_committed (confluent-kafka, kafka-python) sees exactly the committed records,
    read_uncommitted (both) sees all of them."""
    bootstrap = txn_broker.bootstrap
    topic = new_name("txn-alt")
    create_topic(bootstrap, topic)
    committed, aborted = produce_transactions(bootstrap, topic, new_name("alt"), rounds=6)
    everything = committed | aborted
    assert sorted(read_confluent(bootstrap, topic, 2, "read_committed",
                                 len(committed))) == sorted(committed)
    assert sorted(read_confluent(bootstrap, topic, 2, "read_uncommitted",
                                 len(everything))) == sorted(everything)
    assert sorted(read_kafka_python(bootstrap, topic, 2, "read_committed")) == sorted(committed)
    assert sorted(read_kafka_python(bootstrap, topic, 2, "read_uncommitted")) == sorted(everything)
    # Nothing is open: both isolation levels end at the same offsets.
    assert end_offsets(bootstrap, topic, 2, "read_committed") == \
        end_offsets(bootstrap, topic, 2, "read_uncommitted")


def test_open_transaction_holds_read_committed_at_the_last_stable_offset(txn_broker: Broker) -> None:
    """Records after an open transaction's first offset stay invisible to read_committed,
    even non-transactional ones, until the transaction commits."""
    from confluent_kafka import Producer

    bootstrap = txn_broker.bootstrap
    topic = new_name("txn-lso")
    create_topic(bootstrap, topic, partitions=1)
    plain = Producer({"bootstrap.servers": bootstrap})
    plain.produce(topic, value=b"before", partition=0)
    plain.flush(DEADLINE_S)
    producer = confluent_producer(bootstrap, new_name("lso"))
    producer.begin_transaction()
    producer.produce(topic, value=b"open-1", partition=0)
    producer.produce(topic, value=b"open-2", partition=0)
    producer.flush(DEADLINE_S)
    plain.produce(topic, value=b"after", partition=0)
    plain.flush(DEADLINE_S)
    assert read_confluent(bootstrap, topic, 1, "read_committed", 1) == [b"before"]
    assert read_kafka_python(bootstrap, topic, 1, "read_committed") == [b"before"]
    assert sorted(read_confluent(bootstrap, topic, 1, "read_uncommitted", 4)) == \
        sorted([b"before", b"open-1", b"open-2", b"after"])
    assert end_offsets(bootstrap, topic, 1, "read_committed") == [1]  # the open txn's start
    assert end_offsets(bootstrap, topic, 1, "read_uncommitted") == [4]
    producer.commit_transaction(DEADLINE_S)
    wait_until(lambda: end_offsets(bootstrap, topic, 1, "read_committed")[0] == 5,
               "the last stable offset to move past the commit marker")
    assert sorted(read_confluent(bootstrap, topic, 1, "read_committed", 4)) == \
        sorted([b"before", b"open-1", b"open-2", b"after"])


def test_consume_transform_produce_writes_each_output_once(txn_broker: Broker) -> None:
    """send_offsets_to_transaction: outputs and input offsets commit together; an aborted
    round is redone from the committed offsets, so nothing is lost or duplicated, and the
    group's committed offset ends at the input's end."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    bootstrap = txn_broker.bootstrap
    source, sink = new_name("ctp-in"), new_name("ctp-out")
    create_topic(bootstrap, source, partitions=1)
    create_topic(bootstrap, sink, partitions=1)
    total = 60
    plain = Producer({"bootstrap.servers": bootstrap})
    for i in range(total):
        plain.produce(source, value=f"in-{i}".encode(), partition=0)
    plain.flush(DEADLINE_S)
    group = new_name("ctp-group")
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "isolation.level": "read_committed"})
    consumer.assign([TopicPartition(source, 0)])
    producer = confluent_producer(bootstrap, new_name("ctp"))
    done = 0
    round_index = 0
    deadline = time.monotonic() + DEADLINE_S * 2
    try:
        while done < total and time.monotonic() < deadline:
            messages = [m for m in consumer.consume(num_messages=10, timeout=1.0) if not m.error()]
            if not messages:
                continue
            producer.begin_transaction()
            for message in messages:
                producer.produce(sink, value=b"out-" + message.value(), partition=0)
            producer.send_offsets_to_transaction(
                consumer.position(consumer.assignment()), consumer.consumer_group_metadata(),
                DEADLINE_S)
            round_index += 1
            if round_index == 3:
                # Abort one round: its outputs vanish and its input is read again.
                producer.flush(DEADLINE_S)
                producer.abort_transaction(DEADLINE_S)
                committed = consumer.committed([TopicPartition(source, 0)], timeout=10)
                consumer.seek(TopicPartition(source, 0, committed[0].offset))
                continue
            producer.commit_transaction(DEADLINE_S)
            done = messages[-1].offset() + 1
        assert done == total
        committed = consumer.committed([TopicPartition(source, 0)], timeout=10)
        assert committed[0].offset == total
    finally:
        consumer.close()
    outputs = read_confluent(bootstrap, sink, 1, "read_committed", total)
    assert sorted(outputs) == sorted(f"out-in-{i}".encode() for i in range(total))


def test_kafka_python_and_aiokafka_transactional_producers(txn_broker: Broker) -> None:
    """Both Python clients commit and abort; read_committed sees only the commits."""
    from kafka import KafkaProducer

    bootstrap = txn_broker.bootstrap
    topic = new_name("txn-py")
    create_topic(bootstrap, topic, partitions=2)
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=new_name("kp"))
    producer.init_transactions()
    producer.begin_transaction()
    producer.send(topic, b"kp-commit-0", partition=0)
    producer.send(topic, b"kp-commit-1", partition=1)
    producer.commit_transaction()
    producer.begin_transaction()
    producer.send(topic, b"kp-abort", partition=0)
    producer.flush()
    producer.abort_transaction()
    producer.close()

    async def aiokafka_round() -> None:
        from aiokafka import AIOKafkaProducer

        aio = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=new_name("aio"))
        await aio.start()
        try:
            async with aio.transaction():
                await aio.send_and_wait(topic, b"aio-commit", partition=1)
            await aio.begin_transaction()
            await aio.send_and_wait(topic, b"aio-abort", partition=1)
            await aio.abort_transaction()
        finally:
            await aio.stop()

    asyncio.run(aiokafka_round())
    expected = [b"aio-commit", b"kp-commit-0", b"kp-commit-1"]
    assert sorted(read_kafka_python(bootstrap, topic, 2, "read_committed")) == expected
    assert sorted(read_confluent(bootstrap, topic, 2, "read_committed", 3)) == expected
    assert len(read_kafka_python(bootstrap, topic, 2, "read_uncommitted")) == 5


def test_second_producer_with_the_same_transactional_id_fences_the_first(txn_broker: Broker) -> None:
    """init_transactions of a second producer aborts the first one's open transaction and
    bumps the epoch; the first producer can no longer commit."""
    from confluent_kafka import KafkaException

    bootstrap = txn_broker.bootstrap
    topic = new_name("txn-fence")
    create_topic(bootstrap, topic, partitions=1)
    transactional_id = new_name("fence")
    first = confluent_producer(bootstrap, transactional_id)
    first.begin_transaction()
    first.produce(topic, value=b"zombie", partition=0)
    first.flush(DEADLINE_S)
    second = confluent_producer(bootstrap, transactional_id)
    second.begin_transaction()
    second.produce(topic, value=b"winner", partition=0)
    second.commit_transaction(DEADLINE_S)
    with pytest.raises(KafkaException) as raised:
        first.produce(topic, value=b"zombie-2", partition=0)
        first.commit_transaction(DEADLINE_S)
    error = raised.value.args[0]
    assert error.fatal() or "fenc" in str(error).lower(), error
    assert read_confluent(bootstrap, topic, 1, "read_committed", 1) == [b"winner"]
    state = describe_transaction(bootstrap, transactional_id)
    assert state.transaction_state == "CompleteCommit"
    assert state.producer_epoch >= 2  # init, fence bump, second init


def test_transaction_open_past_its_timeout_is_aborted_by_the_broker(txn_broker: Broker) -> None:
    """The broker aborts (and fences) a transaction open longer than transaction.timeout.ms:
    read_committed moves past it, its records never become visible."""
    from confluent_kafka import KafkaException

    bootstrap = txn_broker.bootstrap
    topic = new_name("txn-timeout")
    create_topic(bootstrap, topic, partitions=1)
    transactional_id = new_name("timeout")
    producer = confluent_producer(bootstrap, transactional_id, **{"transaction.timeout.ms": 1500})
    producer.begin_transaction()
    producer.produce(topic, value=b"abandoned", partition=0)
    producer.flush(DEADLINE_S)
    assert end_offsets(bootstrap, topic, 1, "read_committed") == [0]
    wait_until(lambda: describe_transaction(bootstrap, transactional_id).transaction_state
               == "CompleteAbort", "the broker to abort the timed-out transaction")
    wait_until(lambda: end_offsets(bootstrap, topic, 1, "read_committed") == [2],
               "the abort marker to release the last stable offset")
    assert read_confluent(bootstrap, topic, 1, "read_committed", 0, quiet_s=1.0) == []
    with pytest.raises(KafkaException):
        producer.commit_transaction(10)


def _restart_broker(tmp_path, env=None) -> Broker:
    return Broker(tmp_path / "broker", overrides=OVERRIDES, env=env or {}).start()


def test_committed_aborted_and_open_transactions_survive_a_restart(tmp_path) -> None:
    """After a clean restart: committed records visible, aborted ones not, and a transaction
    open across the restart still holds the last stable offset until it is resolved."""
    broker = _restart_broker(tmp_path)
    try:
        bootstrap = broker.bootstrap
        topic = new_name("txn-restart")
        create_topic(bootstrap, topic)
        committed, aborted = produce_transactions(bootstrap, topic, new_name("rs"), rounds=4)
        transactional_id = new_name("open")
        producer = confluent_producer(bootstrap, transactional_id)
        producer.begin_transaction()
        producer.produce(topic, value=b"open-across-restart", partition=0)
        producer.flush(DEADLINE_S)
        held = end_offsets(bootstrap, topic, 2, "read_committed")
        broker.stop()
        broker.restart()
        assert end_offsets(bootstrap, topic, 2, "read_committed") == held
        assert sorted(read_confluent(bootstrap, topic, 2, "read_committed",
                                     len(committed))) == sorted(committed)
        # A new producer with the same id fences and aborts the open transaction.
        confluent_producer(bootstrap, transactional_id)
        wait_until(lambda: end_offsets(bootstrap, topic, 2, "read_committed")
                   == end_offsets(bootstrap, topic, 2, "read_uncommitted"),
                   "the fenced transaction's abort markers")
        assert sorted(read_confluent(bootstrap, topic, 2, "read_committed",
                                     len(committed))) == sorted(committed)
        assert len(read_kafka_python(bootstrap, topic, 2, "read_uncommitted")) == \
            len(committed) + len(aborted) + 1
    finally:
        broker.finish()


@pytest.mark.parametrize("stop", ["kill9", "sigterm"])
def test_commit_decided_before_a_crash_completes_after_restart(tmp_path, stop: str) -> None:
    """kill -9 (or a clean stop) after EndTxn was acknowledged but before any marker: after
    the restart the coordinator finds PrepareCommit and writes the markers, so the whole
    transaction becomes visible in both partitions, never half of it."""
    env = {"STREAMBUS_TEST_TXN_MARKER_DELAY_MS": "3000"}
    broker = _restart_broker(tmp_path, env)
    try:
        bootstrap = broker.bootstrap
        topic = new_name("txn-crash")
        create_topic(bootstrap, topic)
        transactional_id = new_name("crash")
        producer = confluent_producer(bootstrap, transactional_id)
        producer.begin_transaction()
        values = {f"decided-{i}".encode() for i in range(8)}
        for i, value in enumerate(sorted(values)):
            producer.produce(topic, value=value, partition=i % 2)
        producer.commit_transaction(DEADLINE_S)  # acknowledged at PrepareCommit
        assert end_offsets(bootstrap, topic, 2, "read_committed") == [0, 0]
        if stop == "kill9":
            broker.kill9()
        else:
            broker.stop()
        broker.restart()
        wait_until(lambda: describe_transaction(bootstrap, transactional_id).transaction_state
                   == "CompleteCommit", "the restarted coordinator to complete the commit")
        assert end_offsets(bootstrap, topic, 2, "read_committed") == [5, 5]
        assert sorted(read_confluent(bootstrap, topic, 2, "read_committed", len(values))) == \
            sorted(values)
        assert sorted(read_kafka_python(bootstrap, topic, 2, "read_committed")) == sorted(values)
    finally:
        broker.finish()


def test_cli_lists_describes_and_aborts_a_hanging_transaction(txn_broker: Broker) -> None:
    """``streambus transactions list|describe|abort`` against the broker: an operator finds
    the open transaction, sees its partitions, and aborts it on the partition through
    DescribeProducers + WriteTxnMarkers, which releases read_committed consumers."""
    import json
    import subprocess
    import sys

    from compat_clients import REPO_ROOT

    def cli(*argv: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-m", "streambus.cli.admin", "--bootstrap-server",
             txn_broker.bootstrap, "--output", "json", *argv],
            capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    bootstrap = txn_broker.bootstrap
    topic = new_name("txn-cli")
    create_topic(bootstrap, topic, partitions=1)
    transactional_id = new_name("cli")
    producer = confluent_producer(bootstrap, transactional_id)
    producer.begin_transaction()
    producer.produce(topic, value=b"stuck", partition=0)
    producer.flush(DEADLINE_S)
    listed = cli("transactions", "list", "--state", "Ongoing")["transactions"]
    assert transactional_id in [t["transactional_id"] for t in listed]
    [described] = cli("transactions", "describe", transactional_id)["transactions"]
    assert described["state"] == "Ongoing"
    assert described["partitions"] == [{"topic": topic, "partitions": [0]}]
    assert end_offsets(bootstrap, topic, 1, "read_committed") == [0]
    aborted = cli("transactions", "abort", "--topic", topic, "--partition", "0",
                  "--start-offset", "0")
    assert aborted["aborted"] is True and aborted["producer_id"] == described["producer_id"]
    assert end_offsets(bootstrap, topic, 1, "read_committed") == [2]
    assert read_confluent(bootstrap, topic, 1, "read_committed", 0, quiet_s=1.0) == []
