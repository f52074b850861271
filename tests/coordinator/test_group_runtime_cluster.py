"""The group coordinator runtime in a cluster: shards follow partition leadership.

Goal: with a clustered host the runtime asks for ``__consumer_offsets`` instead of writing it
(COORDINATOR_NOT_AVAILABLE until the topic exists), loads exactly the partitions the node
leads, answers NOT_COORDINATOR for groups on other partitions, and unloads a partition whose
leadership moves away (answering its parked requests NOT_COORDINATOR).  Method: the fake host
of ``test_group_runtime`` with a led set and an image listener the test triggers; loading
tasks get their turns through ``asyncio.sleep(0)`` (no sleeps).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_group_runtime import PARTITIONS, FakeHost, commit, join, runtime_for

from streambus.coordinator.runtime import CoordinatorError, partition_for
from streambus.protocol.error_codes import ErrorCode as E


class ClusterHost(FakeHost):
    def __init__(self, directory: Path, clock: list[int]) -> None:
        super().__init__(directory, clock)
        self.led: set[int] = set()
        self.creations: list[int] = []
        self.listeners: list = []

    def clustered(self) -> bool:
        return True

    def led_partitions(self) -> set[int]:
        return set(self.led)

    def subscribe(self, listener) -> None:
        self.listeners.append(listener)

    def create_offsets_topic(self, partition_count: int) -> None:
        self.creations.append(partition_count)  # the controller creates it, later

    def publish(self) -> None:
        for listener in self.listeners:
            listener()


def _group_on(partition: int) -> str:
    return next(f"g{i}" for i in range(1000) if partition_for(f"g{i}", PARTITIONS) == partition)


async def _turns() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


def _error_of(runtime, group: str) -> E:  # type: ignore[no-untyped-def]
    with pytest.raises(CoordinatorError) as raised:
        runtime.shard_for(group, create_topic=True)
    return raised.value.error_code


def test_missing_topic_is_requested_and_answers_coordinator_not_available(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = [1_000]
        host = ClusterHost(tmp_path, clock)
        runtime = runtime_for(host, clock)
        await runtime.start()
        assert _error_of(runtime, "g") == E.COORDINATOR_NOT_AVAILABLE
        assert (host.creations, runtime.shards) == ([PARTITIONS], {})
        await runtime.stop()

    asyncio.run(scenario())


def test_only_led_partitions_load_and_serve(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = [1_000]
        host = ClusterHost(tmp_path, clock)
        host._open(PARTITIONS)
        host.led = {1}
        runtime = runtime_for(host, clock)
        await runtime.start()
        assert _error_of(runtime, _group_on(1)) == E.COORDINATOR_LOAD_IN_PROGRESS
        await _turns()
        assert set(runtime.shards) == {1}
        assert commit(runtime, 5, group=_group_on(1)).topics[0].partitions[0].error_code == 0
        assert _error_of(runtime, _group_on(0)) == E.NOT_COORDINATOR
        await runtime.stop()
        host.close()

    asyncio.run(scenario())


def test_leadership_moving_away_unloads_and_answers_parked_not_coordinator(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = [1_000]
        host = ClusterHost(tmp_path, clock)
        host._open(PARTITIONS)
        host.led = {partition_for("g", PARTITIONS)}
        runtime = runtime_for(host, clock)
        await runtime.start()
        await _turns()
        member_id = join(runtime).member_id
        parked = join(runtime, member_id)
        host.led = set()
        host.publish()
        assert (await parked).error_code == E.NOT_COORDINATOR
        assert (runtime.shards, _error_of(runtime, "g")) == ({}, E.NOT_COORDINATOR)
        host.led = {partition_for("g", PARTITIONS)}
        host.publish()
        await _turns()
        assert set(runtime.shards) == host.led  # led again: reloaded from the log
        await runtime.stop()
        host.close()

    asyncio.run(scenario())
