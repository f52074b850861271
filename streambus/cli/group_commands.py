"""``streambus groups ...``: list, describe, delete consumer groups and reset their offsets.

This module owns the group sub-commands of the admin CLI (``streambus.cli.admin`` wires them
in), modelled on ``kafka-consumer-groups``::

    streambus groups list [--state STATE ...] [--type classic|consumer ...]
    streambus groups describe GROUP [GROUP ...]
    streambus groups delete GROUP [GROUP ...] [--if-exists]
    streambus groups reset-offsets GROUP --topic T[:P[,P...]] [--topic ...]
        (--to-earliest | --to-latest | --to-offset N | --shift-by N) [--execute]

``describe`` shows the members with their assignments, and per partition the committed offset,
the log end offset and the lag (kafka-consumer-groups' CURRENT-OFFSET / LOG-END-OFFSET / LAG).
``reset-offsets`` is a dry run unless ``--execute`` is given, and like Kafka's tool only works
on a group without members.

JSON output: ``groups list`` -> ``{"groups": [{"group_id", "state", "type",
"protocol_type"}]}``; ``groups describe`` -> ``{"groups": [{"group_id", "state", "type",
"protocol_type", "protocol", "members": [{"member_id", "group_instance_id", "client_id",
"client_host", "assignment": [{"topic", "partitions"}]}], "offsets": [{"topic", "partition",
"committed_offset", "log_end_offset", "lag", "member_id"}]}]}``; ``groups delete`` ->
``{"deleted": [...], "missing": [...]}``; ``groups reset-offsets`` -> ``{"group_id",
"executed", "offsets": [{"topic", "partition", "offset"}]}``.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

from streambus.client.errors import KafkaApiError
from streambus.client.groups import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP
from streambus.coordinator.group.consumer_protocol import assigned_partitions
from streambus.protocol.error_codes import ErrorCode

__all__ = ["COMMANDS", "add_commands"]

EXIT_OK = 0
EXIT_KAFKA_ERROR = 1
_GROUP_STATES = ("Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead",
                 "Assigning", "Reconciling")


def _topic_spec(text: str) -> tuple[str, list[int] | None]:
    topic, _, partitions = text.partition(":")
    if not topic:
        raise argparse.ArgumentTypeError(f"{text!r} names no topic")
    if not partitions:
        return topic, None
    try:
        return topic, sorted({int(p) for p in partitions.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: partitions must be integers") from None


def add_commands(commands: Any, parser_class: type) -> None:
    groups = commands.add_parser("groups", help="list, describe and delete consumer groups; "
                                                "reset their offsets")
    actions = groups.add_subparsers(dest="action", metavar="ACTION", required=True,
                                    parser_class=parser_class)
    listing = actions.add_parser("list", help="list groups")
    listing.add_argument("--state", dest="states", action="append", default=[],
                         metavar="STATE", help=f"only groups in this state ({', '.join(_GROUP_STATES)})")
    listing.add_argument("--type", dest="types", action="append", default=[],
                         choices=("classic", "consumer"), help="only groups of this protocol")
    describe = actions.add_parser("describe", help="members, assignments, offsets and lag")
    describe.add_argument("groups", metavar="GROUP", nargs="+")
    delete = actions.add_parser("delete", help="delete groups without members, with their offsets")
    delete.add_argument("groups", metavar="GROUP", nargs="+")
    delete.add_argument("--if-exists", action="store_true",
                        help="succeed when a group does not exist")
    reset = actions.add_parser("reset-offsets", help="set an inactive group's committed offsets")
    reset.add_argument("group", metavar="GROUP")
    reset.add_argument("--topic", dest="topics", type=_topic_spec, action="append", required=True,
                       metavar="TOPIC[:P[,P...]]", help="topic, optionally some partitions (repeatable)")
    target = reset.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-earliest", action="store_true", help="the log start offset")
    target.add_argument("--to-latest", action="store_true", help="the log end offset")
    target.add_argument("--to-offset", type=int, metavar="N", help="an absolute offset")
    target.add_argument("--shift-by", type=int, metavar="N", help="move the committed offset by N")
    reset.add_argument("--execute", action="store_true",
                       help="commit the new offsets (default: show them only)")


# -- list -------------------------------------------------------------------------------------


def _list(admin: Any, args: argparse.Namespace, out: Any) -> int:
    groups = sorted(admin.list_groups(args.states, args.types), key=lambda g: g.group_id)
    rows = [{"group_id": g.group_id, "state": g.group_state or None,
             "type": g.group_type or None, "protocol_type": g.protocol_type} for g in groups]
    if out.mode == "json":
        out.json({"groups": rows})
    elif rows:
        from streambus.cli.admin import format_table

        out.text(format_table(("GROUP", "STATE", "TYPE", "PROTOCOL_TYPE"),
                              [(r["group_id"], r["state"], r["type"], r["protocol_type"] or "-")
                               for r in rows]))
    return EXIT_OK


# -- describe ---------------------------------------------------------------------------------


def _describe_one(admin: Any, group_id: str) -> dict[str, Any]:
    [classic] = admin.describe_groups([group_id])
    if classic.error_code:
        raise KafkaApiError(classic.error_code, None, group_id)
    if classic.group_state != "Dead":
        members = [{
            "member_id": m.member_id, "group_instance_id": m.group_instance_id,
            "client_id": m.client_id, "client_host": m.client_host,
            "assignment": [{"topic": t, "partitions": p} for t, p in sorted(
                (assigned_partitions(m.member_assignment) or {}).items())],
        } for m in classic.members]
        view = {"group_id": group_id, "state": classic.group_state, "type": "classic",
                "protocol_type": classic.protocol_type, "protocol": classic.protocol_data or None,
                "members": members}
    else:
        [modern] = admin.describe_consumer_groups([group_id])
        if modern.error_code == ErrorCode.GROUP_ID_NOT_FOUND:
            raise KafkaApiError(ErrorCode.GROUP_ID_NOT_FOUND,
                                f"Consumer group '{group_id}' does not exist.", group_id)
        if modern.error_code:
            raise KafkaApiError(modern.error_code, modern.error_message, group_id)
        members = [{
            "member_id": m.member_id, "group_instance_id": m.instance_id,
            "client_id": m.client_id, "client_host": m.client_host,
            "assignment": [{"topic": tp.topic_name, "partitions": sorted(tp.partitions)}
                           for tp in sorted(m.assignment.topic_partitions,
                                            key=lambda tp: tp.topic_name)],
        } for m in modern.members]
        view = {"group_id": group_id, "state": modern.group_state, "type": "consumer",
                "protocol_type": "consumer", "protocol": modern.assignor_name, "members": members}
    view["offsets"] = _offsets_with_lag(admin, group_id, members)
    return view


def _offsets_with_lag(admin: Any, group_id: str, members: list[dict[str, Any]]) -> list[dict]:
    owner = {(a["topic"], p): m["member_id"] for m in members for a in m["assignment"]
             for p in a["partitions"]}
    committed = admin.fetch_committed_offsets(group_id)
    partitions = sorted(set(committed) | set(owner))
    end_offsets: dict[tuple[str, int], int] = {}
    for topic in sorted({t for t, _ in partitions}):
        try:
            end_offsets.update(admin.list_offsets([tp for tp in partitions if tp[0] == topic],
                                                  LATEST_TIMESTAMP))
        except KafkaApiError:
            pass  # a deleted topic: no log end offset, no lag
    rows = []
    for topic, partition in partitions:
        offset = committed[(topic, partition)].offset if (topic, partition) in committed else -1
        end = end_offsets.get((topic, partition))
        rows.append({
            "topic": topic, "partition": partition,
            "committed_offset": offset if offset >= 0 else None,
            "log_end_offset": end,
            "lag": (end - offset) if end is not None and offset >= 0 else None,
            "member_id": owner.get((topic, partition)),
        })
    return rows


def _describe(admin: Any, args: argparse.Namespace, out: Any) -> int:
    views = [_describe_one(admin, group_id) for group_id in dict.fromkeys(args.groups)]
    if out.mode == "json":
        out.json({"groups": views})
        return EXIT_OK
    from streambus.cli.admin import format_table

    blocks = []
    for view in views:
        text = format_table(("GROUP", "STATE", "TYPE", "PROTOCOL", "MEMBERS"), [(
            view["group_id"], view["state"], view["type"], view["protocol"], len(view["members"]))])
        if view["members"]:
            text += "\n\n" + format_table(("MEMBER_ID", "INSTANCE_ID", "CLIENT_ID", "HOST",
                                           "ASSIGNMENT"), [(
                m["member_id"], m["group_instance_id"], m["client_id"], m["client_host"],
                " ".join(f"{a['topic']}:{','.join(map(str, a['partitions']))}"
                         for a in m["assignment"]) or "-")
                for m in view["members"]])
        if view["offsets"]:
            text += "\n\n" + format_table(("TOPIC", "PARTITION", "CURRENT_OFFSET",
                                           "LOG_END_OFFSET", "LAG", "MEMBER_ID"), [(
                o["topic"], o["partition"], o["committed_offset"], o["log_end_offset"], o["lag"],
                o["member_id"]) for o in view["offsets"]])
        blocks.append(text)
    out.text("\n\n".join(blocks))
    return EXIT_OK


# -- delete -----------------------------------------------------------------------------------


def _delete(admin: Any, args: argparse.Namespace, out: Any) -> int:
    group_ids = list(dict.fromkeys(args.groups))
    results = {r.group_id: r.error_code for r in admin.delete_groups(group_ids)}
    deleted, missing, failures = [], [], []
    for group_id in group_ids:
        error = results.get(group_id, ErrorCode.UNKNOWN_SERVER_ERROR)
        if error == ErrorCode.NONE:
            deleted.append(group_id)
        elif error == ErrorCode.GROUP_ID_NOT_FOUND and args.if_exists:
            missing.append(group_id)
        elif error == ErrorCode.GROUP_ID_NOT_FOUND:
            failures.append(KafkaApiError(error, f"Group '{group_id}' does not exist.", group_id))
        elif error == ErrorCode.NON_EMPTY_GROUP:
            failures.append(KafkaApiError(error, f"Group '{group_id}' still has members.", group_id))
        else:
            failures.append(KafkaApiError(error, None, group_id))
    if out.mode == "json":
        out.json({"deleted": deleted, "missing": missing})
    else:
        for group_id in deleted:
            out.text(f"Deleted group {group_id}.")
    for failure in failures:
        out.error(failure)
    return EXIT_KAFKA_ERROR if failures else EXIT_OK


# -- reset-offsets ----------------------------------------------------------------------------


def _reset_offsets(admin: Any, args: argparse.Namespace, out: Any) -> int:
    group_id = args.group
    [classic] = admin.describe_groups([group_id])
    state = classic.group_state
    if state == "Dead":
        [modern] = admin.describe_consumer_groups([group_id])
        state = "Dead" if modern.error_code else modern.group_state
    if state not in ("Empty", "Dead"):
        raise KafkaApiError(ErrorCode.NON_EMPTY_GROUP, (
            f"Assignments can only be reset if the group '{group_id}' is inactive, but the "
            f"current state is {state}."), group_id)
    partitions = _reset_partitions(admin, args.topics)
    earliest = admin.list_offsets(partitions, EARLIEST_TIMESTAMP)
    latest = admin.list_offsets(partitions, LATEST_TIMESTAMP)
    committed = admin.fetch_committed_offsets(group_id, partitions) if args.shift_by is not None else {}
    targets = {}
    for tp in partitions:
        if args.to_earliest:
            offset = earliest[tp]
        elif args.to_latest:
            offset = latest[tp]
        elif args.to_offset is not None:
            offset = args.to_offset
        else:
            current = committed.get(tp)
            base = current.offset if current is not None and current.offset >= 0 else earliest[tp]
            offset = base + args.shift_by
        targets[tp] = min(max(offset, earliest[tp]), latest[tp])  # as Kafka's tool clamps
    if args.execute:
        errors = admin.commit_offsets(group_id, targets)
        for (topic, partition), error in sorted(errors.items()):
            if error != ErrorCode.NONE:
                raise KafkaApiError(error, None, f"{topic}-{partition}")
    rows = [{"topic": t, "partition": p, "offset": o} for (t, p), o in sorted(targets.items())]
    if out.mode == "json":
        out.json({"group_id": group_id, "executed": bool(args.execute), "offsets": rows})
    else:
        from streambus.cli.admin import format_table

        out.text(format_table(("GROUP", "TOPIC", "PARTITION", "NEW_OFFSET"),
                              [(group_id, r["topic"], r["partition"], r["offset"]) for r in rows]))
        if not args.execute:
            out.text("(dry run: add --execute to commit these offsets)")
    return EXIT_OK


def _reset_partitions(admin: Any, specs: list[tuple[str, list[int] | None]]) -> list[tuple[str, int]]:
    wanted_all = [topic for topic, partitions in specs if partitions is None]
    counts = {}
    if wanted_all:
        response = admin.metadata(wanted_all)
        for topic in response.topics:
            if topic.error_code:
                raise KafkaApiError(topic.error_code, f"Topic '{topic.name}' does not exist.",
                                    topic.name or "")
            counts[topic.name] = sorted(p.partition_index for p in topic.partitions)
    out: list[tuple[str, int]] = []
    for topic, partitions in specs:
        for partition in (partitions if partitions is not None else counts.get(topic, [])):
            if (topic, partition) not in out:
                out.append((topic, partition))
    return out


COMMANDS: dict[tuple[str, str], Callable[[Any, argparse.Namespace, Any], int]] = {
    ("groups", "list"): _list,
    ("groups", "describe"): _describe,
    ("groups", "delete"): _delete,
    ("groups", "reset-offsets"): _reset_offsets,
}
