"""``streambus``: the kafka-topics style admin command line.

This module owns the admin CLI's contract: its sub-commands and flags, the table and JSON
output formats, and the exit codes. It speaks Kafka only through ``streambus.client`` (which
encodes with ``streambus.protocol``), never through a third-party Kafka client, and it holds no
protocol logic of its own.

Commands::

    streambus [--bootstrap-server H:P[,H:P...]] [--output table|json] [--timeout-ms MS]
        topics create NAME [--partitions N] [--replication-factor N] [--config k=v ...]
                           [--if-not-exists]
        topics list [--exclude-internal]
        topics describe [NAME ...]
        topics delete NAME [NAME ...] [--if-exists]
        topics alter NAME --partitions N [--validate-only]
        configs describe (--topic NAME | --broker ID | --broker-defaults) [--all]
        configs alter (--topic NAME | --broker ID | --broker-defaults)
                      [--add-config K=V[,K=V...]] [--delete-config K[,K...]]
                      [--append-config K=V] [--subtract-config K=V] [--validate-only]
        log-dirs describe [--topic NAME ...]
        users add|delete|list ...     (see streambus.cli.security_commands)
        acls add|list|remove ...
        groups list|describe|delete|reset-offsets ...   (see streambus.cli.group_commands)
        transactions list|describe|abort ...          (see streambus.cli.transaction_commands)
        cluster describe | cluster up [--nodes N]; quorum describe
                                      (see streambus.cli.cluster_commands)

Connection security flags (--security-protocol, --sasl-mechanism, --username,
--password-env/--password-file, --ssl-cafile, --ssl-certfile/--ssl-keyfile) reach TLS and SASL
listeners; the password never goes on the command line.

Exit codes: 0 success; 1 the broker answered with a Kafka error (printed on stderr as
``Error: NAME: message``); 2 usage error; 3 no broker reachable, connection lost or timed out.

JSON output (``--output json``) is one object per invocation on stdout, with keys that only
ever grow: ``topics list`` -> ``{"topics": [topic...]}``; ``topics describe`` ->
``{"topics": [topic + "configs" + "partitions"...]}``; ``topics create`` -> a topic plus
``"created"``; ``topics delete`` -> ``{"deleted": [...], "missing": [...]}``. A topic is
``{"name", "topic_id", "internal", "partition_count", "replication_factor"}``.
``topics alter`` -> ``{"name", "partition_count", "validate_only"}``; ``configs describe`` ->
``{"resource": {"type", "name"}, "configs": [{"name", "value", "source", "read_only",
"sensitive", "synonyms": [{"name", "value", "source"}]}]}``; ``configs alter`` ->
``{"resource", "altered", "validate_only"}``; ``log-dirs describe`` -> ``{"log_dirs":
[{"log_dir", "error", "total_bytes", "usable_bytes", "partitions": [{"topic", "partition",
"size_bytes", "offset_lag"}]}]}``.

``configs describe`` without ``--all`` shows only configs that differ from Kafka's defaults
(any source but DEFAULT_CONFIG), as ``kafka-configs --describe`` does; ``configs alter`` uses
IncrementalAlterConfigs, so configs not named keep their values.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import streambus
from streambus.client.admin import (
    CONFIG_RESOURCE_BROKER,
    CONFIG_RESOURCE_TOPIC,
    AdminClient,
    connect_admin,
)
from streambus.cli import cluster_commands
from streambus.cli import group_commands
from streambus.cli import transaction_commands
from streambus.cli import security_commands
from streambus.client.connection import parse_bootstrap_servers
from streambus.client.security import ClientSecurity
from streambus.client.errors import ClientError, KafkaApiError, KafkaConnectionError
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.create_topics import CreateTopicsRequest
from streambus.protocol.messages.metadata import MetadataResponse
from streambus.protocol.primitives import ZERO_UUID

__all__ = [
    "EXIT_CONNECTION_FAILED",
    "EXIT_KAFKA_ERROR",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "main",
]

EXIT_OK = 0
EXIT_KAFKA_ERROR = 1
EXIT_USAGE = 2
EXIT_CONNECTION_FAILED = 3

BOOTSTRAP_SERVER_DEFAULT = "localhost:9092"
TIMEOUT_MS_DEFAULT = 30000
#: DescribeConfigs ``config_source`` of a config set on the topic itself (KIP-226).
CONFIG_SOURCE_DYNAMIC_TOPIC = 1

Connect = Callable[[str, int], AdminClient]


class UsageError(Exception):
    """The command line is well-formed for argparse but its values are not usable."""


# -- argument parsing -------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's own behaviour (usage + message on stderr, exit 2), with Kafka-CLI wording.
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"Error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _config_entry(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"config {text!r} is not key=value")
    return key.strip(), value


def build_parser() -> argparse.ArgumentParser:
    """The full ``streambus`` argument parser (exposed for tests and docs)."""
    parser = _Parser(prog="streambus", description="StreamBus admin tool (Kafka protocol).")
    parser.add_argument("--version", action="version", version=f"streambus {streambus.__version__}")
    parser.add_argument("--bootstrap-server", default=BOOTSTRAP_SERVER_DEFAULT,
                        metavar="HOST:PORT[,HOST:PORT...]",
                        help=f"brokers to try in order (default {BOOTSTRAP_SERVER_DEFAULT})")
    parser.add_argument("--output", choices=("table", "json"), default="table",
                        help="table (aligned, for people) or json (stable, for scripts)")
    parser.add_argument("--timeout-ms", type=_positive_int, default=TIMEOUT_MS_DEFAULT,
                        metavar="MS", help="deadline of each request, also sent to the broker")
    security_commands.add_security_flags(parser)
    commands = parser.add_subparsers(dest="resource", metavar="RESOURCE", required=True,
                                     parser_class=_Parser)
    security_commands.add_commands(commands, _Parser)
    group_commands.add_commands(commands, _Parser)
    transaction_commands.add_commands(commands, _Parser)
    cluster_commands.add_commands(commands, _Parser)
    topics = commands.add_parser("topics", help="create, list, describe and delete topics")
    actions = topics.add_subparsers(dest="action", metavar="ACTION", required=True,
                                    parser_class=_Parser)

    create = actions.add_parser("create", help="create a topic")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--partitions", type=_positive_int, default=None,
                        help="partition count (default: the broker's num.partitions)")
    create.add_argument("--replication-factor", type=_positive_int, default=None,
                        help="replication factor (default: the broker's default.replication.factor)")
    create.add_argument("--config", type=_config_entry, action="append", default=[],
                        metavar="KEY=VALUE", help="topic config, repeatable")
    create.add_argument("--if-not-exists", action="store_true",
                        help="succeed when the topic already exists")

    listing = actions.add_parser("list", help="list topics")
    listing.add_argument("--exclude-internal", action="store_true",
                         help="leave out internal topics such as __consumer_offsets")

    describe = actions.add_parser("describe", help="describe topics (all when none named)")
    describe.add_argument("names", metavar="NAME", nargs="*")

    delete = actions.add_parser("delete", help="delete topics")
    delete.add_argument("names", metavar="NAME", nargs="+")
    delete.add_argument("--if-exists", action="store_true",
                        help="succeed when a topic does not exist")

    alter = actions.add_parser("alter", help="add partitions to a topic")
    alter.add_argument("name", metavar="NAME")
    alter.add_argument("--partitions", type=_positive_int, required=True,
                       help="the new, larger partition count")
    alter.add_argument("--validate-only", action="store_true",
                       help="check the change without making it")
    _add_config_commands(commands)
    _add_log_dir_commands(commands)
    return parser


def _add_config_target(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--topic", metavar="NAME", help="a topic's configs")
    target.add_argument("--broker", metavar="ID", help="one broker's configs")
    target.add_argument("--broker-defaults", action="store_true",
                        help="the cluster-wide broker defaults (resource name \"\")")


def _add_config_commands(commands: Any) -> None:
    configs = commands.add_parser("configs", help="describe and alter topic and broker configs")
    actions = configs.add_subparsers(dest="action", metavar="ACTION", required=True,
                                     parser_class=_Parser)
    describe = actions.add_parser("describe", help="configs with their values and sources")
    _add_config_target(describe)
    describe.add_argument("--all", action="store_true",
                          help="also configs that have Kafka's default value")
    alter = actions.add_parser("alter", help="set, delete, append to or subtract from configs")
    _add_config_target(alter)
    alter.add_argument("--add-config", type=_config_list, action="append", default=[],
                       metavar="K=V[,K=V...]",
                       help="set configs; a list value goes in brackets: cleanup.policy=[compact,delete]")
    alter.add_argument("--delete-config", action="append", default=[], metavar="K[,K...]",
                       help="return configs to their defaults")
    alter.add_argument("--append-config", type=_config_entry, action="append", default=[],
                       metavar="K=V", help="add items to a list config")
    alter.add_argument("--subtract-config", type=_config_entry, action="append", default=[],
                       metavar="K=V", help="remove items from a list config")
    alter.add_argument("--validate-only", action="store_true",
                       help="check the change without making it")


def _add_log_dir_commands(commands: Any) -> None:
    log_dirs = commands.add_parser("log-dirs", help="describe the brokers' log directories")
    actions = log_dirs.add_subparsers(dest="action", metavar="ACTION", required=True,
                                      parser_class=_Parser)
    describe = actions.add_parser("describe", help="size and offset lag of each partition")
    describe.add_argument("--topic", dest="topics", action="append", default=None,
                          metavar="NAME", help="only these topics (repeatable)")


def _config_list(text: str) -> list[tuple[str, str]]:
    """``k1=v1,k2=[a,b]`` as kafka-configs' --add-config reads it."""
    entries: list[tuple[str, str]] = []
    depth, start = 0, 0
    parts: list[str] = []
    for index, char in enumerate(text):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    for part in parts:
        key, value = _config_entry(part)
        if value.startswith("[") and value.endswith("]"):
            value = value[1:-1]
        entries.append((key, value))
    return entries


# -- views ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartitionView:
    partition: int
    leader: int
    leader_epoch: int
    replicas: list[int]
    isr: list[int]
    offline_replicas: list[int]

    def to_json(self) -> dict[str, Any]:
        return {"partition": self.partition, "leader": self.leader,
                "leader_epoch": self.leader_epoch, "replicas": self.replicas, "isr": self.isr,
                "offline_replicas": self.offline_replicas}


@dataclass(frozen=True, slots=True)
class TopicView:
    name: str
    topic_id: str | None
    internal: bool
    partitions: list[PartitionView]

    @property
    def partition_count(self) -> int:
        return len(self.partitions)

    @property
    def replication_factor(self) -> int:
        return max((len(p.replicas) for p in self.partitions), default=0)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "topic_id": self.topic_id, "internal": self.internal,
                "partition_count": self.partition_count,
                "replication_factor": self.replication_factor}


def _topic_id_text(topic_id: Any) -> str | None:
    # Kafka shows topic ids as URL-safe base64 without padding (Uuid.toString); the all-zero
    # id means "none" (pre-KIP-516 versions).
    if topic_id is None or topic_id == ZERO_UUID:
        return None
    return base64.urlsafe_b64encode(topic_id.bytes).rstrip(b"=").decode()


def topic_view(topic: MetadataResponse.MetadataResponseTopic) -> TopicView:
    partitions = sorted(
        (PartitionView(partition=p.partition_index, leader=p.leader_id,
                       leader_epoch=p.leader_epoch, replicas=list(p.replica_nodes),
                       isr=list(p.isr_nodes), offline_replicas=list(p.offline_replicas))
         for p in topic.partitions),
        key=lambda p: p.partition,
    )
    return TopicView(name=topic.name or "", topic_id=_topic_id_text(topic.topic_id),
                     internal=topic.is_internal, partitions=partitions)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns separated by two spaces, header first; no trailing blanks."""
    cells = [list(headers)] + [[_cell(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip()
             for row in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


# -- commands ---------------------------------------------------------------------------


@dataclass(slots=True)
class Output:
    """Where and how a command writes: stdout for results, stderr for errors."""

    mode: str
    stdout: TextIO
    stderr: TextIO

    def json(self, document: dict[str, Any]) -> None:
        self.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")

    def text(self, text: str) -> None:
        self.stdout.write(text + "\n")

    def error(self, exc: BaseException | str) -> None:
        self.stderr.write(f"Error: {exc}\n")


def _raise_for(error_code: int, error_message: str | None, resource: str) -> None:
    if error_code != ErrorCode.NONE:
        raise KafkaApiError(error_code, error_message, resource)


def _create(admin: AdminClient, args: argparse.Namespace, out: Output) -> int:
    topic = CreateTopicsRequest.CreatableTopic(
        name=args.name,
        # -1 asks the broker for its defaults (KIP-464).
        num_partitions=-1 if args.partitions is None else args.partitions,
        replication_factor=-1 if args.replication_factor is None else args.replication_factor,
        configs=[CreateTopicsRequest.CreatableTopicConfig(name=key, value=value)
                 for key, value in args.config],
    )
    [result] = admin.create_topics([topic])
    created = True
    if result.error_code == ErrorCode.TOPIC_ALREADY_EXISTS and args.if_not_exists:
        created = False
    else:
        _raise_for(result.error_code, result.error_message, args.name)
    if out.mode == "json":
        document: dict[str, Any] = {"name": args.name, "created": created}
        if created:
            document.update(topic_id=_topic_id_text(result.topic_id),
                            partition_count=_or_none(result.num_partitions),
                            replication_factor=_or_none(result.replication_factor))
        out.json(document)
    elif created:
        out.text(f"Created topic {args.name}.")
    else:
        out.text(f"Topic {args.name} already exists.")
    return EXIT_OK


def _or_none(value: int) -> int | None:
    # CreateTopics v0-v4 carry no num_partitions/replication_factor (default -1).
    return None if value < 0 else value


def _list(admin: AdminClient, args: argparse.Namespace, out: Output) -> int:
    response = admin.metadata(None)
    views = sorted((topic_view(t) for t in response.topics if t.error_code == ErrorCode.NONE),
                   key=lambda v: v.name)
    if args.exclude_internal:
        views = [v for v in views if not v.internal]
    if out.mode == "json":
        out.json({"topics": [v.to_json() for v in views]})
    elif views:
        out.text(format_table(
            ("TOPIC", "PARTITIONS", "REPLICATION_FACTOR", "TOPIC_ID"),
            [(v.name, v.partition_count, v.replication_factor, v.topic_id) for v in views]))
    return EXIT_OK


def _describe(admin: AdminClient, args: argparse.Namespace, out: Output) -> int:
    response = admin.metadata(args.names or None)
    by_name = {t.name: t for t in response.topics}
    names = list(args.names) or sorted(n for n, t in by_name.items()
                                       if n and t.error_code == ErrorCode.NONE)
    for name in names:
        topic = by_name.get(name)
        if topic is None:
            raise KafkaApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                f"Topic '{name}' does not exist.", name)
        if topic.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
            raise KafkaApiError(topic.error_code, f"Topic '{name}' does not exist.", name)
        if topic.error_code != ErrorCode.LEADER_NOT_AVAILABLE:
            # A topic still electing leaders is described as it is, with leader -1.
            _raise_for(topic.error_code, None, name)
    views = [topic_view(by_name[name]) for name in names]
    config_results = admin.describe_topic_configs(names)
    configs: dict[str, dict[str, str | None]] = {}
    for name in names:
        result = config_results[name]
        _raise_for(result.error_code, result.error_message, name)
        configs[name] = {entry.name: entry.value for entry in sorted(result.configs, key=lambda e: e.name)
                         if entry.config_source == CONFIG_SOURCE_DYNAMIC_TOPIC}
    if out.mode == "json":
        out.json({"topics": [
            {**view.to_json(), "configs": configs[view.name],
             "partitions": [p.to_json() for p in view.partitions]}
            for view in views
        ]})
        return EXIT_OK
    blocks = []
    for view in views:
        config_text = ",".join(f"{k}={v}" for k, v in configs[view.name].items()) or "-"
        summary = format_table(
            ("TOPIC", "TOPIC_ID", "PARTITIONS", "REPLICATION_FACTOR", "CONFIGS"),
            [(view.name, view.topic_id, view.partition_count, view.replication_factor, config_text)])
        partitions = format_table(
            ("PARTITION", "LEADER", "LEADER_EPOCH", "REPLICAS", "ISR"),
            [(p.partition, p.leader, p.leader_epoch, p.replicas, p.isr) for p in view.partitions])
        blocks.append(summary + "\n\n" + partitions)
    if blocks:
        out.text("\n\n".join(blocks))
    return EXIT_OK


def _delete(admin: AdminClient, args: argparse.Namespace, out: Output) -> int:
    names = list(dict.fromkeys(args.names))  # a name twice would be INVALID_REQUEST (KIP-516)
    results = {result.name: result for result in admin.delete_topics(names)}
    deleted, missing, failures = [], [], []
    for name in names:
        result = results.get(name)
        if result is None:
            failures.append(KafkaApiError(ErrorCode.UNKNOWN_SERVER_ERROR,
                                          f"the broker did not answer for topic '{name}'", name))
        elif result.error_code == ErrorCode.NONE:
            deleted.append(name)
        elif result.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION and args.if_exists:
            missing.append(name)
        elif result.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
            failures.append(KafkaApiError(result.error_code, f"Topic '{name}' does not exist.", name))
        else:
            failures.append(KafkaApiError(result.error_code, result.error_message, name))
    if out.mode == "json":
        out.json({"deleted": deleted, "missing": missing})
    else:
        for name in deleted:
            out.text(f"Deleted topic {name}.")
    for failure in failures:
        out.error(failure)
    return EXIT_KAFKA_ERROR if failures else EXIT_OK


def _alter_partitions(admin: AdminClient, args: argparse.Namespace, out: Output) -> int:
    result = admin.create_partitions(args.name, args.partitions, validate_only=args.validate_only)
    _raise_for(result.error_code, result.error_message, args.name)
    if out.mode == "json":
        out.json({"name": args.name, "partition_count": args.partitions,
                  "validate_only": args.validate_only})
    elif args.validate_only:
        out.text(f"Topic {args.name} can have {args.partitions} partitions.")
    else:
        out.text(f"Topic {args.name} now has {args.partitions} partitions.")
    return EXIT_OK


#: DescribeConfigs ``config_source`` on the wire (Kafka's DescribeConfigsResponse.ConfigSource).
CONFIG_SOURCE_NAMES = {
    0: "UNKNOWN", 1: "DYNAMIC_TOPIC_CONFIG", 2: "DYNAMIC_BROKER_CONFIG",
    3: "DYNAMIC_DEFAULT_BROKER_CONFIG", 4: "STATIC_BROKER_CONFIG", 5: "DEFAULT_CONFIG",
    6: "DYNAMIC_BROKER_LOGGER_CONFIG", 7: "CLIENT_METRICS_CONFIG", 8: "GROUP_CONFIG",
}
_CONFIG_SOURCE_DEFAULT = 5


def _config_resource(args: argparse.Namespace) -> tuple[int, str, str]:
    """(resource type, resource name, label) of --topic/--broker/--broker-defaults."""
    if args.topic is not None:
        return CONFIG_RESOURCE_TOPIC, args.topic, f"topic {args.topic}"
    if args.broker is not None:
        if not args.broker.isdigit():
            raise UsageError(f"--broker takes a broker id, not {args.broker!r}")
        return CONFIG_RESOURCE_BROKER, args.broker, f"broker {args.broker}"
    return CONFIG_RESOURCE_BROKER, "", "the broker defaults"


def _resource_json(resource_type: int, name: str) -> dict[str, Any]:
    kind = "topic" if resource_type == CONFIG_RESOURCE_TOPIC else "broker"
    return {"type": kind, "name": name}


def _configs_describe(admin: AdminClient, args: argparse.Namespace, out: Output) -> int:
    resource_type, name, label = _config_resource(args)
    [result] = admin.describe_configs([(resource_type, name)])
    _raise_for(result.error_code, result.error_message, name or label)
    entries = sorted(result.configs, key=lambda e: e.name)
    if not args.all:
        entries = [e for e in entries if e.config_source != _CONFIG_SOURCE_DEFAULT]
    if out.mode == "json":
        out.json({"resource": _resource_json(resource_type, name), "configs": [
            {"name": e.name, "value": e.value, "read_only": e.read_only,
             "sensitive": e.is_sensitive,
             "source": CONFIG_SOURCE_NAMES.get(e.config_source, str(e.config_source)),
             "synonyms": [{"name": s.name, "value": s.value,
                           "source": CONFIG_SOURCE_NAMES.get(s.source, str(s.source))}
                          for s in e.synonyms]}
            for e in entries]})
    elif entries:
        out.text(format_table(
            ("CONFIG", "VALUE", "SOURCE", "READ_ONLY"),
            [(e.name, "(sensitive)" if e.is_sensitive else e.value,
              CONFIG_SOURCE_NAMES.get(e.config_source, str(e.config_source)), e.read_only)
             for e in entries]))
    else:
        out.text(f"No configs of {label} differ from the defaults.")
    return EXIT_OK


def _config_operations(args: argparse.Namespace) -> list[tuple[str, int, str | None]]:
    operations: list[tuple[str, int, str | None]] = []
    for entries in args.add_config:
        operations += [(key, 0, value) for key, value in entries]
    for names in args.delete_config:
        operations += [(key.strip(), 1, None) for key in names.split(",") if key.strip()]
    operations += [(key, 2, value) for key, value in args.append_config]
    operations += [(key, 3, value) for key, value in args.subtract_config]
    if not operations:
        raise UsageError("nothing to alter: give --add-config, --delete-config, "
                         "--append-config or --subtract-config")
    return operations


def _configs_alter(admin: AdminClient, args: argparse.Namespace, out: Output) -> int:
    resource_type, name, label = _config_resource(args)
    operations = _config_operations(args)
    result = admin.incremental_alter_configs(resource_type, name, operations,
                                             validate_only=args.validate_only)
    _raise_for(result.error_code, result.error_message, name or label)
    if out.mode == "json":
        out.json({"resource": _resource_json(resource_type, name),
                  "altered": not args.validate_only, "validate_only": args.validate_only})
    elif args.validate_only:
        out.text(f"The config change for {label} is valid.")
    else:
        out.text(f"Completed updating config for {label}.")
    return EXIT_OK


def _log_dirs_describe(admin: AdminClient, args: argparse.Namespace, out: Output) -> int:
    response = admin.describe_log_dirs(args.topics)
    _raise_for(response.error_code, None, "log-dirs")
    documents = []
    for result in response.results:
        partitions = sorted(
            ((topic.name, p.partition_index, p.partition_size, p.offset_lag)
             for topic in result.topics for p in topic.partitions))
        documents.append({
            "log_dir": result.log_dir,
            "error": None if result.error_code == ErrorCode.NONE
            else ErrorCode.for_code(result.error_code).name,
            "total_bytes": result.total_bytes if result.total_bytes >= 0 else None,
            "usable_bytes": result.usable_bytes if result.usable_bytes >= 0 else None,
            "partitions": [{"topic": t, "partition": i, "size_bytes": size, "offset_lag": lag}
                           for t, i, size, lag in partitions],
        })
    if out.mode == "json":
        out.json({"log_dirs": documents})
        return EXIT_OK
    blocks = []
    for document in documents:
        summary = format_table(("LOG_DIR", "ERROR", "TOTAL_BYTES", "USABLE_BYTES"),
                               [(document["log_dir"], document["error"],
                                 document["total_bytes"], document["usable_bytes"])])
        rows = [(p["topic"], p["partition"], p["size_bytes"], p["offset_lag"])
                for p in document["partitions"]]
        if rows:
            summary += "\n\n" + format_table(("TOPIC", "PARTITION", "SIZE_BYTES", "OFFSET_LAG"),
                                              rows)
        blocks.append(summary)
    if blocks:
        out.text("\n\n".join(blocks))
    return EXIT_OK


_COMMANDS: dict[tuple[str, str], Callable[[AdminClient, argparse.Namespace, Output], int]] = {
    ("topics", "create"): _create,
    ("topics", "list"): _list,
    ("topics", "describe"): _describe,
    ("topics", "delete"): _delete,
    ("topics", "alter"): _alter_partitions,
    ("configs", "describe"): _configs_describe,
    ("configs", "alter"): _configs_alter,
    ("log-dirs", "describe"): _log_dirs_describe,
    **security_commands.COMMANDS,
    **group_commands.COMMANDS,
    **transaction_commands.COMMANDS,
    **cluster_commands.COMMANDS,
}


def _connect(bootstrap_servers: str, timeout_ms: int,
             security: ClientSecurity | None = None) -> AdminClient:
    return connect_admin(bootstrap_servers, timeout_ms=timeout_ms, security=security)


def main(argv: Sequence[str] | None = None, *, connect: Connect = _connect,
         stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run one admin command and return its exit code.

    Args:
        argv: arguments without the program name (``sys.argv[1:]`` when None).
        connect: opens an AdminClient from (bootstrap servers, timeout_ms); tests pass a fake.
        stdout, stderr: streams for results and errors (the process's when None).
    """
    out = Output(mode="table", stdout=stdout or sys.stdout, stderr=stderr or sys.stderr)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return int(exc.code or 0)
    out.mode = args.output
    if (args.resource, args.action) == ("cluster", "up"):
        return cluster_commands.cluster_up(args, out)  # runs brokers; connects to none
    try:
        parse_bootstrap_servers(args.bootstrap_server)
    except ValueError as exc:
        out.error(exc)
        return EXIT_USAGE
    try:
        security = security_commands.client_security(args)
    except security_commands.UsageError as exc:
        out.error(exc)
        return EXIT_USAGE
    try:
        if security is None:
            admin = connect(args.bootstrap_server, args.timeout_ms)
        else:
            admin = connect(args.bootstrap_server, args.timeout_ms, security)
    except KafkaConnectionError as exc:
        out.error(exc)
        return EXIT_CONNECTION_FAILED
    except ClientError as exc:
        out.error(exc)
        return EXIT_KAFKA_ERROR
    try:
        with admin:
            return _COMMANDS[(args.resource, args.action)](admin, args, out)
    except (UsageError, security_commands.UsageError) as exc:
        out.error(exc)
        return EXIT_USAGE
    except KafkaConnectionError as exc:
        out.error(exc)
        return EXIT_CONNECTION_FAILED
    except ClientError as exc:  # KafkaApiError, UnsupportedVersionError, KafkaProtocolError
        out.error(exc)
        return EXIT_KAFKA_ERROR


if __name__ == "__main__":
    sys.exit(main())
