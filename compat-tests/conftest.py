"""Fixtures for the compat suite: real Kafka clients against a StreamBus broker subprocess.

Every broker gets its own temp data dir and free ports, so pytest-xdist workers never share
one. `broker` is module-scoped (most tests only create unique topics); `fresh_broker` and
`broker_factory` are function-scoped for tests that stop, kill or reconfigure the broker.

Client availability: the Python clients are test dependencies and always present. kcat and
kafkajs (node + node_modules/kafkajs) may be missing on a laptop: tests that need them skip,
unless STREAMBUS_REQUIRE_ALL_CLIENTS=1 (set by .ci/run), where a missing client fails instead,
so CI can never go green by skipping.

On a failing test, the log tail of every broker alive in this worker is attached to the
report as a "broker log" section.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterator

import pytest

from broker_process import LIVE_BROKERS, Broker
from compat_clients import require_client, unique_topic

@pytest.fixture
def require_kcat() -> None:
    require_client("kcat")


@pytest.fixture
def require_kafkajs() -> None:
    require_client("kafkajs")


@pytest.fixture
def topic(request: pytest.FixtureRequest) -> str:
    """A topic name unique to this test (and this xdist worker)."""
    name = re.sub(r"[^a-zA-Z0-9.-]+", "-", request.node.name)
    return unique_topic(name[:60].strip("-"))


def _started_broker(work_dir: Path, **kwargs) -> Broker:
    return Broker(work_dir, **kwargs).start()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One broker with default settings, shared by the tests of a module."""
    instance = _started_broker(tmp_path_factory.mktemp("broker"))
    yield instance
    instance.finish()


@pytest.fixture
def fresh_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker of this test's own, free to be stopped, killed and restarted."""
    instance = _started_broker(tmp_path / "broker")
    yield instance
    instance.finish()


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[Callable[..., Broker]]:
    """Start brokers with overrides/env: factory(overrides={...}, env={...})."""
    started: list[Broker] = []

    def factory(**kwargs) -> Broker:
        instance = _started_broker(tmp_path / f"broker-{len(started)}", **kwargs)
        started.append(instance)
        return instance

    yield factory
    for instance in started:
        instance.finish()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for instance in LIVE_BROKERS:
            report.sections.append((f"broker log ({instance.bootstrap})", instance.log_tail()))
