"""A StreamBus broker run as a child process, for compat tests, the bench and frame capture.

This module owns starting, health-checking, stopping and restarting one broker subprocess on
loopback. It never talks the Kafka protocol itself; clients do that.

Contract it relies on (see README): `python -m streambus.cli.broker --data-dir DIR
--listen 127.0.0.1:PORT --http-listen 127.0.0.1:HPORT [--override key=value ...]`,
`GET /health` answers 200 once serving (503 while starting), SIGTERM stops gracefully with
exit code 0.

Ports are picked by binding port 0 and releasing it. Two pytest-xdist workers may race for the
same port in the gap; `start()` therefore retries with fresh ports when the first start fails
before /health ever answered. `restart()` reuses the same ports and data dir on purpose.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["Broker", "BrokerStartError", "free_port", "http_get"]

REPO_ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
LOG_TAIL_BYTES = 20_000
# Brokers alive in this process; conftest attaches their log tails to failing test reports.
LIVE_BROKERS: list["Broker"] = []


class BrokerStartError(RuntimeError):
    """The broker exited or never answered /health 200 before the deadline."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url_host: str, port: int, path: str, timeout_s: float = 5.0) -> tuple[int, bytes, str]:
    """GET http://host:port/path; return (status, body, content-type)."""
    connection = http.client.HTTPConnection(url_host, port, timeout=timeout_s)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read(), response.getheader("Content-Type") or ""
    finally:
        connection.close()


class Broker:
    """One broker subprocess with its own data dir, Kafka port, HTTP port and log file.

    Args:
        work_dir: directory that holds `data/` and `broker-N.log` (one log per start).
        overrides: `key=value` strings passed as `--override`.
        env: extra environment variables for the broker process.
    """

    def __init__(
        self,
        work_dir: Path,
        overrides: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
        config_file: Path | None = None,
    ) -> None:
        self.work_dir = Path(work_dir)
        self.data_dir = self.work_dir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.overrides = dict(overrides or {})
        self.extra_env = dict(env or {})
        self.config_file = config_file
        self.port = 0
        self.http_port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.start_count = 0
        self.log_paths: list[Path] = []

    # -- addresses ------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def http(self, path: str, timeout_s: float = 5.0) -> tuple[int, bytes, str]:
        """GET a path on the broker's HTTP listener."""
        return http_get("127.0.0.1", self.http_port, path, timeout_s)

    # -- lifecycle ------------------------------------------------------------------------

    def command(self) -> list[str]:
        argv = [
            sys.executable, "-m", "streambus.cli.broker",
            "--data-dir", str(self.data_dir),
            "--listen", self.bootstrap,
            "--http-listen", f"127.0.0.1:{self.http_port}",
        ]
        if self.config_file is not None:
            argv += ["--config", str(self.config_file)]
        for key, value in self.overrides.items():
            argv += ["--override", f"{key}={value}"]
        return argv

    def start(self) -> "Broker":
        """Start on fresh ports (retrying a port race) and wait for /health 200."""
        attempts_max = 3
        for attempt in range(attempts_max):
            self.port, self.http_port = free_port(), free_port()
            try:
                self._spawn_and_wait()
                return self
            except BrokerStartError:
                # Only a port race deserves a retry; anything else fails on the last attempt
                # with the full log in the message.
                if attempt == attempts_max - 1 or not self._log_mentions_address_in_use():
                    raise
        raise AssertionError("unreachable")

    def restart(self) -> "Broker":
        """Start again on the same ports and data dir (after stop() or kill9())."""
        assert self.process is None or self.process.poll() is not None, "broker still running"
        self._spawn_and_wait()
        return self

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, wait, and assert a graceful exit (code 0). Returns the exit code."""
        process = self._require_process()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise AssertionError(
                    f"broker did not exit within {timeout_s}s of SIGTERM\n{self.log_tail()}"
                ) from None
        self._close_log()
        returncode = process.returncode
        assert returncode == 0, f"broker exit code after SIGTERM: {returncode}\n{self.log_tail()}"
        return returncode

    def kill9(self) -> None:
        """SIGKILL the broker and reap it: no chance to flush or close anything."""
        process = self._require_process()
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait()
        self._close_log()

    def finish(self) -> None:
        """Teardown: stop gracefully if still running (asserting exit 0), always release."""
        try:
            if self.is_running():
                self.stop()
        finally:
            self.close()

    def close(self) -> None:
        """Best-effort cleanup for fixture teardown paths that already failed."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._close_log()
        if self in LIVE_BROKERS:
            LIVE_BROKERS.remove(self)

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- logs -----------------------------------------------------------------------------

    def log_tail(self, size_bytes: int = LOG_TAIL_BYTES) -> str:
        parts = []
        for path in self.log_paths:
            if path.exists():
                data = path.read_bytes()
                if len(data) > size_bytes:
                    data = b"...[cut]...\n" + data[-size_bytes:]
                parts.append(f"==== {path} ====\n{data.decode('utf-8', 'replace')}")
        return "\n".join(parts) or "(no broker log)"

    # -- internals ------------------------------------------------------------------------

    def _require_process(self) -> subprocess.Popen[bytes]:
        assert self.process is not None, "broker was never started"
        return self.process

    def _spawn_and_wait(self) -> None:
        self.start_count += 1
        log_path = self.work_dir / f"broker-{self.start_count}.log"
        self.log_paths.append(log_path)
        self._log_file = open(log_path, "wb")
        env = os.environ.copy()
        env.update(self.extra_env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        # Importable from a source checkout even without `pip install -e .`.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            self.command(),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=self.work_dir,
        )
        if self not in LIVE_BROKERS:
            LIVE_BROKERS.append(self)
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        process = self._require_process()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        last_status = "no answer"
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self._close_log()
                raise BrokerStartError(
                    f"broker exited with code {process.returncode} before /health was 200 "
                    f"(cmd: {' '.join(self.command())})\n{self.log_tail()}"
                )
            try:
                status, _, _ = self.http("/health", timeout_s=1.0)
                if status == 200:
                    return
                last_status = f"HTTP {status}"
            except OSError as error:
                last_status = repr(error)
            time.sleep(0.05)
        process.kill()
        process.wait()
        self._close_log()
        raise BrokerStartError(
            f"broker /health not 200 within {STARTUP_TIMEOUT_S}s (last: {last_status})\n"
            f"{self.log_tail()}"
        )

    def _log_mentions_address_in_use(self) -> bool:
        return "address already in use" in self.log_tail().lower()

    def _close_log(self) -> None:
        log_file = getattr(self, "_log_file", None)
        if log_file is not None and not log_file.closed:
            log_file.close()
