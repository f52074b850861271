"""A three-node cluster on loopback: one metadata quorum, three brokers, failover by kill -9
and by SIGSTOP, with real Kafka clients watching (issue 5, "Done when").

Goal: the cluster shows three brokers and one quorum leader to Metadata (kafka-python,
confluent-kafka), ``kcat -L``, ``streambus cluster describe`` and kafka-python's
``describe_metadata_quorum``; topics created through any node are visible identically on every
node with partition leaders spread over the brokers; killing (kill -9) or pausing (SIGSTOP) the
quorum leader leaves a quorum that accepts metadata changes within 5 s; the old leader comes
back as a follower, catches up, and never leads beside the new one.

Method: three ``streambus.cli.broker`` processes with ``--node-id``, ``--controller-listen``
and ``--voters`` (combined broker+controller roles), started together; the quorum leader is
read from each node's /health.  "Accepts metadata changes" is measured from the kill to the
first CreateTopics that succeeds through a surviving node (which forwards to the new
controller).  Tests share one cluster per module and run in order; each leaves it healthy.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from broker_process import REPO_ROOT, Broker, BrokerStartError, free_port
from compat_clients import consume_kafka_python, make_records, produce_confluent, unique_topic

NODE_COUNT = 3
#: Small, so the nodes snapshot their metadata image and trim the log during the tests, and a
#: node that was down catches up through FetchSnapshot rather than the whole log.
SNAPSHOT_RECORD_BYTES = 1024
FAILOVER_S_MAX = 5.0
CONVERGE_TIMEOUT_S = 30.0


class ClusterNode(Broker):
    """One node of the cluster: a Broker whose ports are chosen up front (the voters list
    names every controller listener) and whose start does not wait for /health alone."""

    def __init__(self, work_dir: Path, node_id: int, ports: dict[str, int], voters: str) -> None:
        super().__init__(work_dir, overrides={
            "metadata.log.max.record.bytes.between.snapshots": str(SNAPSHOT_RECORD_BYTES)})
        self.node_id = node_id
        self.port = ports["kafka"]
        self.http_port = ports["http"]
        self.controller_port = ports["controller"]
        self.voters = voters
        self._wait_on_spawn = False

    def command(self) -> list[str]:
        return super().command() + [
            "--node-id", str(self.node_id),
            "--controller-listen", f"127.0.0.1:{self.controller_port}",
            "--voters", self.voters,
        ]

    def spawn(self) -> None:
        """Start the process without waiting for it to serve (a lone voter never does)."""
        self._spawn_and_wait()

    def _wait_healthy(self) -> None:
        if self._wait_on_spawn:
            super()._wait_healthy()

    def wait_serving(self) -> None:
        self._wait_on_spawn = True
        try:
            super()._wait_healthy()
        finally:
            self._wait_on_spawn = False

    def health(self) -> dict | None:
        try:
            status, body, _ = self.http("/health", timeout_s=1.0)
        except OSError:
            return None
        return json.loads(body) if status in (200, 503) else None

    def quorum(self) -> dict | None:
        health = self.health()
        return None if health is None else health.get("quorum")

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


class Cluster:
    def __init__(self, work_dir: Path) -> None:
        ports = {i: {"kafka": free_port(), "http": free_port(), "controller": free_port()}
                 for i in range(1, NODE_COUNT + 1)}
        voters = ",".join(f"{i}@127.0.0.1:{p['controller']}" for i, p in ports.items())
        self.nodes = {i: ClusterNode(work_dir / f"node-{i}", i, p, voters)
                      for i, p in ports.items()}

    def start(self) -> None:
        for node in self.nodes.values():
            node.spawn()
        for node in self.nodes.values():
            node.wait_serving()

    def bootstrap(self, *node_ids: int) -> str:
        ids = node_ids or tuple(self.nodes)
        return ",".join(self.nodes[i].bootstrap for i in ids)

    def leader_id(self, among: list[int] | None = None) -> int | None:
        """The node every reachable node names as leader, if they agree and it leads."""
        views = {}
        for node_id in among or list(self.nodes):
            quorum = self.nodes[node_id].quorum()
            if quorum is not None:
                views[node_id] = quorum
        leaders = {(q["leader_id"], q["epoch"]) for q in views.values()}
        if len(leaders) != 1:
            return None
        (leader, _), = leaders
        if leader in views and views[leader]["role"] == "leader":
            return leader
        return None

    def wait_for_leader(self, among: list[int] | None = None,
                        timeout_s: float = CONVERGE_TIMEOUT_S) -> int:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            leader = self.leader_id(among)
            if leader is not None:
                return leader
            time.sleep(0.05)
        raise AssertionError(f"no agreed quorum leader: {self.views()}")

    def views(self) -> dict[int, dict | None]:
        return {i: node.quorum() for i, node in self.nodes.items()}

    def stop(self) -> None:
        for node in self.nodes.values():
            try:
                if node.is_running():
                    node.resume()
                    node.stop()
            finally:
                node.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    instance = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        instance.start()
    except BrokerStartError:
        instance.stop()
        raise
    yield instance
    instance.stop()


# ----------------------------------------------------------------------------- helpers


def _admin(bootstrap: str):
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=4000,
                            client_id="cluster-compat")


def _create_topic(bootstrap: str, name: str, partitions: int = 3) -> None:
    """CreateTopics sent to the first broker given (the streambus client never picks the
    controller itself); a broker that is not the controller forwards it."""
    from streambus.client.admin import connect_admin
    from streambus.protocol.messages.create_topics import CreateTopicsRequest

    with connect_admin(bootstrap, timeout_ms=10_000) as admin:
        [result] = admin.create_topics([CreateTopicsRequest.CreatableTopic(
            name=name, num_partitions=partitions, replication_factor=1)])
    assert result.error_code == 0, (result.error_code, result.error_message)


def _cli(bootstrap: str, *args: str, timeout_s: float = 20) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.run(
        [sys.executable, "-m", "streambus.cli.admin", "--bootstrap-server", bootstrap,
         "--timeout-ms", "4000", *args],
        capture_output=True, text=True, timeout=timeout_s, env=env)


def _metadata_snapshot(bootstrap: str) -> dict:
    """Topics with their ids, partitions (leader, replicas) and explicitly set configs, as
    one node reports them."""
    from streambus.client.admin import connect_admin

    with connect_admin(bootstrap, timeout_ms=5000) as admin:
        topics = [t for t in admin.metadata(None).topics if t.error_code == 0]
        names = sorted(t.name for t in topics)
        configs = admin.describe_topic_configs(names)
    return {t.name: (t.topic_id,
                     {c.name: c.value for c in configs[t.name].configs if c.config_source == 1},
                     sorted((p.partition_index, p.leader_id, tuple(p.replica_nodes))
                            for p in t.partitions))
            for t in topics}


def _wait_identical(cluster: Cluster, node_ids: list[int]) -> dict:
    deadline = time.monotonic() + CONVERGE_TIMEOUT_S
    while True:
        snapshots = {i: _metadata_snapshot(cluster.nodes[i].bootstrap) for i in node_ids}
        first = snapshots[node_ids[0]]
        if all(s == first for s in snapshots.values()):
            return first
        assert time.monotonic() < deadline, f"metadata differs between nodes: {snapshots}"
        time.sleep(0.2)


def _time_to_accept_a_change(cluster: Cluster, survivors: list[int], started: float) -> float:
    """Seconds from ``started`` until a CreateTopics sent to a survivor succeeds (the
    survivor forwards it to whichever node is the active controller by then)."""
    from streambus.client.admin import connect_admin
    from streambus.client.errors import ClientError
    from streambus.protocol.messages.create_topics import CreateTopicsRequest

    name = unique_topic("after-failover")
    topic = CreateTopicsRequest.CreatableTopic(name=name, num_partitions=1,
                                               replication_factor=1)
    last_error = None
    while time.monotonic() - started < CONVERGE_TIMEOUT_S:
        try:
            with connect_admin(cluster.bootstrap(*survivors), timeout_ms=2000) as admin:
                [result] = admin.create_topics([topic])
            if result.error_code in (0, 36):  # created (or created by an earlier attempt)
                return time.monotonic() - started
            last_error = (result.error_code, result.error_message)
        except ClientError as exc:
            last_error = exc
        time.sleep(0.02)
    raise AssertionError(f"no metadata change accepted: {last_error}")


# ----------------------------------------------------------------------------- tests


def test_metadata_shows_three_brokers_and_one_quorum_leader(cluster: Cluster) -> None:
    from confluent_kafka.admin import AdminClient

    leader = cluster.wait_for_leader()
    for node_id in cluster.nodes:
        metadata = AdminClient({"bootstrap.servers": cluster.nodes[node_id].bootstrap}
                               ).list_topics(timeout=10)
        assert sorted(metadata.brokers) == [1, 2, 3]
        assert metadata.controller_id == leader

    admin = _admin(cluster.bootstrap(1))
    cluster_info = admin.describe_cluster()
    assert sorted(b["broker_id"] for b in cluster_info["brokers"]) == [1, 2, 3]
    assert cluster_info["controller_id"] == leader
    quorum = admin.describe_metadata_quorum()
    [partition] = quorum["topics"][0]["partitions"]
    assert partition["leader_id"] == leader and partition["error"] is None
    assert sorted(v["replica_id"] for v in partition["current_voters"]) == [1, 2, 3]
    assert partition["high_watermark"] > 0
    admin.close()

    result = _cli(cluster.bootstrap(2), "--output", "json", "cluster", "describe")
    assert result.returncode == 0, result.stderr
    described = json.loads(result.stdout)
    assert [b["id"] for b in described["brokers"]] == [1, 2, 3]
    assert described["quorum"]["leader_id"] == leader == described["controller_id"]
    assert sorted(v["id"] for v in described["quorum"]["voters"]) == [1, 2, 3]
    result = _cli(cluster.bootstrap(3), "quorum", "describe")
    assert result.returncode == 0 and "leader" in result.stdout, result.stderr


def test_kcat_lists_three_brokers_and_the_controller(cluster: Cluster, require_kcat) -> None:
    leader = cluster.wait_for_leader()
    for node_id in cluster.nodes:
        listing = subprocess.run(["kcat", "-L", "-b", cluster.nodes[node_id].bootstrap],
                                 capture_output=True, text=True, timeout=20)
        assert listing.returncode == 0, listing.stderr
        assert " 3 brokers:" in listing.stdout
        assert f"broker {leader} at " in listing.stdout
        controller_lines = [line for line in listing.stdout.splitlines() if "(controller)" in line]
        assert len(controller_lines) == 1 and f"broker {leader} at " in controller_lines[0]


def test_topics_created_through_any_node_are_identical_everywhere(cluster: Cluster) -> None:
    names = []
    for node_id in cluster.nodes:
        name = unique_topic(f"via-node-{node_id}")
        _create_topic(cluster.nodes[node_id].bootstrap, name, partitions=3)
        names.append(name)
    result = _cli(cluster.bootstrap(1), "configs", "alter", "--topic", names[0],
                  "--add-config", "retention.ms=3600000")
    assert result.returncode == 0, result.stderr
    metadata = _wait_identical(cluster, [1, 2, 3])
    for name in names:
        _, configs, partitions = metadata[name]
        assert sorted(leader for _, leader, _ in partitions) == [1, 2, 3], partitions
        assert all(replicas == (leader,) for _, leader, replicas in partitions)
    assert metadata[names[0]][1] == {"retention.ms": "3600000"}

    # The data path works on every broker: one record per partition, read back.
    for partition in range(3):
        produce_confluent(cluster.bootstrap(), names[1],
                          make_records(2, seed=f"p{partition}"), partition=partition)
        records = consume_kafka_python(cluster.bootstrap(), names[1], 2, partition=partition)
        assert [r.offset for r in records] == [0, 1]


def test_replication_factor_above_one_is_refused(cluster: Cluster) -> None:
    from kafka.admin import NewTopic
    from kafka.errors import InvalidReplicationFactorError

    admin = _admin(cluster.bootstrap())
    with pytest.raises(InvalidReplicationFactorError, match="replication is not available"):
        admin.create_topics([NewTopic(unique_topic("rf3"), 1, 3)])
    admin.close()


def test_kill9_of_the_leader_fails_over_and_it_rejoins_as_follower(cluster: Cluster) -> None:
    leader = cluster.wait_for_leader()
    survivors = [i for i in cluster.nodes if i != leader]
    before = _wait_identical(cluster, list(cluster.nodes))
    killed_at = time.monotonic()
    cluster.nodes[leader].kill9()
    elapsed = _time_to_accept_a_change(cluster, survivors, killed_at)
    assert elapsed < FAILOVER_S_MAX, f"metadata changes resumed after {elapsed:.1f} s"
    new_leader = cluster.wait_for_leader(among=survivors)
    assert new_leader != leader
    print(f"\nkill -9 of leader {leader}: metadata changes accepted after {elapsed:.2f} s, "
          f"new leader {new_leader}")
    for index in range(6):  # enough records for a snapshot while the old leader is down
        _create_topic(cluster.nodes[survivors[index % 2]].bootstrap,
                      unique_topic(f"while-down-{index}"), 3)

    cluster.nodes[leader].spawn()
    cluster.nodes[leader].wait_serving()  # /health 200: caught up and registered again
    after = _wait_identical(cluster, list(cluster.nodes))
    assert set(before) <= set(after)
    quorum = cluster.nodes[leader].quorum()
    assert quorum is not None and quorum["role"] == "follower"
    assert quorum["leader_id"] == new_leader


def test_sigstop_of_the_leader_fails_over_and_it_steps_down(cluster: Cluster) -> None:
    leader = cluster.wait_for_leader()
    survivors = [i for i in cluster.nodes if i != leader]
    old_epoch = cluster.nodes[leader].quorum()["epoch"]
    paused_at = time.monotonic()
    cluster.nodes[leader].pause()
    try:
        elapsed = _time_to_accept_a_change(cluster, survivors, paused_at)
        new_leader = cluster.wait_for_leader(among=survivors)
    finally:
        cluster.nodes[leader].resume()
    assert elapsed < FAILOVER_S_MAX, f"metadata changes resumed after {elapsed:.1f} s"
    print(f"\nSIGSTOP of leader {leader}: metadata changes accepted after {elapsed:.2f} s, "
          f"new leader {new_leader}")

    # Resumed, the old leader learns the higher epoch and follows; never two leaders.
    deadline = time.monotonic() + CONVERGE_TIMEOUT_S
    while True:
        views = cluster.views()
        leading = [i for i, v in views.items() if v is not None and v["role"] == "leader"]
        assert len({views[i]["epoch"] for i in leading}) == len(leading), views
        old = views[leader]
        if old is not None and old["role"] == "follower" and old["epoch"] > old_epoch:
            break
        assert time.monotonic() < deadline, f"old leader did not step down: {views}"
        time.sleep(0.05)
    assert old["leader_id"] == new_leader
    _wait_identical(cluster, list(cluster.nodes))
    _create_topic(cluster.nodes[leader].bootstrap, unique_topic("after-resume"), 3)
    _wait_identical(cluster, list(cluster.nodes))


def test_live_brokers_remain_after_the_failovers(cluster: Cluster) -> None:
    from confluent_kafka.admin import AdminClient

    leader = cluster.wait_for_leader()
    deadline = time.monotonic() + CONVERGE_TIMEOUT_S
    while True:
        metadata = AdminClient({"bootstrap.servers": cluster.bootstrap()}).list_topics(timeout=10)
        if sorted(metadata.brokers) == [1, 2, 3] and metadata.controller_id == leader:
            break
        assert time.monotonic() < deadline, (sorted(metadata.brokers), metadata.controller_id)
        time.sleep(0.2)


def test_a_single_node_is_a_one_voter_quorum(broker) -> None:
    """Without --voters the broker leads a quorum of one, and says so to kafka-python."""
    admin = _admin(broker.bootstrap)
    quorum = admin.describe_metadata_quorum()
    admin.close()
    [partition] = quorum["topics"][0]["partitions"]
    assert partition["error"] is None and partition["leader_id"] == 1
    assert [v["replica_id"] for v in partition["current_voters"]] == [1]
    assert partition["observers"] == []
