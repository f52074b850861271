"""Group state that must hold across time: committed offsets across a broker restart, static
members that restart without a rebalance, and admin views that agree with what happened.

Goal: (1) offsets committed by one client survive SIGTERM + restart and another client resumes
exactly there; (2) a static member (KIP-345) that restarts within its session timeout gets its
partitions back while the other member sees no rebalance; (3) kafka-python's admin client and
the ``streambus groups`` CLI list, describe and delete groups consistently with the consumers'
own view (members, assignments, committed offsets, lag).

Method: real clients against broker subprocesses with a 500 ms initial rebalance delay; waits
poll with deadlines.  Rebalances are counted three ways: the surviving member's assignment
callbacks, its generation, and the broker's ``streambus_group_rebalances_total``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

from compat_clients import REPO_ROOT
from raw_wire import parse_prometheus
from test_compat_groups import (
    INITIAL_REBALANCE_DELAY_MS,
    PARTITIONS,
    KafkaPythonMember,
    assert_each_record_once,
    create_topic,
    kafka_python_members,
    produce,
    wait_until,
)

OVERRIDES = {"group.initial.rebalance.delay.ms": str(INITIAL_REBALANCE_DELAY_MS)}


def cli(bootstrap: str, *args: str) -> tuple[int, dict | str, str]:
    completed = subprocess.run(
        [sys.executable, "-m", "streambus.cli.admin", "--bootstrap-server", bootstrap,
         "--output", "json", *args], capture_output=True, text=True, timeout=30, cwd=REPO_ROOT)
    try:
        document: dict | str = json.loads(completed.stdout)
    except json.JSONDecodeError:
        document = completed.stdout
    return completed.returncode, document, completed.stderr


def rebalances(broker) -> float:
    status, body, _ = broker.http("/metrics")
    assert status == 200
    return sum(value for name, _, value in parse_prometheus(body.decode())
               if name == "streambus_group_rebalances_total")


def test_committed_offsets_survive_a_restart_and_another_client_resumes_there(
        broker_factory, topic) -> None:
    from confluent_kafka import Consumer
    from kafka import KafkaConsumer
    from kafka.admin import KafkaAdminClient

    broker = broker_factory(overrides=OVERRIDES)
    create_topic(broker.bootstrap, topic, partitions=3)
    first = produce(broker.bootstrap, topic, count=90, tag="before", partitions=3)
    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             fetch_max_wait_ms=100)
    seen = 0
    deadline = time.monotonic() + 30
    while seen < len(first) and time.monotonic() < deadline:
        seen += sum(len(b) for b in consumer.poll(timeout_ms=100).values())
    assert seen == len(first)
    consumer.commit()
    consumer.close()
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    committed_before = {tp.partition: meta.offset
                        for tp, meta in admin.list_group_offsets(group)[group].items()}
    admin.close()
    assert committed_before == {0: 30, 1: 30, 2: 30}

    broker.stop()
    broker.restart()

    second = produce(broker.bootstrap, topic, count=30, tag="after", partitions=3)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    committed_after = {tp.partition: meta.offset
                       for tp, meta in admin.list_group_offsets(group)[group].items()}
    admin.close()
    assert committed_after == committed_before
    resumed = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                        "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100})
    received = []
    try:
        resumed.subscribe([topic])
        deadline = time.monotonic() + 30
        while len(received) < len(second) and time.monotonic() < deadline:
            message = resumed.poll(0.1)
            if message is not None and message.error() is None:
                received.append((message.partition(), message.offset(), message.value()))
        deadline = time.monotonic() + 1.0  # anything more would be a re-delivery
        while time.monotonic() < deadline:
            message = resumed.poll(0.1)
            assert message is None or message.error() is not None, (
                f"re-delivered {message.partition()}:{message.offset()}")
    finally:
        resumed.close()
    assert_each_record_once({"rdk": received}, second, 1)
    assert min(o for p, o, _ in received if p == 0) == committed_before[0]


def test_static_member_restarts_without_a_rebalance(broker_factory, topic) -> None:
    broker = broker_factory(overrides=OVERRIDES)
    create_topic(broker.bootstrap, topic)
    group = f"g-{uuid.uuid4().hex[:8]}"

    def static(instance_id: str) -> KafkaPythonMember:
        member = KafkaPythonMember(broker.bootstrap, topic, group, f"static-{instance_id}",
                                   group_instance_id=instance_id, session_timeout_ms=10_000)
        member.start()
        return member

    stay, restart = static("a"), static("b")
    replacement = None
    try:
        wait_until(lambda: stay.assignment and restart.assignment
                   and len(stay.assignment | restart.assignment) == PARTITIONS, "two static members")
        callbacks, owned = stay.assigned_count, restart.assignment
        wait_until(lambda: rebalances(broker) >= 1, "the first generation to be counted")
        rebalances_before = rebalances(broker)
        restart.stop()  # a static member sends no LeaveGroup
        replacement = static("b")
        took_s = wait_until(lambda: replacement.assignment, "the restarted member's assignment")
        print(f"\nkafka-python: static member back after {took_s:.2f}s")
        assert replacement.assignment == owned
        more = produce(broker.bootstrap, topic, count=60, tag="after-restart")
        wait_until(lambda: sum(1 for m in (stay, replacement) for r in m.records
                               if r[2].startswith(b"after-restart")) >= len(more), "new records")
        assert stay.assigned_count == callbacks, "the other member went through a rebalance"
        assert rebalances(broker) == rebalances_before
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        described = admin.describe_groups([group])[group]
        admin.close()
        assert described["group_state"] == "Stable"
        assert sorted(m["group_instance_id"] for m in described["members"]) == ["a", "b"]
    finally:
        stay.stop()
        if replacement is not None:
            replacement.stop()
    new = {m.name: [r for r in m.records if r[2].startswith(b"after-restart")]
           for m in (stay, replacement)}
    assert_each_record_once(new, more, 2)


def test_admin_client_and_cli_agree_with_the_consumers(broker_factory, topic) -> None:
    from kafka.admin import KafkaAdminClient

    broker = broker_factory(overrides=OVERRIDES)
    create_topic(broker.bootstrap, topic)
    expected = produce(broker.bootstrap, topic, count=120)
    group, idle = f"g-{uuid.uuid4().hex[:8]}", f"idle-{uuid.uuid4().hex[:8]}"
    members = kafka_python_members(broker.bootstrap, topic, group, 2)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        wait_until(lambda: sum(len(m.records) for m in members) >= len(expected), "all records")
        wait_until(lambda: all(m.assignment for m in members), "assignments")
        # Committed offsets reach the end (auto-commit every 200 ms).
        wait_until(lambda: sum(meta.offset for meta in admin.list_group_offsets(group)[group].values())
                   == len(expected), "auto-committed offsets")
        assignment = {m.name: sorted(m.assignment) for m in members}

        def group_metrics() -> dict:
            _, body, _ = broker.http("/metrics")
            samples = parse_prometheus(body.decode())
            return {
                "stable": sum(v for n, labels, v in samples if n == "streambus_group_count"
                              and labels == {"type": "classic", "state": "Stable"}),
                "lag": {int(labels["partition"]): v for n, labels, v in samples
                        if n == "streambus_group_consumer_lag" and labels.get("group") == group},
                "commits": sum(v for n, _, v in samples
                               if n == "streambus_group_offset_commits_total"),
            }

        wait_until(lambda: group_metrics()["lag"] == {p: 0 for p in range(PARTITIONS)},
                   "lag metrics at zero for every partition")
        assert group_metrics()["stable"] >= 1 and group_metrics()["commits"] >= PARTITIONS

        listed = {g["group_id"]: g for g in admin.list_groups()}
        assert listed[group]["group_state"] == "Stable"
        code, document, _ = cli(broker.bootstrap, "groups", "list")
        assert code == 0
        cli_listed = {g["group_id"]: g for g in document["groups"]}
        assert cli_listed[group] == {"group_id": group, "state": "Stable", "type": "classic",
                                     "protocol_type": "consumer"}

        described = admin.describe_groups([group])[group]
        code, document, _ = cli(broker.bootstrap, "groups", "describe", group)
        assert code == 0
        [view] = document["groups"]
        assert view["state"] == described["group_state"] == "Stable"
        assert {m["member_id"] for m in view["members"]} == {
            m["member_id"] for m in described["members"]}
        assert sorted(sorted(a["partitions"]) for m in view["members"] for a in m["assignment"]) \
            == sorted(assignment.values())
        assert sorted(m["client_id"] for m in view["members"]) == sorted(assignment)
        assert [(o["partition"], o["committed_offset"], o["log_end_offset"], o["lag"])
                for o in view["offsets"]] == [(p, 20, 20, 0) for p in range(PARTITIONS)]

        code, _, stderr = cli(broker.bootstrap, "groups", "delete", group)
        assert code == 1 and "NON_EMPTY_GROUP" in stderr
        assert admin.delete_groups([group])[group] != "OK"
    finally:
        for member in members:
            member.stop()
    # An idle group that only holds offsets, committed by the CLI's reset (an admin commit).
    code, document, stderr = cli(broker.bootstrap, "groups", "reset-offsets", idle, "--topic",
                                 f"{topic}:0,1", "--to-offset", "5", "--execute")
    assert code == 0, stderr
    assert document["offsets"] == [{"topic": topic, "partition": 0, "offset": 5},
                                   {"topic": topic, "partition": 1, "offset": 5}]
    assert {tp.partition: meta.offset for tp, meta in admin.list_group_offsets(idle)[idle].items()} \
        == {0: 5, 1: 5}

    wait_until(lambda: {g["group_id"]: g["group_state"] for g in admin.list_groups()}.get(group)
               == "Empty", "the group to become Empty")
    code, document, _ = cli(broker.bootstrap, "groups", "describe", group)
    assert code == 0 and document["groups"][0]["state"] == "Empty"
    assert document["groups"][0]["members"] == []
    code, document, stderr = cli(broker.bootstrap, "groups", "delete", group, "missing-group",
                                 "--if-exists")
    assert (code, document) == (0, {"deleted": [group], "missing": ["missing-group"]}), stderr
    assert admin.delete_groups([idle])[idle] == "OK"
    remaining = {g["group_id"] for g in admin.list_groups()}
    code, document, _ = cli(broker.bootstrap, "groups", "list")
    admin.close()
    assert group not in remaining and idle not in remaining
    assert {g["group_id"] for g in document["groups"]} == remaining
    code, _, stderr = cli(broker.bootstrap, "groups", "describe", group)
    assert code == 1 and "does not exist" in stderr
