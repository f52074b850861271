"""Broker configuration: what is accepted, what is rejected, and how layers combine.

Method: build configs through `load_config` / `validate_config` from YAML files in tmp_path,
an explicit (empty unless stated) environment and flag overrides, then compare the resulting
config or the exact list of problems. Every rejection must name the key at fault.
"""

from pathlib import Path

import pytest

from streambus.config import (
    BrokerConfig,
    ConfigError,
    load_config,
    parse_host_port,
    validate_config,
)

NO_ENV: dict[str, str] = {}


def write_yaml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "broker.yaml"
    path.write_text(text)
    return str(path)


def test_defaults_match_kafka_defaults() -> None:
    config = load_config(None, {}, environ=NO_ENV)
    assert config == BrokerConfig()
    assert config.node_id == 1
    assert config.data_dir == Path("./streambus-data")
    assert config.listen_host_port == ("127.0.0.1", 9092)
    assert config.advertised_host_port == ("127.0.0.1", 9092)
    assert config.http_host_port == ("127.0.0.1", 8080)
    assert config.log_level == "INFO"
    assert config.num_partitions == 1
    assert config.message_max_bytes == 1048588
    assert config.log_segment_bytes == 1073741824
    assert config.log_retention_ms == 7 * 24 * 3600 * 1000
    assert config.log_flush_interval_ms is None
    assert config.compression_type == "producer"


def test_config_is_frozen() -> None:
    config = BrokerConfig()
    with pytest.raises(ValueError):
        config.node_id = 2  # type: ignore[misc]


def test_kafka_dotted_keys_are_accepted_in_file_and_dumped_back(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, """
node_id: 3
num.partitions: 6
log.segment.bytes: 1048576
log.retention.ms: -1
auto.create.topics.enable: false
log.message.timestamp.type: LogAppendTime
""")
    config = load_config(path, {}, environ=NO_ENV)
    assert (config.node_id, config.num_partitions, config.log_segment_bytes) == (3, 6, 1048576)
    assert config.log_retention_ms == -1
    assert config.auto_create_topics_enable is False
    assert config.log_message_timestamp_type == "LogAppendTime"
    dumped = config.model_dump(by_alias=True)
    assert dumped["num.partitions"] == 6
    assert dumped["log.segment.bytes"] == 1048576


def test_python_names_are_accepted_too() -> None:
    assert BrokerConfig(num_partitions=4) == BrokerConfig(**{"num.partitions": 4})


def test_kafka_node_id_spellings_are_synonyms() -> None:
    assert load_config(None, {"node.id": "5"}, environ=NO_ENV).node_id == 5
    assert load_config(None, {"broker.id": 6}, environ=NO_ENV).node_id == 6


def test_checklist_sections_are_accepted(tmp_path: Path) -> None:
    for name in ("server.crt", "server.key", "ca.crt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "users.yaml").write_text("users: []\n")
    path = write_yaml(tmp_path, f"""
security:
  tls_enabled: true
  tls_cert: {tmp_path}/server.crt
  tls_key: {tmp_path}/server.key
  tls_ca: {tmp_path}/ca.crt
  min_tls_version: "1.3"
  auth_enabled: true
  auth_mechanism: "SCRAM-SHA-256"
  users_file: {tmp_path}/users.yaml
acls:
  - principal: "user:producer-app"
    operations: ["write"]
    resources: ["topic:events"]
  - principal: "user:consumer-app"
    operations: ["read"]
    resources: ["topic:events"]
tracing:
  enabled: true
  exporter: jaeger
  endpoint: http://jaeger:14268/api/traces
  sampling_rate: 0.1
profiling:
  enabled: true
  listen_addr: localhost:6060
""")
    # Parsed and validated in full; security is served, the rest is refused at load time
    # until the features exist.
    assert validate_config(path, {}, environ=NO_ENV) == [
        "tracing.enabled: tracing is not supported by this build yet",
        "profiling.enabled: the profiling endpoint is not supported by this build yet",
    ]
    import yaml

    config = BrokerConfig.model_validate(yaml.safe_load(Path(path).read_text()))
    assert config.security.tls_enabled is True
    assert config.security.min_tls_version == "1.3"
    # auth_mechanism first, then every other mechanism unless sasl_enabled_mechanisms narrows.
    assert config.security.enabled_mechanisms == ("SCRAM-SHA-256", "PLAIN", "SCRAM-SHA-512")
    assert config.primary_security_protocol == "SASL_SSL"
    assert config.authorizer_enabled and not config.allow_everyone_if_no_acl_found
    assert [acl.operations for acl in config.acls] == [("write",), ("read",)]
    assert config.acls[0].resources == ("topic:events",)
    assert config.tracing.sampling_rate == 0.1
    assert config.profiling.listen_addr == "localhost:6060"


def test_unquoted_tls_version_is_read_as_the_version(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "security:\n  min_tls_version: 1.3\n")
    assert load_config(path, {}, environ=NO_ENV).security.min_tls_version == "1.3"


def test_flags_override_file(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "node_id: 3\nnum.partitions: 6\nlisten: 127.0.0.1:9000\n")
    config = load_config(path, {"node_id": "9", "num.partitions": "2"}, environ=NO_ENV)
    assert (config.node_id, config.num_partitions) == (9, 2)
    assert config.listen == "127.0.0.1:9000"


def test_flag_can_set_one_field_of_a_section_from_the_file(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "security:\n  super_users: [User:admin]\n")
    config = load_config(path, {"security.auth_mechanism": "plain"}, environ=NO_ENV)
    assert config.security.auth_mechanism == "PLAIN"
    assert config.security.super_users == ("User:admin",)


def test_environment_sits_between_file_and_flags(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "node_id: 3\nnum.partitions: 6\n")
    environ = {
        "STREAMBUS_NODE_ID": "4",
        "STREAMBUS_NUM_PARTITIONS": "7",
        "STREAMBUS_SECURITY__SUPER_USERS": "[User:root]",
        "STREAMBUS_UNRELATED_TOOL_SETTING": "ignored",
    }
    config = load_config(path, {"node_id": 5}, environ=environ)
    assert (config.node_id, config.num_partitions) == (5, 7)
    assert config.security.super_users == ("User:root",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9092", ("127.0.0.1", 9092)),
        ("localhost:0", ("localhost", 0)),
        ("broker-1.example.com:65535", ("broker-1.example.com", 65535)),
        ("[::1]:9092", ("::1", 9092)),
    ],
)
def test_host_port_parses(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize(
    "text",
    ["9092", "localhost", "localhost:", ":9092", "localhost:70000", "localhost:-1",
     "localhost:90a", "::1:9092", "[::1:9092", "[nothost]:9092", "bad host:9092"],
)
def test_bad_host_port_is_rejected_naming_the_key(text: str) -> None:
    problems = validate_config(None, {"http_listen": text}, environ=NO_ENV)
    assert len(problems) == 1
    assert problems[0].startswith("http_listen: ")


def test_out_of_bounds_numbers_are_rejected_naming_the_key() -> None:
    problems = validate_config(
        None,
        {"log.segment.bytes": 10, "num.partitions": 0, "node_id": -1,
         "default.replication.factor": 40000, "tracing.sampling_rate": 1.5},
        environ=NO_ENV,
    )
    assert sorted(problems) == sorted([
        "log.segment.bytes: Input should be greater than or equal to 14, got 10",
        "num.partitions: Input should be greater than or equal to 1, got 0",
        "node_id: Input should be greater than or equal to 0, got -1",
        "default.replication.factor: Input should be less than or equal to 32767, got 40000",
        "tracing.sampling_rate: Input should be less than or equal to 1, got 1.5",
    ])


def test_unknown_top_level_key_is_rejected_with_a_suggestion(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "num.partitons: 3\n")
    assert validate_config(path, {}, environ=NO_ENV) == [
        "num.partitons: unknown key (did you mean 'num.partitions'?)"
    ]


def test_unknown_keys_in_sections_are_rejected(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, """
security:
  tls_enabeld: true
acls:
  - principal: "User:a"
    operations: [read]
    resources: ["topic:t"]
    colour: blue
""")
    assert validate_config(path, {}, environ=NO_ENV) == [
        "security.tls_enabeld: unknown key (did you mean 'tls_enabled'?)",
        "acls[0].colour: unknown key",
    ]


def test_tls_needs_certificate_and_key() -> None:
    problems = validate_config(None, {"security.tls_enabled": "true"}, environ=NO_ENV)
    assert problems == ["security: tls_cert and tls_key are required when tls_enabled is true"]


def test_auth_needs_users_file() -> None:
    problems = validate_config(None, {"security.auth_enabled": True}, environ=NO_ENV)
    assert problems == ["security: users_file is required when auth_enabled is true"]


def test_files_named_by_enabled_features_must_exist(tmp_path: Path) -> None:
    problems = validate_config(
        None,
        {"security.tls_enabled": True, "security.tls_cert": str(tmp_path / "missing.crt"),
         "security.tls_key": str(tmp_path / "missing.key")},
        environ=NO_ENV,
    )
    assert problems[:2] == [
        f"security.tls_cert: file not found: {tmp_path / 'missing.crt'}",
        f"security.tls_key: file not found: {tmp_path / 'missing.key'}",
    ]


def test_wildcard_listen_needs_an_advertised_address() -> None:
    problems = validate_config(None, {"listen": "0.0.0.0:9092"}, environ=NO_ENV)
    assert len(problems) == 1
    assert problems[0].startswith("advertised_listen: ")
    config = load_config(None, {"listen": "0.0.0.0:9092", "advertised_listen": "b1:9092"},
                         environ=NO_ENV)
    assert config.advertised_host_port == ("b1", 9092)


def test_http_and_kafka_cannot_share_an_address() -> None:
    problems = validate_config(None, {"listen": "127.0.0.1:8080"}, environ=NO_ENV)
    assert problems == ["http_listen: 127.0.0.1:8080 is the same address as listen"]


def test_acl_operations_and_resources_are_checked() -> None:
    acls = [{"principal": "alice", "operations": ["reed"], "resources": ["table:x"]}]
    problems = validate_config(None, {"acls": acls}, environ=NO_ENV)
    assert [problem.split(":")[0] for problem in problems] == [
        "acls[0].principal", "acls[0].operations[0]", "acls[0].resources[0]",
    ]


def test_acl_operation_spellings_are_normalized() -> None:
    acls = [{"principal": "User:ops", "operations": ["DescribeConfigs", "ALTER_CONFIGS"],
             "resources": ["Cluster"]}]
    config = BrokerConfig.model_validate({"acls": acls})
    assert config.acls[0].operations == ("describe_configs", "alter_configs")
    assert config.acls[0].resources == ("cluster",)


def test_same_key_spelled_twice_in_file_is_rejected(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "num_partitions: 2\nnum.partitions: 3\n")
    assert validate_config(path, {}, environ=NO_ENV) == [
        "num.partitions: given twice (as num_partitions and num.partitions)"
    ]


def test_duplicate_yaml_key_is_rejected(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "node_id: 1\nnode_id: 2\n")
    problems = validate_config(path, {}, environ=NO_ENV)
    assert len(problems) == 1
    assert "duplicate key 'node_id'" in problems[0]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("node_id: [1\n", "is not valid YAML"), ("- a\n- b\n", "must contain a mapping")],
)
def test_malformed_file_is_reported(tmp_path: Path, text: str, fragment: str) -> None:
    problems = validate_config(write_yaml(tmp_path, text), {}, environ=NO_ENV)
    assert len(problems) == 1
    assert problems[0].startswith("config: ")
    assert fragment in problems[0]


def test_missing_file_is_reported(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert validate_config(str(missing), {}, environ=NO_ENV) == [
        f"config: file not found: {missing}"
    ]


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load_config(write_yaml(tmp_path, ""), {}, environ=NO_ENV) == BrokerConfig()


def test_load_config_raises_with_every_problem() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(None, {"num.partitions": 0, "log_level": "LOUD"}, environ=NO_ENV)
    assert [problem.split(":")[0] for problem in raised.value.problems] == [
        "log_level", "num.partitions",
    ]


def test_data_dir_that_is_a_file_is_rejected(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "data"
    not_a_directory.write_text("")
    assert validate_config(None, {"data_dir": str(not_a_directory)}, environ=NO_ENV) == [
        f"data_dir: {not_a_directory} exists and is not a directory"
    ]


def test_listener_forms(tmp_path: Path) -> None:
    """The seed's single listener takes its protocol from tls_enabled/auth_enabled; `listeners`
    adds more, each with its own protocol and a unique name."""
    for name in ("server.crt", "server.key"):
        (tmp_path / name).write_text("x")
    (tmp_path / "users.yaml").write_text("users: []\n")
    tls = {"security.tls_cert": str(tmp_path / "server.crt"),
           "security.tls_key": str(tmp_path / "server.key")}
    plain = load_config(None, {}, environ=NO_ENV)
    assert [(s.name, s.security_protocol) for s in plain.listener_specs] == [("PLAINTEXT",
                                                                              "PLAINTEXT")]
    assert not plain.authorizer_enabled
    ssl_only = load_config(None, {"security.tls_enabled": True, **tls}, environ=NO_ENV)
    assert ssl_only.primary_security_protocol == "SSL"
    both = load_config(None, {
        "security.auth_enabled": True, "security.users_file": str(tmp_path / "users.yaml"),
        "listeners": [{"name": "internal", "listen": "127.0.0.1:9094",
                       "security_protocol": "plaintext"},
                      {"name": "secure", "listen": "127.0.0.1:9095",
                       "security_protocol": "SASL_SSL"}], **tls}, environ=NO_ENV)
    assert [(s.name, s.port, s.security_protocol) for s in both.listener_specs] == [
        ("SASL_PLAINTEXT", 9092, "SASL_PLAINTEXT"), ("INTERNAL", 9094, "PLAINTEXT"),
        ("SECURE", 9095, "SASL_SSL")]
    problems = validate_config(None, {"listeners": [
        {"name": "x", "listen": "127.0.0.1:9095", "security_protocol": "SSL"}]}, environ=NO_ENV)
    assert problems == ["security: tls_cert and tls_key are required by SSL and SASL_SSL "
                        "listeners"]
    problems = validate_config(None, {"listeners": [
        {"name": "plaintext", "listen": "127.0.0.1:9095"}]}, environ=NO_ENV)
    assert "listener names must be unique" in problems[0]


def test_a_malformed_users_file_is_reported_without_its_passwords(tmp_path: Path) -> None:
    users = tmp_path / "users.yaml"
    users.write_text("users:\n  - name: alice\n    pasword: hunter2-secret\n")
    problems = validate_config(None, {"security.auth_enabled": True,
                                      "security.users_file": str(users)}, environ=NO_ENV)
    assert problems == [f"security.users_file: {users}: users[0]: unknown key 'pasword'"]
    assert "hunter2" not in problems[0]
