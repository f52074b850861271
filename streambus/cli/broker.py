"""``streambus-broker``: command line -> validated config -> a running broker until signalled.

This module owns the broker process's command-line contract (flags and exit codes), the order
of startup and shutdown, and signal handling. It holds no broker logic: the node is
`streambus.broker.node.BrokerNode`, the operator endpoint is `streambus.http.HttpServer`.

Exit codes: 0 clean shutdown (or ``--version`` / valid ``--validate-config``), 1 startup failed
(e.g. an address already in use), 2 invalid configuration or usage.

Precedence, lowest first: built-in defaults, ``--config`` file, ``STREAMBUS_*`` environment,
``--override key=value``, then the dedicated flags (``--node-id`` etc.).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry

import streambus
from streambus.config import BrokerConfig, ConfigError, load_config, validate_config
from streambus.http import HttpServer
from streambus.logging_setup import configure_logging

__all__ = ["build_parser", "main", "overrides_from_args"]

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_STARTUP_FAILED = 1
EXIT_INVALID_CONFIG = 2

# Dedicated flag (argparse dest) -> config key.
_FLAG_KEYS = {
    "data_dir": "data_dir",
    "listen": "listen",
    "advertised_listen": "advertised_listen",
    "http_listen": "http_listen",
    "node_id": "node_id",
    "log_level": "log_level",
    "controller_listen": "controller_listen",
    "voters": "voters",
    "process_roles": "process_roles",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streambus-broker",
        description="Run a StreamBus broker (Kafka wire protocol).",
        epilog="Flags override the config file; see --override for any other setting.",
    )
    parser.add_argument("--version", action="version",
                        version=f"streambus-broker {streambus.__version__}")
    parser.add_argument("--config", metavar="FILE", help="YAML config file")
    parser.add_argument("--data-dir", metavar="DIR", help="directory holding partition logs")
    parser.add_argument("--listen", metavar="HOST:PORT", help="Kafka listener address")
    parser.add_argument("--advertised-listen", metavar="HOST:PORT",
                        help="address given to clients (default: --listen)")
    parser.add_argument("--http-listen", metavar="HOST:PORT",
                        help="address of /health, /ready and /metrics")
    # Values stay strings so bad input is reported by the config validator, naming its key.
    parser.add_argument("--node-id", metavar="N", help="this broker's node id")
    parser.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument("--controller-listen", metavar="HOST:PORT",
                        help="controller listener of the metadata quorum (default: this "
                             "node's entry in --voters)")
    parser.add_argument("--voters", metavar="ID@HOST:PORT,...",
                        help="the metadata quorum's voters, e.g. 1@h1:9093,2@h2:9093,3@h3:9093 "
                             "(default: this node alone)")
    parser.add_argument("--process-roles", metavar="ROLES",
                        help="broker, controller or broker,controller (the default)")
    parser.add_argument("--override", metavar="KEY=VALUE", action="append", default=[],
                        help="set any config key, e.g. num.partitions=3 or "
                             "security.tls_enabled=true (repeatable)")
    parser.add_argument("--validate-config", action="store_true",
                        help="check the config file and flags, print problems, and exit")
    return parser


def overrides_from_args(args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """Config overrides from parsed flags, and problems with malformed ``--override`` values."""
    overrides: dict[str, Any] = {}
    problems: list[str] = []
    for item in args.override:
        key, separator, value = item.partition("=")
        if not separator or not key.strip():
            problems.append(f"--override {item!r}: expected KEY=VALUE")
            continue
        overrides[key.strip()] = value
    for dest, key in _FLAG_KEYS.items():
        value = getattr(args, dest)
        if value is not None:
            overrides[key] = value
    return overrides, problems


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``streambus-broker``; returns (and, as a script, exits with) a code."""
    args = build_parser().parse_args(argv)
    overrides, problems = overrides_from_args(args)
    if args.validate_config:
        problems += validate_config(args.config, overrides)
        return _report_validation(problems)
    if problems:
        return _report_validation(problems)
    try:
        config = load_config(args.config, overrides)
    except ConfigError as error:
        return _report_validation(error.problems)
    configure_logging(config.log_level)
    return _run(config)


def _report_validation(problems: list[str]) -> int:
    if not problems:
        print("configuration valid")
        return EXIT_OK
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"configuration invalid: {len(problems)} problem(s)", file=sys.stderr)
    return EXIT_INVALID_CONFIG


def _run(config: BrokerConfig) -> int:
    try:
        import uvloop
    except ImportError:
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(run_broker(config))


async def run_broker(config: BrokerConfig) -> int:
    """Start the node and the HTTP endpoint, serve until SIGTERM/SIGINT, then stop gracefully.

    The HTTP endpoint starts first, so /health answers 503 "starting" while logs recover.
    A second signal during shutdown cancels it and exits with code 1.
    """
    from streambus.broker.node import BrokerNode  # Imported late: --version needs no broker.

    registry = CollectorRegistry()
    node = BrokerNode(config, registry)
    http_host, http_port = config.http_host_port
    http_server = HttpServer(http_host, http_port, registry, state_fn=node.health)
    stop_requested = asyncio.Event()
    main_task = asyncio.current_task()
    assert main_task is not None

    def on_signal(signal_number: int) -> None:
        if stop_requested.is_set():
            logger.warning("signal %s again: abandoning graceful shutdown",
                           signal.Signals(signal_number).name)
            main_task.cancel()
            return
        logger.info("signal %s: stopping", signal.Signals(signal_number).name)
        stop_requested.set()

    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, on_signal, signal_number)
    # SIGHUP re-reads TLS certificates for new connections; established ones are untouched.
    loop.add_signal_handler(signal.SIGHUP, node.reload_tls)
    try:
        return await _serve(config, node, http_server, stop_requested)
    except asyncio.CancelledError:
        return EXIT_STARTUP_FAILED
    finally:
        for signal_number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signal_number)


async def _serve(config: BrokerConfig, node: Any, http_server: HttpServer,
                 stop_requested: asyncio.Event) -> int:
    try:
        await http_server.start()
    except OSError as error:
        logger.error("cannot listen for HTTP on %s: %s", config.http_listen, error)
        return EXIT_STARTUP_FAILED
    try:
        try:
            await node.start()
        except OSError as error:
            logger.error("cannot start broker (Kafka listener %s): %s", config.listen, error)
            await _stop_quietly(node)
            return EXIT_STARTUP_FAILED
        except Exception:
            logger.exception("broker failed to start")
            await _stop_quietly(node)
            return EXIT_STARTUP_FAILED
        kafka_host, _ = config.listen_host_port
        http_host, _ = config.http_host_port
        logger.info(
            "StreamBus %s node %d serving Kafka on %s, HTTP on %s, data dir %s",
            streambus.__version__, config.node_id,
            _address(kafka_host, node.kafka_port), _address(http_host, http_server.port),
            config.data_dir.resolve(),
        )
        await stop_requested.wait()
        await node.stop()
        logger.info("StreamBus node %d stopped", config.node_id)
        return EXIT_OK
    finally:
        await http_server.stop()


async def _stop_quietly(node: Any) -> None:
    """Release whatever a failed start acquired; the start failure is the error to report."""
    try:
        await node.stop()
    except Exception:
        logger.exception("cleanup after failed start also failed")


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


if __name__ == "__main__":
    sys.exit(main())
