"""Broker configuration: the one typed, validated, frozen view of every setting.

This module owns `BrokerConfig` and the rules for building it from three layers, lowest
precedence first: a YAML file, ``STREAMBUS_*`` environment variables, then command-line flags
(``overrides``). It also owns turning validation failures into human-readable problems that
each name the offending key, for ``streambus-broker --validate-config``.

Rules:

- Unknown keys are errors at every level (``extra="forbid"``), so a typo never silently falls
  back to a default. Every number is bounded.
- Kafka broker properties keep Kafka's dotted names as YAML keys and flag names
  (``num.partitions``, ``log.segment.bytes``); the Python attributes are the same words in
  snake_case (``config.num_partitions``). ``model_dump(by_alias=True)`` gives Kafka's names back,
  which is what DescribeConfigs needs.
- This module never opens sockets or creates directories. It only checks that files the config
  names exist (`check_paths`), because an operator running ``--validate-config`` wants to hear
  about a missing certificate before the broker starts, not after.

Why a plain pydantic ``BaseModel`` rather than ``pydantic_settings.BaseSettings``: a settings
class reads the process environment every time it is constructed, which would make every
``BrokerConfig(...)`` in every test depend on the shell it runs in, and it cannot map Kafka's
dotted names to environment variables. The environment layer is therefore applied explicitly,
once, in `load_config` (see `environment_overrides`).
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic import model_validator

__all__ = [
    "AclEntry",
    "BrokerConfig",
    "ListenerConfig",
    "ListenerSpec",
    "ConfigError",
    "ProfilingConfig",
    "SecurityConfig",
    "TracingConfig",
    "check_paths",
    "environment_overrides",
    "load_config",
    "parse_host_port",
    "validate_config",
]

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
ENV_PREFIX = "STREAMBUS_"
DEFAULT_DATA_DIR = Path("./streambus-data")

# Limits on list-valued settings: a config is operator input, and every queue has a bound.
ACL_COUNT_MAX = 10_000
SUPER_USER_COUNT_MAX = 1_000
HOSTNAME_LENGTH_MAX = 253

_HOSTNAME_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


class ConfigError(Exception):
    """The configuration is invalid; `problems` lists every problem, each naming its key."""

    def __init__(self, problems: list[str]) -> None:
        assert problems, "ConfigError needs at least one problem"
        super().__init__("invalid configuration:\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = list(problems)


# --------------------------------------------------------------------------- HOST:PORT


def parse_host_port(text: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (IPv6 hosts in brackets: ``[::1]:9092``) into host and port.

    Args:
        text: the address as written by the operator.

    Returns:
        ``(host, port)``; an IPv6 host is returned without brackets. Port 0 means "any free
        port", which the listener reports once bound.

    Raises:
        ValueError: with a message saying what is wrong with the address.
    """
    if not isinstance(text, str):
        raise ValueError("must be a string HOST:PORT")
    text = text.strip()
    if text.startswith("["):
        close_index = text.find("]")
        if close_index < 0:
            raise ValueError("IPv6 address is missing its closing ']'")
        host = text[1:close_index]
        rest = text[close_index + 1 :]
        if not rest.startswith(":"):
            raise ValueError("expected HOST:PORT, e.g. [::1]:9092")
        port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} in brackets is not an IPv6 address") from None
    else:
        host, separator, port_text = text.rpartition(":")
        if not separator:
            raise ValueError("expected HOST:PORT, e.g. 127.0.0.1:9092")
        if ":" in host:
            raise ValueError("an IPv6 host must be in brackets, e.g. [::1]:9092")
        _check_host(host)
    if not port_text.isdigit() or not port_text.isascii():
        raise ValueError(f"port {port_text!r} is not a number")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range 0..65535")
    return host, port


def _check_host(host: str) -> None:
    if not host:
        raise ValueError("host is empty; use 0.0.0.0 to listen on every interface")
    if len(host) > HOSTNAME_LENGTH_MAX:
        raise ValueError(f"host is longer than {HOSTNAME_LENGTH_MAX} characters")
    try:
        ipaddress.IPv4Address(host)
        return
    except ValueError:
        pass
    if not all(_HOSTNAME_LABEL.match(label) for label in host.rstrip(".").split(".")):
        raise ValueError(f"{host!r} is not a valid hostname or IP address")


def _validate_host_port(text: str) -> str:
    parse_host_port(text)
    return text.strip()


def _format_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _is_wildcard(host: str) -> bool:
    return host in ("0.0.0.0", "::", "")


HostPort = Annotated[str, AfterValidator(_validate_host_port)]
# "~" is expanded so a path written for a shell means the same in the config file.
UserPath = Annotated[Path, AfterValidator(Path.expanduser)]


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_upper)]

_CLEANUP_POLICIES = ("delete", "compact")


def _cleanup_policy(value: Any) -> Any:
    """Kafka's LIST type: ``compact,delete`` (a YAML list works too), normalized to
    comma-separated text."""
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    items = [str(item).strip() for item in items if str(item).strip()]
    if not items or any(item not in _CLEANUP_POLICIES for item in items):
        raise ValueError(f"must be a list of {', '.join(_CLEANUP_POLICIES)}, got {value!r}")
    return ",".join(dict.fromkeys(items))


CleanupPolicy = Annotated[str, BeforeValidator(_cleanup_policy)]


# --------------------------------------------------------------------------- sections

_STRICT = ConfigDict(frozen=True, extra="forbid")

SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


def _version_text(value: Any) -> Any:
    # YAML reads an unquoted 1.3 as a float; accept it as the version the operator meant.
    return f"{value:.1f}" if isinstance(value, float) else value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class SecurityConfig(BaseModel):
    """TLS and SASL settings (``security:`` section of the YAML file)."""

    model_config = _STRICT

    tls_enabled: bool = False
    tls_cert: UserPath | None = None
    tls_key: UserPath | None = None
    tls_ca: UserPath | None = None
    min_tls_version: Annotated[Literal["1.2", "1.3"], BeforeValidator(_version_text)] = "1.2"
    auth_enabled: bool = False
    auth_mechanism: Annotated[SaslMechanism, BeforeValidator(_upper)] = "SCRAM-SHA-256"
    users_file: UserPath | None = None
    super_users: tuple[str, ...] = Field(default=(), max_length=SUPER_USER_COUNT_MAX)
    # Kafka's ssl.client.auth: "required" makes the listener mTLS, the certificate subject
    # becoming the principal; "requested" verifies a certificate when one is sent.
    tls_client_auth: Literal["none", "requested", "required"] = "none"
    # Kafka's allow.everyone.if.no.acl.found; unset means false when any listener
    # authenticates clients, true otherwise.
    allow_everyone_if_no_acl_found: bool | None = None
    # Empty means all of PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512; see `enabled_mechanisms`.
    sasl_enabled_mechanisms: tuple[Annotated[SaslMechanism, BeforeValidator(_upper)], ...] = Field(
        default=(), max_length=3
    )

    @model_validator(mode="after")
    def _check_dependencies(self) -> SecurityConfig:
        if self.tls_enabled and (self.tls_cert is None or self.tls_key is None):
            raise ValueError("tls_cert and tls_key are required when tls_enabled is true")
        if self.auth_enabled and self.users_file is None:
            raise ValueError("users_file is required when auth_enabled is true")
        if self.sasl_enabled_mechanisms and self.auth_mechanism not in self.sasl_enabled_mechanisms:
            raise ValueError(
                f"auth_mechanism {self.auth_mechanism} is not in sasl_enabled_mechanisms"
            )
        return self

    @property
    def enabled_mechanisms(self) -> tuple[str, ...]:
        """The SASL mechanisms the broker offers in SaslHandshake, ``auth_mechanism`` first."""
        offered = self.sasl_enabled_mechanisms or ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
        return (self.auth_mechanism,) + tuple(m for m in offered if m != self.auth_mechanism)


SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
#: Kafka's SecurityProtocol ids, as RegisterBrokerRecord carries them.
SECURITY_PROTOCOL_IDS = {"PLAINTEXT": 0, "SSL": 1, "SASL_PLAINTEXT": 2, "SASL_SSL": 3}
LISTENER_COUNT_MAX = 16


class ListenerConfig(BaseModel):
    """An extra Kafka listener (an item of the ``listeners:`` list), besides ``listen``."""

    model_config = _STRICT

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_]+$")
    listen: HostPort
    advertised_listen: HostPort | None = None
    security_protocol: Annotated[SecurityProtocol, BeforeValidator(_upper)] = "PLAINTEXT"


class ListenerSpec(BaseModel):
    """A listener resolved from the config: what to bind and how clients must talk to it."""

    model_config = _STRICT

    name: str
    host: str
    port: int
    advertised_host: str
    advertised_port: int
    security_protocol: SecurityProtocol

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")


# Kafka's AclOperation names, keyed by a spelling-insensitive form so "DescribeConfigs",
# "describe_configs" and "DESCRIBE-CONFIGS" all mean the same operation.
ACL_OPERATIONS = (
    "all", "read", "write", "create", "delete", "alter", "describe", "cluster_action",
    "describe_configs", "alter_configs", "idempotent_write", "create_tokens", "describe_tokens",
)
_ACL_OPERATION_BY_KEY = {name.replace("_", ""): name for name in ACL_OPERATIONS}
ACL_RESOURCE_TYPES = ("topic", "group", "cluster", "transactional_id", "delegation_token", "user")


def _acl_operation(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    key = value.lower().replace("_", "").replace("-", "")
    if key not in _ACL_OPERATION_BY_KEY:
        raise ValueError(f"unknown operation {value!r}; expected one of {', '.join(ACL_OPERATIONS)}")
    return _ACL_OPERATION_BY_KEY[key]


def _acl_resource(value: str) -> str:
    resource_type, _, name = value.partition(":")
    if resource_type.lower() not in ACL_RESOURCE_TYPES:
        raise ValueError(
            f"resource {value!r} must be TYPE:NAME with TYPE one of {', '.join(ACL_RESOURCE_TYPES)}"
        )
    if resource_type.lower() != "cluster" and not name:
        raise ValueError(f"resource {value!r} has no name; use {resource_type}:* for all")
    return f"{resource_type.lower()}:{name}" if name else resource_type.lower()


def _acl_principal(value: str) -> str:
    principal_type, _, name = value.partition(":")
    if not principal_type or not name:
        raise ValueError(f"principal {value!r} must be TYPE:NAME, e.g. User:alice")
    return value


class AclEntry(BaseModel):
    """One access rule (an item of the ``acls:`` list)."""

    model_config = _STRICT

    principal: Annotated[str, Field(max_length=1024), AfterValidator(_acl_principal)]
    operations: tuple[Annotated[str, BeforeValidator(_acl_operation)], ...] = Field(
        min_length=1, max_length=len(ACL_OPERATIONS)
    )
    resources: tuple[Annotated[str, Field(max_length=1024), AfterValidator(_acl_resource)], ...] = (
        Field(min_length=1, max_length=1024)
    )
    permission: Annotated[Literal["allow", "deny"], BeforeValidator(_lower)] = "allow"
    host: str = Field(default="*", max_length=HOSTNAME_LENGTH_MAX)


class TracingConfig(BaseModel):
    """Distributed tracing (``tracing:`` section)."""

    model_config = _STRICT

    enabled: bool = False
    exporter: Literal["jaeger", "zipkin", "otlp", "console"] = "otlp"
    endpoint: str | None = Field(default=None, max_length=2048)
    sampling_rate: float = Field(default=0.1, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _check_endpoint(self) -> TracingConfig:
        if self.enabled and self.exporter != "console" and not self.endpoint:
            raise ValueError(f"endpoint is required when enabled with exporter {self.exporter}")
        return self


class ProfilingConfig(BaseModel):
    """Profiling endpoint (``profiling:`` section). Keep it on localhost."""

    model_config = _STRICT

    enabled: bool = False
    listen_addr: HostPort = "127.0.0.1:6060"


# --------------------------------------------------------------------------- metadata quorum

VOTER_COUNT_MAX = 9
ProcessRole = Literal["broker", "controller"]


def _voter_entry(value: Any) -> Any:
    """``ID@HOST:PORT`` (Kafka's controller.quorum.voters form)."""
    if not isinstance(value, str):
        return value
    node_text, separator, address = value.strip().partition("@")
    if not separator or not node_text.isdigit():
        raise ValueError(f"voter {value!r} must be ID@HOST:PORT, e.g. 1@127.0.0.1:9093")
    host, port = parse_host_port(address)
    if port == 0:
        raise ValueError(f"voter {value!r} needs a fixed port, not 0")
    return f"{int(node_text)}@{_format_host_port(host, port)}"


def _comma_list(value: Any) -> Any:
    """``a,b,c`` from a flag or the environment; a YAML list passes through."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


VoterEntry = Annotated[str, AfterValidator(_voter_entry)]


# --------------------------------------------------------------------------- broker


def _kafka(alias: str, default: Any, **bounds: Any) -> Any:
    return Field(default=default, alias=alias, **bounds)


class BrokerConfig(BaseModel):
    """Every broker setting, validated and frozen.

    Construct with Python names or Kafka's dotted names:
    ``BrokerConfig(num_partitions=3)`` == ``BrokerConfig(**{"num.partitions": 3})``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    node_id: int = Field(default=1, ge=0, le=INT32_MAX)
    data_dir: UserPath = DEFAULT_DATA_DIR
    listen: HostPort = "127.0.0.1:9092"
    advertised_listen: HostPort | None = None
    http_listen: HostPort = "127.0.0.1:8080"
    log_level: LogLevel = "INFO"
    cluster_id: str | None = Field(default=None, min_length=1, max_length=64,
                                   pattern=r"^[A-Za-z0-9_-]+$")

    # Kafka broker properties, by their Kafka names.
    num_partitions: int = _kafka("num.partitions", 1, ge=1, le=100_000)
    default_replication_factor: int = _kafka("default.replication.factor", 1, ge=1, le=32767)
    auto_create_topics_enable: bool = _kafka("auto.create.topics.enable", True)
    message_max_bytes: int = _kafka("message.max.bytes", 1048588, ge=0, le=INT32_MAX)
    socket_request_max_bytes: int = _kafka("socket.request.max.bytes", 104857600,
                                           ge=1, le=INT32_MAX)
    log_segment_bytes: int = _kafka("log.segment.bytes", 1073741824, ge=14, le=INT32_MAX)
    log_roll_ms: int = _kafka("log.roll.ms", 604800000, ge=1, le=INT64_MAX)
    # -1 keeps data forever (Kafka's meaning).
    log_retention_ms: int = _kafka("log.retention.ms", 604800000, ge=-1, le=INT64_MAX)
    log_retention_bytes: int = _kafka("log.retention.bytes", -1, ge=-1, le=INT64_MAX)
    log_retention_check_interval_ms: int = _kafka("log.retention.check.interval.ms", 300000,
                                                  ge=1, le=INT64_MAX)
    log_index_interval_bytes: int = _kafka("log.index.interval.bytes", 4096, ge=0, le=INT32_MAX)
    log_index_size_max_bytes: int = _kafka("log.index.size.max.bytes", 10485760,
                                           ge=4, le=INT32_MAX)
    log_flush_interval_messages: int = _kafka("log.flush.interval.messages", INT64_MAX,
                                              ge=1, le=INT64_MAX)
    # None: flush only by log.flush.interval.messages and on shutdown (Kafka's default).
    log_flush_interval_ms: int | None = _kafka("log.flush.interval.ms", None, ge=0, le=INT64_MAX)
    offsets_topic_num_partitions: int = _kafka("offsets.topic.num.partitions", 50,
                                               ge=1, le=100_000)
    group_initial_rebalance_delay_ms: int = _kafka("group.initial.rebalance.delay.ms", 3000,
                                                   ge=0, le=INT32_MAX)
    # Transactions (KIP-98): the coordinator's limits and timers, Kafka's names and defaults.
    transaction_max_timeout_ms: int = _kafka("transaction.max.timeout.ms", 900000,
                                             ge=1, le=INT32_MAX)
    transaction_abort_timed_out_transaction_cleanup_interval_ms: int = _kafka(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms", 10000, ge=1, le=INT32_MAX)
    transaction_remove_expired_transaction_cleanup_interval_ms: int = _kafka(
        "transaction.remove.expired.transaction.cleanup.interval.ms", 3600000, ge=1, le=INT32_MAX)
    transactional_id_expiration_ms: int = _kafka("transactional.id.expiration.ms", 604800000,
                                                 ge=1, le=INT32_MAX)
    transaction_state_log_num_partitions: int = _kafka("transaction.state.log.num.partitions",
                                                       50, ge=1, le=100_000)
    transaction_partition_verification_enable: bool = _kafka(
        "transaction.partition.verification.enable", True)
    queued_max_requests: int = _kafka("queued.max.requests", 500, ge=1, le=1_000_000)
    # KIP-368: SASL sessions last this long, then clients must re-authenticate; 0 = forever.
    connections_max_reauth_ms: int = _kafka("connections.max.reauth.ms", 0, ge=0, le=INT64_MAX)
    # After a failed SASL authentication the error is sent at once and the connection closed
    # this much later (Kafka's default), slowing down password guessing.
    connection_failed_authentication_delay_ms: int = _kafka(
        "connection.failed.authentication.delay.ms", 100, ge=0, le=INT32_MAX)
    connections_max_idle_ms: int = _kafka("connections.max.idle.ms", 600000, ge=1, le=INT64_MAX)
    fetch_max_bytes: int = _kafka("fetch.max.bytes", 57671680, ge=1024, le=INT32_MAX)
    compression_type: Literal["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"] = (
        _kafka("compression.type", "producer")
    )
    log_message_timestamp_type: Literal["CreateTime", "LogAppendTime"] = _kafka(
        "log.message.timestamp.type", "CreateTime"
    )
    # Log lifecycle (retention, compaction, timestamps): defaults of the topic configs named in
    # streambus/metadata/topic_config.py; the log.cleaner.* settings can also change at runtime
    # through AlterConfigs.
    log_cleanup_policy: CleanupPolicy = _kafka("log.cleanup.policy", "delete")
    log_message_timestamp_before_max_ms: int = _kafka("log.message.timestamp.before.max.ms",
                                                      INT64_MAX, ge=0, le=INT64_MAX)
    log_message_timestamp_after_max_ms: int = _kafka("log.message.timestamp.after.max.ms",
                                                     INT64_MAX, ge=0, le=INT64_MAX)
    log_segment_delete_delay_ms: int = _kafka("log.segment.delete.delay.ms", 60000,
                                              ge=0, le=INT64_MAX)
    log_roll_jitter_ms: int = _kafka("log.roll.jitter.ms", 0, ge=0, le=INT64_MAX)
    log_preallocate: bool = _kafka("log.preallocate", False)
    min_insync_replicas: int = _kafka("min.insync.replicas", 1, ge=1, le=INT32_MAX)
    unclean_leader_election_enable: bool = _kafka("unclean.leader.election.enable", False)
    log_cleaner_enable: bool = _kafka("log.cleaner.enable", True)
    # StreamBus runs one cleaner; 0 turns it off.
    log_cleaner_threads: int = _kafka("log.cleaner.threads", 1, ge=0, le=1)
    log_cleaner_backoff_ms: int = _kafka("log.cleaner.backoff.ms", 15000, ge=0, le=INT64_MAX)
    log_cleaner_dedupe_buffer_size: int = _kafka("log.cleaner.dedupe.buffer.size", 134217728,
                                                 ge=1024, le=INT64_MAX)
    log_cleaner_io_buffer_size: int = _kafka("log.cleaner.io.buffer.size", 524288,
                                             ge=0, le=INT32_MAX)
    log_cleaner_io_buffer_load_factor: float = _kafka("log.cleaner.io.buffer.load.factor", 0.9,
                                                      ge=0.01, le=1.0)
    log_cleaner_io_max_bytes_per_second: float = _kafka("log.cleaner.io.max.bytes.per.second",
                                                        1.7976931348623157e308, ge=0.0)
    log_cleaner_delete_retention_ms: int = _kafka("log.cleaner.delete.retention.ms", 86400000,
                                                  ge=0, le=INT64_MAX)
    log_cleaner_min_compaction_lag_ms: int = _kafka("log.cleaner.min.compaction.lag.ms", 0,
                                                    ge=0, le=INT64_MAX)
    log_cleaner_max_compaction_lag_ms: int = _kafka("log.cleaner.max.compaction.lag.ms",
                                                    INT64_MAX, ge=1, le=INT64_MAX)
    log_cleaner_min_cleanable_ratio: float = _kafka("log.cleaner.min.cleanable.ratio", 0.5,
                                                    ge=0.0, le=1.0)

    # Metadata quorum (KRaft, KIP-595/631).  No voters: this node is a one-voter quorum of
    # its own (the single-node quick start).  ``voters`` is Kafka's controller.quorum.voters.
    controller_listen: HostPort | None = None
    voters: Annotated[tuple[VoterEntry, ...], BeforeValidator(_comma_list)] = Field(
        default=(), max_length=VOTER_COUNT_MAX)
    process_roles: Annotated[tuple[ProcessRole, ...], BeforeValidator(_comma_list)] = Field(
        default=("broker", "controller"), min_length=1, max_length=2)
    quorum_election_timeout_ms: int = _kafka("quorum.election.timeout.ms", 1000,
                                             ge=10, le=600_000)
    quorum_fetch_timeout_ms: int = _kafka("quorum.fetch.timeout.ms", 2000, ge=20, le=600_000)
    quorum_election_backoff_max_ms: int = _kafka("quorum.election.backoff.max.ms", 1000,
                                                 ge=10, le=600_000)
    broker_heartbeat_interval_ms: int = _kafka("broker.heartbeat.interval.ms", 2000,
                                               ge=10, le=600_000)
    broker_session_timeout_ms: int = _kafka("broker.session.timeout.ms", 9000,
                                            ge=20, le=3_600_000)
    metadata_log_max_record_bytes_between_snapshots: int = _kafka(
        "metadata.log.max.record.bytes.between.snapshots", 20971520, ge=1, le=INT64_MAX)

    # Sections from the operations checklist; parsed and validated now, enforced elsewhere.
    security: SecurityConfig = SecurityConfig()
    # Extra listeners (e.g. SASL_SSL for clients besides a PLAINTEXT `listen` on loopback).
    listeners: tuple[ListenerConfig, ...] = Field(default=(), max_length=LISTENER_COUNT_MAX)
    acls: tuple[AclEntry, ...] = Field(default=(), max_length=ACL_COUNT_MAX)
    tracing: TracingConfig = TracingConfig()
    profiling: ProfilingConfig = ProfilingConfig()

    @model_validator(mode="after")
    def _check_quorum(self) -> BrokerConfig:
        ids = [int(entry.split("@", 1)[0]) for entry in self.voters]
        if len(set(ids)) != len(ids):
            raise ValueError(f"voters: node ids must be unique, got {ids}")
        if len(set(self.process_roles)) != len(self.process_roles):
            raise ValueError(f"process_roles: {list(self.process_roles)} names a role twice")
        if not self.voters:
            if set(self.process_roles) != {"broker", "controller"}:
                raise ValueError("process_roles: a node without voters is a single "
                                 "broker+controller; list the voters to split the roles")
            return self
        is_controller = "controller" in self.process_roles
        if is_controller and self.node_id not in ids:
            raise ValueError(f"voters: node {self.node_id} has the controller role but is not "
                             f"one of the voters {ids}")
        if not is_controller and self.node_id in ids:
            raise ValueError(f"process_roles: node {self.node_id} is a voter, so it needs the "
                             "controller role")
        return self

    @property
    def voter_addresses(self) -> dict[int, tuple[str, int]]:
        """Voter id -> controller listener (host, port), from ``voters``."""
        voters = {}
        for entry in self.voters:
            node_text, _, address = entry.partition("@")
            voters[int(node_text)] = parse_host_port(address)
        return voters

    @property
    def controller_host_port(self) -> tuple[str, int] | None:
        """Where this node's controller listener binds: ``controller_listen``, else its own
        entry in ``voters``; None when it has no controller listener."""
        if self.controller_listen is not None:
            return parse_host_port(self.controller_listen)
        return self.voter_addresses.get(self.node_id)

    @model_validator(mode="after")
    def _check_listeners(self) -> BrokerConfig:
        host, _ = self.advertised_host_port
        if _is_wildcard(host):
            key = "advertised_listen" if self.advertised_listen else "listen"
            raise ValueError(
                f"advertised_listen: clients cannot connect to the wildcard address {host!r} "
                f"(taken from {key}); set advertised_listen to an address clients can reach"
            )
        kafka_address = self.listen_host_port
        if kafka_address == self.http_host_port and kafka_address[1] != 0:
            raise ValueError(f"http_listen: {self.http_listen} is the same address as listen")
        specs = self.listener_specs
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"listeners: listener names must be unique, got {names} (the "
                             "listen address is named after its security protocol)")
        for spec in specs[1:]:
            if _is_wildcard(spec.advertised_host):
                raise ValueError(f"listeners: {spec.name} needs advertised_listen, clients "
                                 f"cannot connect to {spec.advertised_host!r}")
        if any(spec.uses_tls for spec in specs) and (
                self.security.tls_cert is None or self.security.tls_key is None):
            raise ValueError("security: tls_cert and tls_key are required by SSL and SASL_SSL "
                             "listeners")
        if self.security.tls_client_auth != "none" and self.security.tls_ca is None:
            raise ValueError("security: tls_ca is required when tls_client_auth is "
                             f"{self.security.tls_client_auth}")
        return self

    @property
    def primary_security_protocol(self) -> str:
        """The seed's single-listener form: auth_enabled and tls_enabled pick the protocol."""
        security = self.security
        if security.auth_enabled:
            return "SASL_SSL" if security.tls_enabled else "SASL_PLAINTEXT"
        return "SSL" if security.tls_enabled else "PLAINTEXT"

    @property
    def listener_specs(self) -> list[ListenerSpec]:
        """Every Kafka listener, ``listen`` first (named after its protocol), then ``listeners``."""
        host, port = self.listen_host_port
        advertised_host, advertised_port = self.advertised_host_port
        protocol = self.primary_security_protocol
        specs = [ListenerSpec(name=protocol, host=host, port=port,
                              advertised_host=advertised_host, advertised_port=advertised_port,
                              security_protocol=protocol)]
        for listener in self.listeners:
            host, port = parse_host_port(listener.listen)
            advertised_host, advertised_port = parse_host_port(
                listener.advertised_listen or listener.listen)
            specs.append(ListenerSpec(name=listener.name.upper(), host=host, port=port,
                                      advertised_host=advertised_host,
                                      advertised_port=advertised_port,
                                      security_protocol=listener.security_protocol))
        return specs

    @property
    def authenticates_clients(self) -> bool:
        """Whether any listener establishes identities (SASL, or TLS client certificates)."""
        return any(spec.uses_sasl or (spec.uses_tls and self.security.tls_client_auth != "none")
                   for spec in self.listener_specs)

    @property
    def authorizer_enabled(self) -> bool:
        """ACLs are enforced when clients authenticate or ACLs / super users are configured."""
        return bool(self.authenticates_clients or self.acls or self.security.super_users)

    @property
    def allow_everyone_if_no_acl_found(self) -> bool:
        configured = self.security.allow_everyone_if_no_acl_found
        return (not self.authenticates_clients) if configured is None else configured

    @property
    def listen_host_port(self) -> tuple[str, int]:
        """Address the Kafka listener binds; port 0 means any free port."""
        return parse_host_port(self.listen)

    @property
    def advertised_host_port(self) -> tuple[str, int]:
        """Address given to clients in Metadata; falls back to `listen`.

        Port 0 here means "the port the Kafka listener actually bound".
        """
        return parse_host_port(self.advertised_listen or self.listen)

    @property
    def http_host_port(self) -> tuple[str, int]:
        """Address of the operator HTTP endpoint (/health, /ready, /metrics)."""
        return parse_host_port(self.http_listen)


# --------------------------------------------------------------------------- key names

_SECTION_MODELS: dict[str, type[BaseModel]] = {
    "security": SecurityConfig,
    "tracing": TracingConfig,
    "profiling": ProfilingConfig,
}
# Canonical top-level key (alias if any, else the Python name) -> Python name.
_FIELD_BY_KEY: dict[str, str] = {
    (info.alias or name): name for name, info in BrokerConfig.model_fields.items()
}
# Every accepted spelling of a top-level key -> its canonical key.
_CANONICAL_KEY: dict[str, str] = {key: key for key in _FIELD_BY_KEY}
_CANONICAL_KEY.update({name: key for key, name in _FIELD_BY_KEY.items()})
# Kafka's own names for our non-Kafka keys, so a Kafka operator's habits work.
_CANONICAL_KEY.update({"node.id": "node_id", "broker.id": "node_id"})


def _canonical_key(key: str) -> str:
    return _CANONICAL_KEY.get(key, key)


def _parse_value_text(value: Any) -> Any:
    """Strings from flags or the environment stay strings (pydantic coerces them), except
    YAML flow collections, so ``security.super_users=[User:admin]`` works."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError:
            return value
    return value


def _merge_layer(data: dict[str, Any], layer: Mapping[str, Any], origin: str,
                 problems: list[str]) -> None:
    """Apply one layer of settings on top of `data`, in canonical key form.

    Keys are top-level keys in any accepted spelling, or ``section.field`` for sections.
    """
    for raw_key, raw_value in layer.items():
        key = _canonical_key(str(raw_key))
        value = _parse_value_text(raw_value)
        section, _, field = key.partition(".")
        if key not in _FIELD_BY_KEY and section in _SECTION_MODELS and field:
            current = data.get(section, {})
            if not isinstance(current, Mapping):
                problems.append(f"{section}: must be a mapping, cannot apply {origin} {key}")
                continue
            data[section] = {**current, field: value}
        else:
            data[key] = value


def _canonicalize_file(document: Mapping[Any, Any], problems: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    spelled_as: dict[str, str] = {}
    for raw_key, value in document.items():
        key = _canonical_key(str(raw_key))
        if key in spelled_as:
            problems.append(f"{key}: given twice (as {spelled_as[key]} and {raw_key})")
            continue
        spelled_as[key] = str(raw_key)
        data[key] = value
    return data


# --------------------------------------------------------------------------- loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys, which PyYAML would silently let the last win."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_file(path: str, problems: list[str]) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(f"config: file not found: {path}")
        return {}
    except (OSError, UnicodeDecodeError) as error:
        problems.append(f"config: cannot read {path}: {error}")
        return {}
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as error:
        problems.append(f"config: {path} is not valid YAML: {' '.join(str(error).split())}")
        return {}
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        problems.append(f"config: {path} must contain a mapping of keys to values")
        return {}
    return _canonicalize_file(document, problems)


def environment_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    """Settings from ``STREAMBUS_*`` variables, keyed as `load_config` overrides.

    ``STREAMBUS_NODE_ID`` sets ``node_id``; ``STREAMBUS_LOG_SEGMENT_BYTES`` sets
    ``log.segment.bytes``; ``STREAMBUS_SECURITY__TLS_ENABLED`` sets ``security.tls_enabled``.
    Variables that name no setting are ignored, because other tools share the prefix.
    """
    names: dict[str, str] = {}
    for key in _FIELD_BY_KEY:
        if key not in _SECTION_MODELS and key not in ("acls", "listeners"):
            names[ENV_PREFIX + key.upper().replace(".", "_")] = key
    for section, model in _SECTION_MODELS.items():
        for field in model.model_fields:
            names[f"{ENV_PREFIX}{section.upper()}__{field.upper()}"] = f"{section}.{field}"
    return {names[name]: value for name, value in environ.items() if name in names}


def _format_location(location: tuple[int | str, ...]) -> str:
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _known_keys(location: tuple[int | str, ...]) -> list[str]:
    if len(location) <= 1:
        return list(_FIELD_BY_KEY)
    model = _SECTION_MODELS.get(str(location[0]))
    if model is None and location[0] == "acls":
        model = AclEntry
    if model is None and location[0] == "listeners":
        model = ListenerConfig
    return list(model.model_fields) if model else []


def _format_error(error: Mapping[str, Any]) -> str:
    location = tuple(error["loc"])
    # A union (e.g. `HostPort | None`) adds the member type as a last location part.
    if location and isinstance(location[-1], str) and (
        location[-1].startswith("function-") or location[-1] in ("str", "int", "none")
    ):
        location = location[:-1]
    key = _format_location(location)
    message = str(error["msg"]).removeprefix("Value error, ")
    kind = error["type"]
    if kind == "extra_forbidden":
        message = "unknown key"
        close = difflib.get_close_matches(str(location[-1]), _known_keys(location), n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    elif kind == "missing":
        message = "required"
    elif isinstance(error.get("input"), (str, int, float, bool)):
        if repr(error["input"]) not in message:
            message += f", got {error['input']!r}"
    if not key:
        return message  # Model-level messages already start with the key they concern.
    return f"{key}: {message}"


def _format_errors(errors: list[Any]) -> list[str]:
    # A list whose items failed also reports "too short" once they are dropped; that second
    # message restates the first, so keep only the item errors.
    failed_locations = {tuple(item["loc"][:-1]) for item in errors if len(item["loc"]) > 1}
    return [
        _format_error(item) for item in errors
        if not (item["type"] == "too_short" and tuple(item["loc"]) in failed_locations)
    ]


def check_paths(config: BrokerConfig) -> list[str]:
    """Problems with files and directories the config names, each naming its key."""
    problems: list[str] = []
    if config.data_dir.exists() and not config.data_dir.is_dir():
        problems.append(f"data_dir: {config.data_dir} exists and is not a directory")
    elif config.data_dir.is_dir() and not os.access(config.data_dir, os.W_OK | os.X_OK):
        problems.append(f"data_dir: {config.data_dir} is not writable")
    security = config.security
    uses_tls = any(spec.uses_tls for spec in config.listener_specs)
    named_files = {
        "security.tls_cert": security.tls_cert if uses_tls else None,
        "security.tls_key": security.tls_key if uses_tls else None,
        "security.tls_ca": security.tls_ca if uses_tls else None,
        "security.users_file": security.users_file,
    }
    for key, path in named_files.items():
        if path is not None and not path.is_file():
            problems.append(f"{key}: file not found: {path}")
    if security.users_file is not None and security.users_file.is_file():
        from streambus.security.users import check_users_file

        problem = check_users_file(security.users_file)
        if problem is not None:
            problems.append(f"security.users_file: {problem}")
    return problems


def check_not_yet_supported(config: BrokerConfig) -> list[str]:
    """Settings this build parses but cannot honour yet.

    A broker that silently ignored ``tracing.enabled: true`` would look observed and not be:
    refuse to start instead, naming the key.  Each entry disappears from this list when the
    feature lands (security settings left it when TLS, SASL and ACLs did).
    """
    problems: list[str] = []
    if config.tracing.enabled:
        problems.append("tracing.enabled: tracing is not supported by this build yet")
    if config.profiling.enabled:
        problems.append("profiling.enabled: the profiling endpoint is not supported by this "
                        "build yet")
    return problems


def _build(path: str | None, overrides: Mapping[str, Any] | None,
           environ: Mapping[str, str] | None) -> tuple[BrokerConfig | None, list[str]]:
    problems: list[str] = []
    data = _read_file(path, problems) if path is not None else {}
    environ = os.environ if environ is None else environ
    _merge_layer(data, environment_overrides(environ), "environment variable", problems)
    _merge_layer(data, overrides or {}, "flag", problems)
    try:
        config = BrokerConfig.model_validate(data)
    except ValidationError as error:
        problems.extend(_format_errors(error.errors()))
        return None, problems
    problems.extend(check_paths(config))
    problems.extend(check_not_yet_supported(config))
    return (None if problems else config), problems


def load_config(path: str | None, overrides: Mapping[str, Any] | None = None, *,
                environ: Mapping[str, str] | None = None) -> BrokerConfig:
    """Build the broker config from a YAML file, the environment, then flag overrides.

    Args:
        path: YAML file, or None for defaults only.
        overrides: settings from flags, which win over the file and the environment. Keys are
            Python names (``node_id``), Kafka names (``num.partitions``) or ``section.field``.
            String values are coerced (``"3"`` -> 3, ``"true"`` -> True).
        environ: variables to read ``STREAMBUS_*`` settings from; defaults to ``os.environ``.

    Returns:
        The validated, frozen config.

    Raises:
        ConfigError: listing every problem found, each naming its key.
    """
    config, problems = _build(path, overrides, environ)
    if problems or config is None:
        raise ConfigError(problems)
    return config


def validate_config(path: str | None, overrides: Mapping[str, Any] | None = None, *,
                    environ: Mapping[str, str] | None = None) -> list[str]:
    """Every problem `load_config` would raise for, as ``"key: what is wrong"`` lines.

    An empty list means the configuration is valid.
    """
    return _build(path, overrides, environ)[1]
