"""``streambus cluster ...`` and ``streambus quorum ...``: the metadata quorum from the CLI.

This module owns the cluster sub-commands of the admin CLI (``streambus.cli.admin`` wires them
in), modelled on ``kafka-cluster`` and ``kafka-metadata-quorum``::

    streambus cluster describe            cluster id, controller, quorum leader, brokers
    streambus quorum describe             leader, epoch, high watermark; each voter's and
                                          observer's log end offset, lag and last fetch
    streambus cluster up [--nodes 3]      run a local cluster in the foreground (Ctrl-C stops)

``cluster up`` starts N broker+controller processes on loopback: Kafka on 9092.., controller
listeners on 9192.., HTTP (/health, /metrics) on 8081.., data under ``--data-dir`` (default
``./streambus-cluster``), and streams their logs prefixed with the node id.

JSON output: ``cluster describe`` -> ``{"cluster_id", "controller_id", "quorum": {...},
"brokers": [{"id", "host", "port", "rack"}]}``; ``quorum describe`` -> ``{"leader_id",
"leader_epoch", "high_watermark", "voters": [replica...], "observers": [replica...]}`` where a
replica is ``{"id", "log_end_offset", "lag", "last_fetch_timestamp",
"last_caught_up_timestamp"}`` (timestamps in ms since the epoch, -1 when unknown).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from streambus.client.errors import KafkaApiError
from streambus.protocol.error_codes import ErrorCode

__all__ = ["COMMANDS", "add_commands", "cluster_up", "NODE_COUNT_MAX"]

EXIT_OK = 0
EXIT_KAFKA_ERROR = 1
NODE_COUNT_MAX = 9
KAFKA_PORT_BASE = 9092
CONTROLLER_PORT_BASE = 9192
HTTP_PORT_BASE = 8081
STOP_TIMEOUT_S = 20.0


def _node_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 1 <= value <= NODE_COUNT_MAX:
        raise argparse.ArgumentTypeError(f"--nodes must be 1..{NODE_COUNT_MAX}")
    return value


def add_commands(commands: Any, parser_class: type) -> None:
    cluster = commands.add_parser("cluster", help="describe the cluster, or run one locally")
    actions = cluster.add_subparsers(dest="action", metavar="ACTION", required=True,
                                     parser_class=parser_class)
    actions.add_parser("describe", help="cluster id, controller, quorum leader and brokers")
    up = actions.add_parser("up", help="run a local cluster in the foreground (Ctrl-C stops)")
    up.add_argument("--nodes", type=_node_count, default=3, help="how many nodes (default 3)")
    up.add_argument("--data-dir", default="./streambus-cluster", metavar="DIR",
                    help="parent of the nodes' data directories (default ./streambus-cluster)")
    up.add_argument("--kafka-port", type=int, default=KAFKA_PORT_BASE, metavar="PORT",
                    help=f"Kafka port of node 1; node N uses PORT+N-1 (default {KAFKA_PORT_BASE})")
    up.add_argument("--controller-port", type=int, default=CONTROLLER_PORT_BASE, metavar="PORT",
                    help="controller listener port of node 1 (default "
                         f"{CONTROLLER_PORT_BASE})")
    up.add_argument("--http-port", type=int, default=HTTP_PORT_BASE, metavar="PORT",
                    help=f"HTTP port of node 1 (default {HTTP_PORT_BASE})")
    quorum = commands.add_parser("quorum", help="describe the metadata quorum")
    quorum_actions = quorum.add_subparsers(dest="action", metavar="ACTION", required=True,
                                           parser_class=parser_class)
    quorum_actions.add_parser("describe", help="leader, epoch, high watermark and the lag of "
                                               "every voter and observer")


# -- describe ----------------------------------------------------------------------------


def _quorum_document(response: Any) -> dict[str, Any]:
    if response.error_code != ErrorCode.NONE:
        raise KafkaApiError(response.error_code, response.error_message, "__cluster_metadata")
    partition = response.topics[0].partitions[0]
    if partition.error_code != ErrorCode.NONE:
        raise KafkaApiError(partition.error_code, partition.error_message, "__cluster_metadata")
    high_watermark = partition.high_watermark

    def replica(state: Any) -> dict[str, Any]:
        lag = max(0, high_watermark - state.log_end_offset) if state.log_end_offset >= 0 else None
        return {"id": state.replica_id, "log_end_offset": state.log_end_offset, "lag": lag,
                "last_fetch_timestamp": state.last_fetch_timestamp,
                "last_caught_up_timestamp": state.last_caught_up_timestamp}

    return {"leader_id": partition.leader_id, "leader_epoch": partition.leader_epoch,
            "high_watermark": high_watermark,
            "voters": [replica(v) for v in partition.current_voters],
            "observers": [replica(o) for o in partition.observers]}


def _ago(timestamp_ms: int, now_ms: int) -> str:
    return "-" if timestamp_ms < 0 else f"{max(0, now_ms - timestamp_ms)} ms ago"


def _quorum_describe(admin: Any, args: argparse.Namespace, out: Any) -> int:
    from streambus.cli.admin import format_table

    document = _quorum_document(admin.describe_quorum())
    if out.mode == "json":
        out.json(document)
        return EXIT_OK
    now_ms = time.time_ns() // 1_000_000
    summary = format_table(("LEADER", "EPOCH", "HIGH_WATERMARK"),
                           [(document["leader_id"], document["leader_epoch"],
                             document["high_watermark"])])
    rows = []
    for kind in ("voters", "observers"):
        for replica in document[kind]:
            role = ("leader" if replica["id"] == document["leader_id"]
                    else "follower" if kind == "voters" else "observer")
            rows.append((replica["id"], role, replica["log_end_offset"], replica["lag"],
                         _ago(replica["last_fetch_timestamp"], now_ms),
                         _ago(replica["last_caught_up_timestamp"], now_ms)))
    replicas = format_table(("REPLICA", "ROLE", "LOG_END_OFFSET", "LAG", "LAST_FETCH",
                             "LAST_CAUGHT_UP"), rows)
    out.text(summary + "\n\n" + replicas)
    return EXIT_OK


def _cluster_describe(admin: Any, args: argparse.Namespace, out: Any) -> int:
    from streambus.cli.admin import format_table

    cluster = admin.describe_cluster()
    if cluster.error_code != ErrorCode.NONE:
        raise KafkaApiError(cluster.error_code, cluster.error_message, "cluster")
    quorum = _quorum_document(admin.describe_quorum())
    brokers = [{"id": b.broker_id, "host": b.host, "port": b.port, "rack": b.rack}
               for b in sorted(cluster.brokers, key=lambda b: b.broker_id)]
    document = {"cluster_id": cluster.cluster_id, "controller_id": cluster.controller_id,
                "quorum": quorum, "brokers": brokers}
    if out.mode == "json":
        out.json(document)
        return EXIT_OK
    summary = format_table(
        ("CLUSTER_ID", "CONTROLLER", "QUORUM_LEADER", "EPOCH", "HIGH_WATERMARK", "VOTERS"),
        [(cluster.cluster_id, cluster.controller_id, quorum["leader_id"],
          quorum["leader_epoch"], quorum["high_watermark"],
          sorted(v["id"] for v in quorum["voters"]))])
    table = format_table(("BROKER", "HOST", "PORT", "RACK", "QUORUM"),
                         [(b["id"], b["host"], b["port"], b["rack"], _role(b["id"], quorum))
                          for b in brokers])
    out.text(summary + "\n\n" + table)
    return EXIT_OK


def _role(broker_id: int, quorum: dict[str, Any]) -> str:
    if broker_id == quorum["leader_id"]:
        return "leader"
    if any(v["id"] == broker_id for v in quorum["voters"]):
        return "voter"
    return "observer"


COMMANDS: dict[tuple[str, str], Callable[[Any, argparse.Namespace, Any], int]] = {
    ("cluster", "describe"): _cluster_describe,
    ("quorum", "describe"): _quorum_describe,
}


# -- up ----------------------------------------------------------------------------------


def _node_command(node_id: int, count: int, args: argparse.Namespace) -> list[str]:
    voters = ",".join(f"{i}@127.0.0.1:{args.controller_port + i - 1}"
                      for i in range(1, count + 1))
    return [
        sys.executable, "-m", "streambus.cli.broker",
        "--node-id", str(node_id),
        "--data-dir", str(Path(args.data_dir) / f"node-{node_id}"),
        "--listen", f"127.0.0.1:{args.kafka_port + node_id - 1}",
        "--http-listen", f"127.0.0.1:{args.http_port + node_id - 1}",
        "--controller-listen", f"127.0.0.1:{args.controller_port + node_id - 1}",
        "--voters", voters,
    ]


def _pump(node_id: int, stream: Any, out: Any, lock: threading.Lock) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\n")
        with lock:
            out.stdout.write(f"[node {node_id}] {line}\n")
            out.stdout.flush()


def cluster_up(args: argparse.Namespace, out: Any) -> int:
    """Run ``args.nodes`` local nodes until Ctrl-C / SIGTERM, then stop them gracefully."""
    count = args.nodes
    processes: list[subprocess.Popen[bytes]] = []
    lock = threading.Lock()
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        for node_id in range(1, count + 1):
            process = subprocess.Popen(_node_command(node_id, count, args),
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=env)
            processes.append(process)
            threading.Thread(target=_pump, args=(node_id, process.stdout, out, lock),
                             daemon=True).start()
        bootstrap = ",".join(f"127.0.0.1:{args.kafka_port + i}" for i in range(count))
        with lock:
            out.stdout.write(f"StreamBus cluster of {count} node(s); bootstrap servers "
                             f"{bootstrap}; Ctrl-C stops it\n")
            out.stdout.flush()
        while not stop.is_set():
            if any(p.poll() is not None for p in processes):
                break
            stop.wait(0.2)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    codes = [p.returncode for p in processes]
    return EXIT_OK if all(code == 0 for code in codes) else EXIT_KAFKA_ERROR
