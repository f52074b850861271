"""``streambus cluster describe`` / ``quorum describe`` output, and the quorum flags of
``streambus-broker`` and its config (a public contract, like the CLI's).

Method: the admin CLI's ``main`` with a fake admin client that returns real DescribeCluster and
DescribeQuorum response objects; config tests build BrokerConfig through ``load_config`` with
flag-style overrides and an empty environment; the docker-compose file's commands must parse
and validate with the broker's own parser.
"""

from __future__ import annotations

import io
import json
import shlex
from pathlib import Path

import pytest
import yaml

from streambus.cli.admin import EXIT_KAFKA_ERROR, EXIT_OK, main
from streambus.cli.broker import build_parser, overrides_from_args
from streambus.config import ConfigError, load_config
from streambus.protocol.messages.describe_cluster import DescribeClusterResponse
from streambus.protocol.messages.describe_quorum import DescribeQuorumResponse
from streambus.broker.cluster import cluster_id_for_voters, quorum_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
_R = DescribeQuorumResponse.ReplicaState


def _quorum(error_code: int = 0) -> DescribeQuorumResponse:
    partition = DescribeQuorumResponse.PartitionData(
        error_code=error_code, error_message=None if not error_code else "not the leader",
        leader_id=2, leader_epoch=5, high_watermark=40,
        current_voters=[_R(replica_id=2, log_end_offset=40, last_fetch_timestamp=1000,
                           last_caught_up_timestamp=1000),
                        _R(replica_id=1, log_end_offset=40, last_fetch_timestamp=990,
                           last_caught_up_timestamp=990),
                        _R(replica_id=3, log_end_offset=31, last_fetch_timestamp=500,
                           last_caught_up_timestamp=-1)],
        observers=[_R(replica_id=9, log_end_offset=40, last_fetch_timestamp=980,
                      last_caught_up_timestamp=980)])
    return DescribeQuorumResponse(topics=[DescribeQuorumResponse.TopicData(
        topic_name="__cluster_metadata", partitions=[partition])])


class _FakeAdmin:
    def __init__(self, quorum_error: int = 0) -> None:
        self.quorum_error = quorum_error

    def describe_quorum(self) -> DescribeQuorumResponse:
        return _quorum(self.quorum_error)

    def describe_cluster(self) -> DescribeClusterResponse:
        return DescribeClusterResponse(cluster_id="abc", controller_id=2, brokers=[
            DescribeClusterResponse.DescribeClusterBroker(broker_id=b, host="h", port=9090 + b)
            for b in (3, 1, 2)])

    def __enter__(self) -> "_FakeAdmin":
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass


def _run(argv: list[str], admin: _FakeAdmin) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(argv, connect=lambda *args: admin, stdout=stdout, stderr=stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def test_quorum_describe_json_reports_lag_per_replica() -> None:
    code, out, _ = _run(["--output", "json", "quorum", "describe"], _FakeAdmin())
    assert code == EXIT_OK
    document = json.loads(out)
    assert (document["leader_id"], document["leader_epoch"], document["high_watermark"]) == (
        2, 5, 40)
    assert [(v["id"], v["lag"]) for v in document["voters"]] == [(2, 0), (1, 0), (3, 9)]
    assert document["observers"][0]["id"] == 9


def test_quorum_describe_table_names_leader_followers_and_observers() -> None:
    code, out, _ = _run(["quorum", "describe"], _FakeAdmin())
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[0].split() == ["LEADER", "EPOCH", "HIGH_WATERMARK"]
    assert lines[1].split() == ["2", "5", "40"]
    roles = {line.split()[0]: line.split()[1] for line in lines[4:]}
    assert roles == {"2": "leader", "1": "follower", "3": "follower", "9": "observer"}


def test_quorum_describe_error_exits_1() -> None:
    code, _, err = _run(["quorum", "describe"], _FakeAdmin(quorum_error=6))
    assert code == EXIT_KAFKA_ERROR and "NOT_LEADER_OR_FOLLOWER" in err


def test_cluster_describe_lists_brokers_and_the_quorum_leader() -> None:
    code, out, _ = _run(["--output", "json", "cluster", "describe"], _FakeAdmin())
    assert code == EXIT_OK
    document = json.loads(out)
    assert document["cluster_id"] == "abc" and document["controller_id"] == 2
    assert [b["id"] for b in document["brokers"]] == [1, 2, 3]
    assert document["quorum"]["leader_id"] == 2
    code, out, _ = _run(["cluster", "describe"], _FakeAdmin())
    lines = out.splitlines()
    assert lines[1].split()[-1] == "1,2,3"
    assert [line.split()[-1] for line in lines[4:]] == ["voter", "leader", "voter"]


# ------------------------------------------------------------------------------ config


def _config(**overrides: str):
    return load_config(None, overrides, environ={})


def test_voters_flags_build_the_quorum() -> None:
    args = build_parser().parse_args(["--node-id", "2", "--voters",
                                      "1@127.0.0.1:9193,2@127.0.0.1:9194,3@127.0.0.1:9195",
                                      "--process-roles", "broker,controller"])
    overrides, problems = overrides_from_args(args)
    assert not problems
    config = load_config(None, overrides, environ={})
    assert config.voter_addresses == {1: ("127.0.0.1", 9193), 2: ("127.0.0.1", 9194),
                                      3: ("127.0.0.1", 9195)}
    assert config.controller_host_port == ("127.0.0.1", 9194)  # its own voter entry
    settings = quorum_settings(config)
    assert settings.voter_ids == (1, 2, 3) and not settings.is_single_voter
    assert settings.raft_config().fetch_timeout_ticks == 20


def test_no_voters_is_a_one_voter_quorum() -> None:
    config = _config()
    assert config.voters == () and config.controller_host_port is None
    assert quorum_settings(config).is_single_voter


def test_voters_from_the_environment() -> None:
    config = load_config(None, {"node_id": "1"},
                         environ={"STREAMBUS_VOTERS": "1@h1:9093,2@h2:9093"})
    assert config.voter_addresses == {1: ("h1", 9093), 2: ("h2", 9093)}


@pytest.mark.parametrize(("overrides", "problem"), [
    ({"voters": "1@h:0"}, "needs a fixed port"),
    ({"voters": "one@h:1"}, "must be ID@HOST:PORT"),
    ({"voters": "1@h:1,1@g:2"}, "must be unique"),
    ({"voters": "2@h:1,3@h:2", "node_id": "1"}, "not one of the voters"),
    ({"voters": "1@h:1", "node_id": "1", "process_roles": "broker"}, "needs the controller"),
    ({"process_roles": "controller"}, "single broker+controller"),
    ({"process_roles": "broker,worker"}, "process_roles"),
])
def test_bad_quorum_settings_name_their_key(overrides: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        _config(**overrides)
    assert any(problem in p for p in error.value.problems), error.value.problems


def test_every_node_derives_the_same_cluster_id_from_the_voters() -> None:
    voters = ("1@a:1", "2@b:1", "3@c:1")
    assert cluster_id_for_voters(voters) == cluster_id_for_voters(tuple(reversed(voters)))
    assert cluster_id_for_voters(voters) != cluster_id_for_voters(voters[:2])


def test_docker_compose_nodes_use_valid_broker_flags() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    node_ids = []
    for name, service in sorted(compose["services"].items()):
        command = shlex.split(service["command"])[-1]
        argv = shlex.split(command.split("exec streambus-broker", 1)[1])
        overrides, problems = overrides_from_args(build_parser().parse_args(argv))
        assert not problems
        config = load_config(None, overrides, environ={})
        assert len(config.voters) == 3 and set(config.process_roles) == {"broker", "controller"}
        node_ids.append(config.node_id)
    assert node_ids == [1, 2, 3]
