"""The ``streambus`` admin CLI against a real broker, checked against kafka-python's view.

Goal: ``streambus topics create/list/describe/delete`` round-trip through a real StreamBus
broker, ``--output json`` is machine-readable, Kafka errors come out as ``Error: NAME: message``
with exit code 1 (0 with ``--if-not-exists`` / ``--if-exists``), an unreachable cluster exits
3, and what the CLI reports agrees with kafka-python's ``KafkaAdminClient`` (list_topics and
describe_topics) in both directions.

Method: the CLI runs as a subprocess (``python -m streambus.cli.admin``), exactly as operators
run it, against the module's broker subprocess; every test uses its own unique topic names.
Deletion is asynchronous in Kafka's model, so "gone" is polled with a deadline.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest

from broker_process import REPO_ROOT, free_port
from compat_clients import unique_topic

CLI_TIMEOUT_S = 60.0
DEADLINE_S = 15.0
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}


def cli(broker_or_bootstrap: Any, *argv: str) -> subprocess.CompletedProcess[str]:
    bootstrap = getattr(broker_or_bootstrap, "bootstrap", broker_or_bootstrap)
    return subprocess.run(
        [sys.executable, "-m", "streambus.cli.admin", "--bootstrap-server", bootstrap,
         "--timeout-ms", "10000", *argv],
        capture_output=True, text=True, env=ENV, cwd=REPO_ROOT, timeout=CLI_TIMEOUT_S, check=False,
    )


def cli_json(broker: Any, *argv: str) -> Any:
    result = cli(broker, "--output", "json", *argv)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return json.loads(result.stdout)


def listed_names(broker: Any) -> list[str]:
    return [t["name"] for t in cli_json(broker, "topics", "list")["topics"]]


def wait_until(predicate, what: str, timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def _field(mapping: dict, *names: str) -> Any:
    # kafka-python's metadata dicts have used both the old and the KIP-style key names.
    for name in names:
        if name in mapping:
            return mapping[name]
    raise KeyError(f"none of {names} in {sorted(mapping)}")


def kafka_topic_id_text(topic_id: Any) -> str | None:
    """kafka-python's topic id rendered as Kafka's Uuid.toString (the CLI's format)."""
    if topic_id is None:
        return None
    if not isinstance(topic_id, uuid.UUID):
        try:
            topic_id = uuid.UUID(str(topic_id))
        except ValueError:
            return str(topic_id)  # already Kafka's base64 form
    if topic_id.int == 0:
        return None
    return base64.urlsafe_b64encode(topic_id.bytes).rstrip(b"=").decode()


@pytest.fixture
def kafka_python_admin(broker):
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="compat-cli-admin")
    yield admin
    admin.close()


# -- round trips ------------------------------------------------------------------------


def test_topic_lifecycle_round_trips_through_the_cli(broker, topic) -> None:
    created = cli_json(broker, "topics", "create", topic, "--partitions", "3",
                       "--replication-factor", "1", "--config", "retention.ms=3600000")
    assert {k: created[k] for k in ("name", "created", "partition_count", "replication_factor")} == {
        "name": topic, "created": True, "partition_count": 3, "replication_factor": 1}
    assert created["topic_id"]

    listed = [t for t in cli_json(broker, "topics", "list")["topics"] if t["name"] == topic]
    assert listed == [{"name": topic, "topic_id": created["topic_id"], "internal": False,
                       "partition_count": 3, "replication_factor": 1}]

    [described] = cli_json(broker, "topics", "describe", topic)["topics"]
    assert described["configs"] == {"retention.ms": "3600000"}
    assert described["topic_id"] == created["topic_id"]
    assert [p["partition"] for p in described["partitions"]] == [0, 1, 2]
    for partition in described["partitions"]:
        assert partition["leader"] >= 0
        assert partition["replicas"] == [partition["leader"]]
        assert partition["isr"] == [partition["leader"]]

    deleted = cli_json(broker, "topics", "delete", topic)
    assert deleted == {"deleted": [topic], "missing": []}
    wait_until(lambda: topic not in listed_names(broker), f"{topic} to disappear")


def test_table_output_is_aligned_with_headers(broker, topic) -> None:
    assert cli(broker, "topics", "create", topic, "--partitions", "2").returncode == 0
    listing = cli(broker, "topics", "list")
    assert listing.returncode == 0
    header, *rows = listing.stdout.splitlines()
    assert header.split() == ["TOPIC", "PARTITIONS", "REPLICATION_FACTOR", "TOPIC_ID"]
    [row] = [r for r in rows if r.split()[0] == topic]
    # Each value starts exactly under its header.
    assert [row[header.index(column):].split()[0] for column in
            ("PARTITIONS", "REPLICATION_FACTOR")] == ["2", "1"]

    described = cli(broker, "topics", "describe", topic)
    assert described.returncode == 0
    lines = described.stdout.splitlines()
    assert lines[0].split() == ["TOPIC", "TOPIC_ID", "PARTITIONS", "REPLICATION_FACTOR", "CONFIGS"]
    assert lines[3].split() == ["PARTITION", "LEADER", "LEADER_EPOCH", "REPLICAS", "ISR"]
    assert [line.split()[0] for line in lines[4:]] == ["0", "1"]


def test_create_without_partitions_uses_broker_default(broker, topic) -> None:
    """KIP-464 defaults: the broker's num.partitions (1 unless overridden)."""
    created = cli_json(broker, "topics", "create", topic)
    assert (created["partition_count"], created["replication_factor"]) == (1, 1)


# -- errors and exit codes --------------------------------------------------------------


def test_creating_an_existing_topic_prints_topic_already_exists_and_exits_1(broker, topic) -> None:
    assert cli(broker, "topics", "create", topic).returncode == 0
    again = cli(broker, "topics", "create", topic)
    assert (again.returncode, again.stdout, again.stderr) == (
        1, "", f"Error: TOPIC_ALREADY_EXISTS: Topic '{topic}' already exists.\n")


def test_if_not_exists_turns_topic_already_exists_into_success(broker, topic) -> None:
    assert cli(broker, "topics", "create", topic).returncode == 0
    again = cli(broker, "--output", "json", "topics", "create", topic, "--if-not-exists")
    assert (again.returncode, json.loads(again.stdout), again.stderr) == (
        0, {"name": topic, "created": False}, "")


def test_invalid_config_value_from_broker_exits_1(broker, topic) -> None:
    """A config the broker rejects comes back as a Kafka error, not a usage error."""
    result = cli(broker, "topics", "create", topic, "--config", "retention.ms=not-a-number")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: INVALID_CONFIG: ")


def test_deleting_a_missing_topic_exits_1_unless_if_exists(broker) -> None:
    missing = unique_topic("missing")
    plain = cli(broker, "topics", "delete", missing)
    assert (plain.returncode, plain.stderr) == (
        1, f"Error: UNKNOWN_TOPIC_OR_PARTITION: Topic '{missing}' does not exist.\n")
    tolerant = cli(broker, "--output", "json", "topics", "delete", missing, "--if-exists")
    assert (tolerant.returncode, json.loads(tolerant.stdout)) == (
        0, {"deleted": [], "missing": [missing]})


def test_describing_a_missing_topic_exits_1(broker) -> None:
    missing = unique_topic("missing")
    result = cli(broker, "topics", "describe", missing)
    assert (result.returncode, result.stdout, result.stderr) == (
        1, "", f"Error: UNKNOWN_TOPIC_OR_PARTITION: Topic '{missing}' does not exist.\n")


def test_unreachable_bootstrap_server_exits_3() -> None:
    result = cli(f"127.0.0.1:{free_port()}", "topics", "list")
    assert result.returncode == 3
    assert result.stderr.startswith("Error: no broker reachable: cannot connect to 127.0.0.1:")


def test_bootstrap_list_skips_a_dead_server(broker, topic) -> None:
    assert cli(broker, "topics", "create", topic).returncode == 0
    dead_then_live = f"127.0.0.1:{free_port()},{broker.bootstrap}"
    assert topic in [t["name"] for t in cli_json(dead_then_live, "topics", "list")["topics"]]


def test_usage_error_exits_2() -> None:
    result = cli("127.0.0.1:1", "topics", "create")
    assert result.returncode == 2
    assert "Error: the following arguments are required: NAME" in result.stderr


# -- agreement with kafka-python --------------------------------------------------------


def test_cli_view_matches_kafka_python_for_a_cli_created_topic(broker, kafka_python_admin, topic) -> None:
    cli_json(broker, "topics", "create", topic, "--partitions", "2")
    assert topic in kafka_python_admin.list_topics()
    assert sorted(kafka_python_admin.list_topics()) == sorted(listed_names(broker))

    [theirs] = kafka_python_admin.describe_topics([topic])
    [ours] = cli_json(broker, "topics", "describe", topic)["topics"]
    assert _field(theirs, "error_code") == 0
    assert ours["internal"] == _field(theirs, "is_internal")
    their_id = kafka_topic_id_text(theirs.get("topic_id"))
    if their_id is not None:
        assert ours["topic_id"] == their_id
    their_partitions = sorted(
        ({"partition": _field(p, "partition_index", "partition"),
          "leader": _field(p, "leader_id", "leader"),
          "replicas": list(_field(p, "replica_nodes", "replicas")),
          "isr": list(_field(p, "isr_nodes", "isr"))}
         for p in _field(theirs, "partitions")),
        key=lambda p: p["partition"])
    our_partitions = [{k: p[k] for k in ("partition", "leader", "replicas", "isr")}
                      for p in ours["partitions"]]
    assert our_partitions == their_partitions


def test_cli_sees_and_deletes_a_kafka_python_created_topic(broker, kafka_python_admin, topic) -> None:
    from kafka.admin import NewTopic

    kafka_python_admin.create_topics([NewTopic(topic, 4, 1, topic_configs={"cleanup.policy": "compact"})])
    [ours] = cli_json(broker, "topics", "describe", topic)["topics"]
    assert (ours["partition_count"], ours["configs"]) == (4, {"cleanup.policy": "compact"})

    assert cli_json(broker, "topics", "delete", topic) == {"deleted": [topic], "missing": []}
    wait_until(lambda: topic not in kafka_python_admin.list_topics(), f"{topic} to disappear")
