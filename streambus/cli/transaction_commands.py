"""``streambus transactions ...``: list, describe and abort transactions (KIP-664).

This module owns the transaction sub-commands of the admin CLI (``streambus.cli.admin`` wires
them in), modelled on ``kafka-transactions``::

    streambus transactions list [--state STATE ...] [--producer-id ID ...] [--duration-ms MS]
    streambus transactions describe TRANSACTIONAL_ID [TRANSACTIONAL_ID ...]
    streambus transactions abort --topic T --partition P
        (--start-offset OFFSET | --producer-id ID --producer-epoch E --coordinator-epoch C)

``abort`` ends a *hanging* transaction on one partition (one whose coordinator will never
send a marker): with ``--start-offset`` the producer is found through DescribeProducers (the
one whose open transaction starts there), then an ABORT marker is written with its epoch.

JSON output: ``list`` -> ``{"transactions": [{"transactional_id", "producer_id", "state"}]}``;
``describe`` -> ``{"transactions": [{"transactional_id", "state", "producer_id",
"producer_epoch", "timeout_ms", "start_time_ms", "partitions": [{"topic", "partitions"}]}]}``;
``abort`` -> ``{"topic", "partition", "producer_id", "producer_epoch", "aborted": true}``.
"""

from __future__ import annotations

import argparse
from typing import Any

from streambus.client.errors import KafkaApiError
from streambus.coordinator.txn.state import STATE_BY_NAME
from streambus.protocol.error_codes import ErrorCode

__all__ = ["COMMANDS", "add_commands"]

EXIT_OK = 0
EXIT_KAFKA_ERROR = 1


def add_commands(commands: Any, parser_class: type) -> None:
    transactions = commands.add_parser("transactions",
                                       help="list, describe and abort transactions")
    actions = transactions.add_subparsers(dest="action", metavar="ACTION", required=True,
                                          parser_class=parser_class)
    listing = actions.add_parser("list", help="transactional ids and their states")
    listing.add_argument("--state", dest="states", action="append", default=[],
                         choices=sorted(STATE_BY_NAME), metavar="STATE",
                         help=f"only this state ({', '.join(sorted(STATE_BY_NAME))})")
    listing.add_argument("--producer-id", dest="producer_ids", action="append", type=int,
                         default=[], metavar="ID", help="only this producer id")
    listing.add_argument("--duration-ms", type=int, default=-1, metavar="MS",
                         help="only transactions running at least this long")
    describe = actions.add_parser("describe", help="state, producer, timeout and partitions")
    describe.add_argument("transactional_ids", metavar="TRANSACTIONAL_ID", nargs="+")
    abort = actions.add_parser("abort", help="abort a hanging transaction on one partition")
    abort.add_argument("--topic", required=True)
    abort.add_argument("--partition", type=int, required=True)
    abort.add_argument("--start-offset", type=int, metavar="OFFSET",
                       help="the first offset of the open transaction (finds the producer)")
    abort.add_argument("--producer-id", type=int, metavar="ID")
    abort.add_argument("--producer-epoch", type=int, metavar="EPOCH")
    abort.add_argument("--coordinator-epoch", type=int, metavar="EPOCH")


def _list(admin: Any, args: argparse.Namespace, out: Any) -> int:
    response = admin.list_transactions(args.states, args.producer_ids, args.duration_ms)
    if response.error_code:
        raise KafkaApiError(response.error_code, None, "transactions")
    rows = [{"transactional_id": t.transactional_id, "producer_id": t.producer_id,
             "state": t.transaction_state} for t in response.transaction_states]
    if out.mode == "json":
        out.json({"transactions": rows})
        return EXIT_OK
    from streambus.cli.admin import format_table

    out.text(format_table(("TRANSACTIONAL_ID", "PRODUCER_ID", "STATE"),
                          [(r["transactional_id"], r["producer_id"], r["state"]) for r in rows]))
    return EXIT_OK


def _describe(admin: Any, args: argparse.Namespace, out: Any) -> int:
    views = []
    for state in admin.describe_transactions(args.transactional_ids):
        if state.error_code:
            raise KafkaApiError(state.error_code, None, state.transactional_id)
        views.append({
            "transactional_id": state.transactional_id, "state": state.transaction_state,
            "producer_id": state.producer_id, "producer_epoch": state.producer_epoch,
            "timeout_ms": state.transaction_timeout_ms,
            "start_time_ms": state.transaction_start_time_ms,
            "partitions": [{"topic": t.topic, "partitions": sorted(t.partitions)}
                           for t in sorted(state.topics, key=lambda t: t.topic)],
        })
    if out.mode == "json":
        out.json({"transactions": views})
        return EXIT_OK
    from streambus.cli.admin import format_table

    out.text(format_table(
        ("TRANSACTIONAL_ID", "STATE", "PRODUCER_ID", "PRODUCER_EPOCH", "TIMEOUT_MS",
         "START_TIME_MS", "PARTITIONS"),
        [(v["transactional_id"], v["state"], v["producer_id"], v["producer_epoch"],
          v["timeout_ms"], v["start_time_ms"],
          ",".join(f"{p['topic']}-{i}" for p in v["partitions"] for i in p["partitions"]) or "-")
         for v in views]))
    return EXIT_OK


def _abort(admin: Any, args: argparse.Namespace, out: Any) -> int:
    resource = f"{args.topic}-{args.partition}"
    if args.start_offset is not None:
        [partition] = admin.describe_producers(args.topic, [args.partition])
        if partition.error_code:
            raise KafkaApiError(partition.error_code, partition.error_message, resource)
        matches = [p for p in partition.active_producers
                   if p.current_txn_start_offset == args.start_offset]
        if not matches:
            out.error(f"no open transaction starts at offset {args.start_offset} of {resource}")
            return EXIT_KAFKA_ERROR
        producer_id, producer_epoch = matches[0].producer_id, matches[0].producer_epoch
        coordinator_epoch = max(0, matches[0].coordinator_epoch)
    elif None in (args.producer_id, args.producer_epoch, args.coordinator_epoch):
        out.error("give --start-offset, or --producer-id, --producer-epoch and "
                  "--coordinator-epoch")
        return EXIT_KAFKA_ERROR
    else:
        producer_id, producer_epoch = args.producer_id, args.producer_epoch
        coordinator_epoch = args.coordinator_epoch
    code = admin.abort_transaction(args.topic, args.partition, producer_id, producer_epoch,
                                   coordinator_epoch)
    if code != ErrorCode.NONE:
        raise KafkaApiError(code, None, resource)
    if out.mode == "json":
        out.json({"topic": args.topic, "partition": args.partition, "producer_id": producer_id,
                  "producer_epoch": producer_epoch, "aborted": True})
    else:
        out.text(f"Aborted the transaction of producer {producer_id} (epoch {producer_epoch}) "
                 f"on {resource}.")
    return EXIT_OK


COMMANDS = {
    ("transactions", "list"): _list,
    ("transactions", "describe"): _describe,
    ("transactions", "abort"): _abort,
}
