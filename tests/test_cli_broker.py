"""``streambus-broker`` command line: flags, exit codes, precedence, startup and shutdown.

Method: run ``python -m streambus.cli.broker`` as a subprocess for the contract operators see
(``--version``, ``--validate-config`` output and exit codes); call `overrides_from_args` and
`load_config` for precedence; and drive `run_broker` in-process with a fake ``BrokerNode``
module (the real node is tested elsewhere) to check startup order, the startup line and the
graceful stop on SIGTERM.
"""

import asyncio
import logging
import os
import signal
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import streambus
from streambus.cli.broker import EXIT_OK, build_parser, overrides_from_args, run_broker
from streambus.config import BrokerConfig, load_config

REPO_ROOT = Path(__file__).resolve().parents[1]
# No inherited STREAMBUS_* settings, and the checkout importable whether or not it is installed.
CLEAN_ENV = {key: value for key, value in os.environ.items()
             if not key.startswith("STREAMBUS_")}
CLEAN_ENV["PYTHONPATH"] = os.pathsep.join(
    filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
)


def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streambus.cli.broker", *argv],
        capture_output=True, text=True, env=CLEAN_ENV, cwd=REPO_ROOT, timeout=60, check=False,
    )


def test_version_prints_name_and_version() -> None:
    result = run_cli("--version")
    assert (result.returncode, result.stdout) == (0, f"streambus-broker {streambus.__version__}\n")


def test_validate_config_accepts_a_valid_file(tmp_path: Path) -> None:
    config_file = tmp_path / "broker.yaml"
    config_file.write_text("node_id: 2\nnum.partitions: 3\nlog.retention.ms: -1\n")
    result = run_cli("--config", str(config_file), "--validate-config",
                     "--data-dir", str(tmp_path / "data"))
    assert (result.returncode, result.stdout, result.stderr) == (0, "configuration valid\n", "")
    assert not (tmp_path / "data").exists()  # Validation never starts anything.


def test_validate_config_reports_every_problem_with_its_key(tmp_path: Path) -> None:
    config_file = tmp_path / "broker.yaml"
    config_file.write_text("log.segment.bytes: 10\nnum.partitons: 3\n")
    result = run_cli("--config", str(config_file), "--validate-config",
                     "--listen", "localhost:99999", "--node-id", "x")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "node_id: Input should be a valid integer, unable to parse string as an integer, got 'x'",
        "listen: port 99999 is out of range 0..65535, got 'localhost:99999'",
        "log.segment.bytes: Input should be greater than or equal to 14, got 10",
        "num.partitons: unknown key (did you mean 'num.partitions'?)",
        "configuration invalid: 4 problem(s)",
    ]


def test_validate_config_checks_overrides_without_a_file() -> None:
    result = run_cli("--validate-config", "--override", "compression.type=brotli",
                     "--override", "no-equals-sign")
    assert result.returncode == 2
    problems = result.stderr.splitlines()
    assert problems[0] == "--override 'no-equals-sign': expected KEY=VALUE"
    assert problems[1].startswith("compression.type: ")


def test_invalid_config_without_validate_flag_exits_2_before_starting(tmp_path: Path) -> None:
    result = run_cli("--config", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert f"config: file not found: {tmp_path / 'missing.yaml'}" in result.stderr


def test_dedicated_flags_win_over_overrides_which_win_over_the_file(tmp_path: Path) -> None:
    config_file = tmp_path / "broker.yaml"
    config_file.write_text("node_id: 1\nnum.partitions: 6\nlog_level: DEBUG\n")
    args = build_parser().parse_args([
        "--config", str(config_file), "--override", "node.id=2", "--node-id", "3",
        "--override", "num.partitions=4", "--data-dir", str(tmp_path),
        "--listen", "[::1]:0", "--advertised-listen", "broker-1:9092",
        "--http-listen", "127.0.0.1:0",
    ])
    overrides, problems = overrides_from_args(args)
    assert problems == []
    config = load_config(args.config, overrides, environ={})
    assert (config.node_id, config.num_partitions, config.log_level) == (3, 4, "DEBUG")
    assert config.data_dir == tmp_path
    assert config.listen_host_port == ("::1", 0)
    assert config.advertised_host_port == ("broker-1", 9092)


class FakeBrokerNode:
    """Honours BrokerNode's contract; sends the process SIGTERM once serving."""

    instances: list["FakeBrokerNode"] = []

    def __init__(self, config: BrokerConfig, registry: CollectorRegistry) -> None:
        self.config = config
        self.state = "starting"
        self.kafka_port = 0
        self.events: list[str] = []
        FakeBrokerNode.instances.append(self)

    async def start(self) -> None:
        self.events.append("start")
        self.state = "serving"
        self.kafka_port = 19092
        asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGTERM)

    async def stop(self) -> None:
        self.events.append("stop")
        self.state = "stopped"

    def health(self) -> dict[str, Any]:
        return {"state": self.state, "node_id": self.config.node_id}

    def reload_tls(self) -> bool:  # SIGHUP
        return False


def test_run_broker_serves_until_sigterm_then_stops_gracefully(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake_module = types.ModuleType("streambus.broker.node")
    fake_module.BrokerNode = FakeBrokerNode  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "streambus.broker.node", fake_module)
    FakeBrokerNode.instances.clear()
    config = BrokerConfig(node_id=5, data_dir=tmp_path, listen="127.0.0.1:0",
                          http_listen="127.0.0.1:0")
    with caplog.at_level(logging.INFO, logger="streambus.cli.broker"):
        exit_code = asyncio.run(run_broker(config))
    assert exit_code == EXIT_OK
    [node] = FakeBrokerNode.instances
    assert node.events == ["start", "stop"]
    startup, *shutdown = [record.getMessage() for record in caplog.records]
    assert startup.startswith(
        f"StreamBus {streambus.__version__} node 5 serving Kafka on 127.0.0.1:19092, "
        "HTTP on 127.0.0.1:"
    )
    assert startup.endswith(f", data dir {tmp_path.resolve()}")
    assert shutdown == ["signal SIGTERM: stopping", "StreamBus node 5 stopped"]
