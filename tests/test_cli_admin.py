"""``streambus`` admin CLI and its client: parsing, output formats, error mapping, negotiation.

Goal: the CLI's contract (flags, table and JSON output, exit codes 0/1/2/3 and the
``Error: NAME: message`` line) and the client's wire behaviour (ApiVersions negotiation and
fallback, correlation ids, deadlines, version-dependent request shapes) hold without a broker.

Method: CLI tests call ``main(argv, connect=...)`` with an in-memory ``FakeCluster`` transport
that answers like a one-node broker; every request and response it sees is encoded and decoded
by ``streambus.protocol.codec`` at the negotiated version, so a request this client could not
put on the wire fails here too. Connection tests drive a real ``BrokerConnection`` over a
``socket.socketpair()`` whose far end is pre-loaded with the broker's response frames (correlation
ids are deterministic), then read back what the client sent. No threads, no sleeps.
"""

from __future__ import annotations

import io
import json
import socket
import struct
import uuid
from typing import Any

import pytest

import streambus
from streambus.cli.admin import (
    EXIT_CONNECTION_FAILED,
    EXIT_KAFKA_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    build_parser,
    format_table,
    main,
)
from streambus.client.admin import AdminClient
from streambus.client.connection import BrokerConnection, parse_bootstrap_servers
from streambus.client.errors import (
    KafkaApiError,
    KafkaConnectionError,
    KafkaProtocolError,
    KafkaTimeoutError,
    UnsupportedVersionError,
)
from streambus.protocol import codec
from streambus.protocol.api_keys import ApiKey
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.headers import (
    decode_request_header,
    encode_response_header,
    response_header_version,
)
from streambus.protocol.messages.api_versions import ApiVersionsRequest, ApiVersionsResponse
from streambus.protocol.messages.create_topics import CreateTopicsRequest, CreateTopicsResponse
from streambus.protocol.messages.delete_topics import DeleteTopicsRequest, DeleteTopicsResponse
from streambus.protocol.messages.describe_configs import (
    DescribeConfigsRequest,
    DescribeConfigsResponse,
)
from streambus.protocol.messages.metadata import MetadataRequest, MetadataResponse

NODE_ID = 1
TOPIC_ID = uuid.UUID("6f1c2b6e-0d7a-4d3e-9b55-0123456789ab")
TOPIC_ID_TEXT = "bxwrbg16TT6bVQEjRWeJqw"  # Kafka's Uuid.toString: URL-safe base64, no padding


# -- an in-memory one-node cluster ------------------------------------------------------


class FakeCluster:
    """A transport that answers admin requests like a one-node broker holding ``topics``.

    Args:
        versions: api key -> version to use (defaults to each API's newest).
    """

    def __init__(self, versions: dict[int, int] | None = None) -> None:
        self.versions = {ApiKey.METADATA: 12, ApiKey.CREATE_TOPICS: 7, ApiKey.DELETE_TOPICS: 6,
                         ApiKey.DESCRIBE_CONFIGS: 4, **(versions or {})}
        self.topics: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[Any, int]] = []
        self.closed = False

    def add_topic(self, name: str, partition_count: int = 1, configs: dict[str, str] | None = None,
                  internal: bool = False, topic_id: uuid.UUID | None = None) -> None:
        self.topics[name] = {"partition_count": partition_count, "configs": dict(configs or {}),
                             "internal": internal, "topic_id": topic_id or uuid.uuid4()}

    def version_for(self, api_key: int) -> int:
        return self.versions[api_key]

    def close(self) -> None:
        self.closed = True

    def send(self, request: Any, version: int | None = None) -> Any:
        api_key = type(request).API_KEY
        assert version is not None
        # The same bytes a broker would get; raises if a field does not exist in ``version``.
        wire_request = codec.decode_request(api_key, version, codec.encode_request(api_key, version, request))
        self.requests.append((wire_request, version))
        response = getattr(self, f"_answer_{type(request).__name__}")(wire_request, version)
        return codec.decode_response(api_key, version, codec.encode_response(api_key, version, response))

    def _partition(self, index: int) -> MetadataResponse.MetadataResponsePartition:
        return MetadataResponse.MetadataResponsePartition(
            partition_index=index, leader_id=NODE_ID, leader_epoch=0,
            replica_nodes=[NODE_ID], isr_nodes=[NODE_ID])

    def _answer_MetadataRequest(self, request: MetadataRequest, version: int) -> MetadataResponse:
        if request.topics is None or (version == 0 and request.topics == []):
            names = sorted(self.topics)
        else:
            names = [t.name for t in request.topics]
        topics = []
        for name in names:
            if name not in self.topics:
                topics.append(MetadataResponse.MetadataResponseTopic(
                    error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name=name))
                continue
            state = self.topics[name]
            topics.append(MetadataResponse.MetadataResponseTopic(
                name=name, topic_id=state["topic_id"] if version >= 10 else uuid.UUID(int=0),
                is_internal=state["internal"] if version >= 1 else False,
                partitions=[self._partition(i) for i in range(state["partition_count"])]))
        return MetadataResponse(
            brokers=[MetadataResponse.MetadataResponseBroker(node_id=NODE_ID, host="127.0.0.1", port=9092)],
            cluster_id="fake" if version >= 2 else None, controller_id=NODE_ID if version >= 1 else -1,
            topics=topics)

    def _answer_CreateTopicsRequest(self, request: CreateTopicsRequest, version: int) -> CreateTopicsResponse:
        results = []
        for topic in request.topics:
            if topic.name in self.topics:
                results.append(CreateTopicsResponse.CreatableTopicResult(
                    name=topic.name, error_code=ErrorCode.TOPIC_ALREADY_EXISTS,
                    error_message=f"Topic '{topic.name}' already exists." if version >= 1 else None))
                continue
            partition_count = 1 if topic.num_partitions == -1 else topic.num_partitions
            self.add_topic(topic.name, partition_count, {c.name: c.value for c in topic.configs})
            result = CreateTopicsResponse.CreatableTopicResult(name=topic.name, error_message=None)
            if version >= 5:
                result.num_partitions = partition_count
                result.replication_factor = 1
            if version >= 7:
                result.topic_id = self.topics[topic.name]["topic_id"]
            results.append(result)
        return CreateTopicsResponse(topics=results)

    def _answer_DeleteTopicsRequest(self, request: DeleteTopicsRequest, version: int) -> DeleteTopicsResponse:
        names = [t.name for t in request.topics] if version >= 6 else list(request.topic_names)
        results = []
        for name in names:
            code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION if name not in self.topics else ErrorCode.NONE
            self.topics.pop(name, None)
            results.append(DeleteTopicsResponse.DeletableTopicResult(name=name, error_code=code))
        return DeleteTopicsResponse(responses=results)

    def _answer_DescribeConfigsRequest(self, request: DescribeConfigsRequest, version: int) -> DescribeConfigsResponse:
        entry = DescribeConfigsResponse.DescribeConfigsResourceResult
        results = []
        for resource in request.resources:
            explicit = self.topics[resource.resource_name]["configs"]
            configs = [entry(name="cleanup.policy", value="delete", config_source=6)]
            configs += [entry(name=k, value=v, config_source=1) for k, v in sorted(explicit.items())]
            results.append(DescribeConfigsResponse.DescribeConfigsResult(
                resource_type=2, resource_name=resource.resource_name, configs=configs,
                error_message=None))
        return DescribeConfigsResponse(results=results)


def run_cli(cluster: FakeCluster | None, *argv: str) -> tuple[int, str, str]:
    """Run ``main`` against ``cluster`` (None: every broker refuses connections)."""
    stdout, stderr = io.StringIO(), io.StringIO()

    def connect(bootstrap_servers: str, timeout_ms: int) -> AdminClient:
        if cluster is None:
            raise KafkaConnectionError(f"no broker reachable: cannot connect to {bootstrap_servers}")
        return AdminClient(cluster, timeout_ms=timeout_ms)

    code = main(list(argv), connect=connect, stdout=stdout, stderr=stderr)
    return code, stdout.getvalue(), stderr.getvalue()


# -- argument parsing -------------------------------------------------------------------


def test_parser_defaults_match_kafka_tools() -> None:
    """Without flags the CLI talks to localhost:9092 with tables and a 30 s deadline."""
    args = build_parser().parse_args(["topics", "list"])
    assert (args.bootstrap_server, args.output, args.timeout_ms, args.exclude_internal) == (
        "localhost:9092", "table", 30000, False)


def test_create_collects_repeated_configs_in_order() -> None:
    """``--config`` repeats, keeps order, and splits at the first ``=`` only."""
    args = build_parser().parse_args(
        ["topics", "create", "t", "--config", "retention.ms=1000", "--config", "x=a=b"])
    assert args.config == [("retention.ms", "1000"), ("x", "a=b")]


@pytest.mark.parametrize("argv", [
    ["topics"],
    ["topics", "create"],
    ["topics", "create", "t", "--partitions", "0"],
    ["topics", "create", "t", "--config", "novalue"],
    ["topics", "delete"],
    ["--output", "yaml", "topics", "list"],
    ["--timeout-ms", "-5", "topics", "list"],
    ["--bootstrap-server", "no-port", "topics", "list"],
], ids=lambda argv: " ".join(argv))
def test_usage_error_exits_2_without_connecting(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Bad flags or values are usage errors (exit 2, message on stderr), before any I/O."""
    connected = []
    code = main(argv, connect=lambda *a: connected.append(a))  # type: ignore[arg-type,return-value]
    assert code == EXIT_USAGE
    assert connected == []
    assert "Error:" in capsys.readouterr().err


def test_version_flag_prints_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == EXIT_OK
    assert capsys.readouterr().out == f"streambus {streambus.__version__}\n"


def test_bootstrap_servers_parse_lists_and_ipv6() -> None:
    assert parse_bootstrap_servers("a:1, b:2,[::1]:9092") == [("a", 1), ("b", 2), ("::1", 9092)]


# -- output formats ---------------------------------------------------------------------


def test_format_table_aligns_columns_and_trims_trailing_blanks() -> None:
    assert format_table(("A", "LONG_HEADER"), [("xyz", 1), ("q", [1, 2])]) == (
        "A    LONG_HEADER\n"
        "xyz  1\n"
        "q    1,2"
    )


def test_topics_list_table_is_sorted_and_aligned() -> None:
    cluster = FakeCluster()
    cluster.add_topic("orders", 3, topic_id=TOPIC_ID)
    cluster.add_topic("a", 1, topic_id=TOPIC_ID)
    code, out, err = run_cli(cluster, "topics", "list")
    assert (code, err) == (EXIT_OK, "")
    assert out == (
        "TOPIC   PARTITIONS  REPLICATION_FACTOR  TOPIC_ID\n"
        f"a       1           1                   {TOPIC_ID_TEXT}\n"
        f"orders  3           1                   {TOPIC_ID_TEXT}\n"
    )


def test_topics_list_json_excludes_internal_on_request() -> None:
    cluster = FakeCluster()
    cluster.add_topic("__consumer_offsets", 50, internal=True, topic_id=TOPIC_ID)
    cluster.add_topic("orders", 2, topic_id=TOPIC_ID)
    code, out, _ = run_cli(cluster, "--output", "json", "topics", "list", "--exclude-internal")
    assert code == EXIT_OK
    assert json.loads(out) == {"topics": [{
        "name": "orders", "topic_id": TOPIC_ID_TEXT, "internal": False,
        "partition_count": 2, "replication_factor": 1}]}


def test_topics_list_json_includes_internal_by_default() -> None:
    cluster = FakeCluster()
    cluster.add_topic("__consumer_offsets", 1, internal=True)
    code, out, _ = run_cli(cluster, "--output", "json", "topics", "list")
    assert [t["name"] for t in json.loads(out)["topics"]] == ["__consumer_offsets"]


def test_describe_json_shows_partitions_and_only_explicit_configs() -> None:
    """Configs are those with config_source DYNAMIC_TOPIC_CONFIG; defaults are left out."""
    cluster = FakeCluster()
    cluster.add_topic("orders", 2, {"retention.ms": "3600000"}, topic_id=TOPIC_ID)
    code, out, err = run_cli(cluster, "--output", "json", "topics", "describe", "orders")
    assert (code, err) == (EXIT_OK, "")
    partition = {"leader": NODE_ID, "leader_epoch": 0, "replicas": [NODE_ID], "isr": [NODE_ID],
                 "offline_replicas": []}
    assert json.loads(out) == {"topics": [{
        "name": "orders", "topic_id": TOPIC_ID_TEXT, "internal": False, "partition_count": 2,
        "replication_factor": 1, "configs": {"retention.ms": "3600000"},
        "partitions": [{"partition": 0, **partition}, {"partition": 1, **partition}]}]}


def test_describe_table_shows_summary_and_partition_rows() -> None:
    cluster = FakeCluster()
    cluster.add_topic("orders", 2, {"retention.ms": "1000"}, topic_id=TOPIC_ID)
    code, out, _ = run_cli(cluster, "topics", "describe", "orders")
    assert code == EXIT_OK
    assert out == (
        "TOPIC   TOPIC_ID                PARTITIONS  REPLICATION_FACTOR  CONFIGS\n"
        f"orders  {TOPIC_ID_TEXT}  2           1                   retention.ms=1000\n"
        "\n"
        "PARTITION  LEADER  LEADER_EPOCH  REPLICAS  ISR\n"
        "0          1       0             1         1\n"
        "1          1       0             1         1\n"
    )


def test_describe_without_names_covers_every_topic() -> None:
    cluster = FakeCluster()
    cluster.add_topic("b")
    cluster.add_topic("a")
    code, out, _ = run_cli(cluster, "--output", "json", "topics", "describe")
    assert code == EXIT_OK
    assert [t["name"] for t in json.loads(out)["topics"]] == ["a", "b"]


# -- round trips and error mapping ------------------------------------------------------


def test_create_sends_partitions_replication_factor_and_configs() -> None:
    cluster = FakeCluster()
    code, out, err = run_cli(cluster, "topics", "create", "orders", "--partitions", "3",
                             "--replication-factor", "1", "--config", "retention.ms=1000")
    assert (code, out, err) == (EXIT_OK, "Created topic orders.\n", "")
    [(request, version)] = cluster.requests
    assert version == 7
    assert request.topics == [CreateTopicsRequest.CreatableTopic(
        name="orders", num_partitions=3, replication_factor=1,
        configs=[CreateTopicsRequest.CreatableTopicConfig(name="retention.ms", value="1000")])]
    assert request.timeout_ms == 30000


def test_create_without_counts_asks_for_broker_defaults() -> None:
    """KIP-464: -1 partitions / replication factor means the broker's defaults."""
    cluster = FakeCluster()
    code, out, _ = run_cli(cluster, "--output", "json", "topics", "create", "orders")
    assert code == EXIT_OK
    [(request, _)] = cluster.requests
    assert (request.topics[0].num_partitions, request.topics[0].replication_factor) == (-1, -1)
    document = json.loads(out)
    assert document == {"name": "orders", "created": True, "topic_id": document["topic_id"],
                        "partition_count": 1, "replication_factor": 1}


def test_create_json_topic_id_matches_list() -> None:
    cluster = FakeCluster()
    _, created, _ = run_cli(cluster, "--output", "json", "topics", "create", "orders")
    _, listed, _ = run_cli(cluster, "--output", "json", "topics", "list")
    assert json.loads(created)["topic_id"] == json.loads(listed)["topics"][0]["topic_id"]
    assert json.loads(created)["topic_id"] is not None


def test_create_existing_topic_prints_kafka_error_and_exits_1() -> None:
    cluster = FakeCluster()
    cluster.add_topic("x")
    code, out, err = run_cli(cluster, "topics", "create", "x")
    assert (code, out, err) == (
        EXIT_KAFKA_ERROR, "", "Error: TOPIC_ALREADY_EXISTS: Topic 'x' already exists.\n")


def test_create_existing_topic_with_if_not_exists_succeeds() -> None:
    cluster = FakeCluster()
    cluster.add_topic("x")
    code, out, err = run_cli(cluster, "--output", "json", "topics", "create", "x", "--if-not-exists")
    assert (code, json.loads(out), err) == (EXIT_OK, {"name": "x", "created": False}, "")


def test_error_without_broker_message_uses_kafka_default_text() -> None:
    """CreateTopics v0 has no error_message; the code's default message is shown."""
    cluster = FakeCluster({ApiKey.CREATE_TOPICS: 0})
    cluster.add_topic("x")
    code, _, err = run_cli(cluster, "topics", "create", "x")
    assert (code, err) == (
        EXIT_KAFKA_ERROR, f"Error: TOPIC_ALREADY_EXISTS: {ErrorCode.TOPIC_ALREADY_EXISTS.message}\n")


def test_describe_unknown_topic_exits_1_with_error_name() -> None:
    code, out, err = run_cli(FakeCluster(), "topics", "describe", "nope")
    assert (code, out, err) == (
        EXIT_KAFKA_ERROR, "", "Error: UNKNOWN_TOPIC_OR_PARTITION: Topic 'nope' does not exist.\n")


def test_delete_reports_each_topic_and_fails_on_missing_one() -> None:
    cluster = FakeCluster()
    cluster.add_topic("a")
    code, out, err = run_cli(cluster, "topics", "delete", "a", "nope")
    assert (code, out, err) == (
        EXIT_KAFKA_ERROR, "Deleted topic a.\n",
        "Error: UNKNOWN_TOPIC_OR_PARTITION: Topic 'nope' does not exist.\n")
    assert cluster.topics == {}


def test_delete_with_if_exists_tolerates_missing_topics() -> None:
    cluster = FakeCluster()
    cluster.add_topic("a")
    code, out, err = run_cli(cluster, "--output", "json", "topics", "delete", "a", "nope", "--if-exists")
    assert (code, json.loads(out), err) == (EXIT_OK, {"deleted": ["a"], "missing": ["nope"]}, "")


def test_unreachable_cluster_exits_3() -> None:
    code, out, err = run_cli(None, "--bootstrap-server", "127.0.0.1:1", "topics", "list")
    assert (code, out) == (EXIT_CONNECTION_FAILED, "")
    assert err.startswith("Error: no broker reachable")


def test_connection_lost_mid_command_exits_3() -> None:
    class LostCluster(FakeCluster):
        def send(self, request: Any, version: int | None = None) -> Any:
            raise KafkaConnectionError("127.0.0.1:9092 closed the connection")

    code, _, err = run_cli(LostCluster(), "topics", "list")
    assert (code, err) == (EXIT_CONNECTION_FAILED, "Error: 127.0.0.1:9092 closed the connection\n")


def test_command_closes_its_connection() -> None:
    cluster = FakeCluster()
    run_cli(cluster, "topics", "list")
    assert cluster.closed


# -- version-dependent request shapes ---------------------------------------------------


@pytest.mark.parametrize("version", [0, 1, 3, 4, 9, 10, 12])
def test_list_works_at_every_metadata_version(version: int) -> None:
    """v0 asks for all topics with [], v1+ with null; auto-creation is off from v4."""
    cluster = FakeCluster({ApiKey.METADATA: version})
    cluster.add_topic("orders")
    code, out, _ = run_cli(cluster, "--output", "json", "topics", "list")
    assert code == EXIT_OK
    assert [t["name"] for t in json.loads(out)["topics"]] == ["orders"]
    [(request, _)] = cluster.requests
    assert request.topics == ([] if version == 0 else None)
    assert request.allow_auto_topic_creation is (version < 4)


@pytest.mark.parametrize("version", [0, 1, 3, 4, 5, 6])
def test_delete_works_at_every_delete_topics_version(version: int) -> None:
    """v6 names topics in DeleteTopicState (KIP-516); older versions use topic_names."""
    cluster = FakeCluster({ApiKey.DELETE_TOPICS: version})
    cluster.add_topic("a")
    code, _, _ = run_cli(cluster, "topics", "delete", "a")
    assert code == EXIT_OK
    [(request, _)] = cluster.requests
    if version >= 6:
        assert (request.topics, request.topic_names) == ([DeleteTopicsRequest.DeleteTopicState(name="a")], [])
    else:
        assert (request.topics, request.topic_names) == ([], ["a"])


@pytest.mark.parametrize("version", [0, 2, 5, 7])
def test_create_works_at_every_create_topics_version(version: int) -> None:
    cluster = FakeCluster({ApiKey.CREATE_TOPICS: version})
    code, out, _ = run_cli(cluster, "topics", "create", "t", "--partitions", "2", "--replication-factor", "1")
    assert (code, out) == (EXIT_OK, "Created topic t.\n")


# -- BrokerConnection over a socket pair ------------------------------------------------


def _frame(api_key: int, version: int, correlation_id: int, response: Any,
           header_version: int | None = None) -> bytes:
    if header_version is None:
        header_version = 0 if api_key == ApiKey.API_VERSIONS else response_header_version(api_key, version)
    body = encode_response_header(correlation_id, header_version) + codec.encode_response(api_key, version, response)
    return struct.pack(">i", len(body)) + body


def _api_versions(*ranges: tuple[int, int, int], error_code: int = 0) -> ApiVersionsResponse:
    return ApiVersionsResponse(error_code=error_code, api_keys=[
        ApiVersionsResponse.ApiVersion(api_key=k, min_version=lo, max_version=hi) for k, lo, hi in ranges])


BROKER_RANGES = ((ApiKey.API_VERSIONS, 0, 4), (ApiKey.METADATA, 0, 12), (ApiKey.CREATE_TOPICS, 2, 7),
                 (ApiKey.DELETE_TOPICS, 1, 6), (ApiKey.DESCRIBE_CONFIGS, 1, 4))


def _read_requests(sock: socket.socket) -> list[tuple[Any, Any]]:
    """Every (header, body) the client wrote, read from the broker's end of the pair."""
    sock.setblocking(False)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except BlockingIOError:
        pass
    requests = []
    while data:
        (size,) = struct.unpack_from(">i", data)
        frame, data = data[4:4 + size], data[4 + size:]
        header, offset = decode_request_header(frame)
        requests.append((header, codec.decode_request(header.api_key, header.api_version, frame, offset)))
    return requests


@pytest.fixture
def socket_pair():
    client, broker = socket.socketpair()
    yield client, broker
    client.close()
    broker.close()


def _open(client: socket.socket, timeout_ms: int = 5000) -> BrokerConnection:
    return BrokerConnection.open(("127.0.0.1", 9092), timeout_ms=timeout_ms,
                                 socket_factory=lambda address, timeout_s: client)


def test_negotiation_sends_api_versions_v3_and_picks_highest_common_version(socket_pair) -> None:
    client, broker = socket_pair
    broker.sendall(_frame(ApiKey.API_VERSIONS, 3, 1, _api_versions(*BROKER_RANGES)))
    connection = _open(client)
    [(header, request)] = _read_requests(broker)
    assert (header.api_key, header.api_version, header.correlation_id, header.client_id) == (
        ApiKey.API_VERSIONS, 3, 1, "streambus-cli")
    assert request == ApiVersionsRequest(client_software_name="streambus-cli",
                                         client_software_version=streambus.__version__)
    assert {key: connection.version_for(key) for key, _, _ in BROKER_RANGES} == {
        ApiKey.API_VERSIONS: 3, ApiKey.METADATA: 12, ApiKey.CREATE_TOPICS: 7,
        ApiKey.DELETE_TOPICS: 6, ApiKey.DESCRIBE_CONFIGS: 4}


def test_negotiation_falls_back_to_v0_on_unsupported_version(socket_pair) -> None:
    """KIP-511: the broker answers UNSUPPORTED_VERSION with a v0 body; we retry at v0."""
    client, broker = socket_pair
    old_ranges = ((ApiKey.API_VERSIONS, 0, 2), (ApiKey.METADATA, 0, 8))
    broker.sendall(_frame(ApiKey.API_VERSIONS, 0, 1, _api_versions(
        *old_ranges, error_code=ErrorCode.UNSUPPORTED_VERSION)))
    broker.sendall(_frame(ApiKey.API_VERSIONS, 2, 2, _api_versions(*old_ranges)))
    connection = _open(client)
    assert [(h.api_version, h.correlation_id) for h, _ in _read_requests(broker)] == [(3, 1), (2, 2)]
    assert connection.version_for(ApiKey.METADATA) == 8
    with pytest.raises(UnsupportedVersionError, match="CREATE_TOPICS"):
        connection.version_for(ApiKey.CREATE_TOPICS)


def test_flexible_response_header_tagged_fields_are_skipped(socket_pair) -> None:
    client, broker = socket_pair
    broker.sendall(_frame(ApiKey.API_VERSIONS, 3, 1, _api_versions(*BROKER_RANGES)))
    connection = _open(client)
    response = MetadataResponse(cluster_id="c", controller_id=1)
    broker.sendall(_frame(ApiKey.METADATA, 12, 2, response))
    assert connection.send(MetadataRequest(topics=None)) == response


def test_correlation_id_mismatch_raises_and_closes(socket_pair) -> None:
    client, broker = socket_pair
    broker.sendall(_frame(ApiKey.API_VERSIONS, 3, 1, _api_versions(*BROKER_RANGES)))
    connection = _open(client)
    broker.sendall(_frame(ApiKey.METADATA, 12, 99, MetadataResponse()))
    with pytest.raises(KafkaProtocolError, match="correlation id 99, expected 2"):
        connection.send(MetadataRequest(topics=None))
    with pytest.raises(KafkaConnectionError, match="closed"):
        connection.send(MetadataRequest(topics=None))


def test_peer_closing_mid_response_raises_connection_error(socket_pair) -> None:
    client, broker = socket_pair
    broker.sendall(struct.pack(">i", 100) + b"\x00\x00")
    broker.shutdown(socket.SHUT_WR)  # half-close: the client can still send its request
    with pytest.raises(KafkaConnectionError, match="closed the connection"):
        _open(client)


def test_silent_broker_times_out_at_the_deadline(socket_pair) -> None:
    """The deadline itself is what is under test: nothing is ever sent back."""
    client, _broker = socket_pair
    with pytest.raises(KafkaTimeoutError, match="timed out after 50 ms"):
        _open(client, timeout_ms=50)


def test_absurd_response_size_is_a_protocol_error(socket_pair) -> None:
    client, broker = socket_pair
    broker.sendall(struct.pack(">i", -7))
    with pytest.raises(KafkaProtocolError, match="size of -7"):
        _open(client)


def test_api_error_names_the_code() -> None:
    error = KafkaApiError(ErrorCode.TOPIC_ALREADY_EXISTS, "Topic 'x' already exists.", "x")
    assert (str(error), error.error_name, error.resource) == (
        "TOPIC_ALREADY_EXISTS: Topic 'x' already exists.", "TOPIC_ALREADY_EXISTS", "x")
    assert str(KafkaApiError(30000)).startswith("UNKNOWN_SERVER_ERROR(30000): ")
