"""The coordinator runtime: routing, append-before-answer, parked requests, loading, stop.

Goal: check the runtime's contract on real partition logs: records reach the log before any
answer leaves, parked JoinGroups resolve when the join phase ends, a restart replays the
partitions (answering COORDINATOR_LOAD_IN_PROGRESS meanwhile), and stop answers parked
requests with NOT_COORDINATOR.  Method: a fake host over PartitionLogs in a temp dir and a
manual clock; timers are fired by calling ``fire_timers`` (no sleeps).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from grouptest_support import FakeTopics, subscription
from streambus.coordinator.group.config import GroupConfig
from streambus.coordinator.group.records import decode_record
from streambus.coordinator.runtime import (
    OFFSETS_TOPIC,
    GroupCoordinatorRuntime,
    java_string_hash,
    partition_for,
)
from streambus.log.config import LogConfig
from streambus.log.partition_log import PartitionLog
from streambus.protocol.error_codes import ErrorCode as E
from streambus.protocol.messages.join_group import JoinGroupRequest, JoinGroupResponse
from streambus.protocol.messages.offset_commit import OffsetCommitRequest, OffsetCommitResponse
from streambus.protocol.records.batch import validate_batches
from streambus.protocol.records.record import decode_records

PARTITIONS = 3


class FakeHost:
    def __init__(self, directory: Path, clock: list[int]) -> None:
        self.directory = directory
        self.clock = clock
        self.logs: dict[int, SimpleNamespace] = {}
        if (directory / f"{OFFSETS_TOPIC}-0").exists():
            self._open(len(list(directory.glob(f"{OFFSETS_TOPIC}-*"))))

    def _open(self, count: int) -> None:
        for index in range(count):
            log = PartitionLog.open(self.directory / f"{OFFSETS_TOPIC}-{index}", LogConfig(),
                                    clock_ms=lambda: self.clock[0], clean_shutdown=True)
            log.high_watermark = log.log_end_offset
            self.logs[index] = SimpleNamespace(log=log, leader_epoch=0)

    def offsets_topic_partition_count(self):
        return len(self.logs) or None

    def create_offsets_topic(self, partition_count: int) -> None:
        self._open(partition_count)

    def partition(self, index):
        return self.logs.get(index)

    def after_append(self, partition) -> None:
        partition.log.high_watermark = partition.log.log_end_offset

    def high_watermark(self, topic, partition):
        return None

    def topics(self):
        return FakeTopics({"t": 4})

    def close(self) -> None:
        for partition in self.logs.values():
            partition.log.close(clean=True)


def runtime_for(host: FakeHost, clock: list[int]) -> GroupCoordinatorRuntime:
    return GroupCoordinatorRuntime(host, GroupConfig(initial_rebalance_delay_ms=100),
                                   lambda: clock[0], offsets_topic_partitions=PARTITIONS)


def join_request(member_id: str = "") -> JoinGroupRequest:
    return JoinGroupRequest(
        group_id="g", session_timeout_ms=10_000, rebalance_timeout_ms=30_000, member_id=member_id,
        protocol_type="consumer",
        protocols=[JoinGroupRequest.JoinGroupRequestProtocol(name="range", metadata=subscription("t"))])


def join(runtime: GroupCoordinatorRuntime, member_id: str = ""):
    request = join_request(member_id)
    return runtime.execute(
        "g", lambda shard, token, now: shard.join_group(token, request, api_version=5,
                                                        client_id="c", client_host="/h", now_ms=now),
        lambda error: JoinGroupResponse(error_code=error))


def commit(runtime: GroupCoordinatorRuntime, offset: int, group: str = "g"):
    request = OffsetCommitRequest(group_id=group, topics=[OffsetCommitRequest.OffsetCommitRequestTopic(
        name="t", partitions=[OffsetCommitRequest.OffsetCommitRequestPartition(
            partition_index=0, committed_offset=offset)])])
    return runtime.execute(
        group, lambda shard, token, now: shard.offset_commit(request, api_version=8, now_ms=now),
        lambda error: OffsetCommitResponse(topics=[]))


def stored_records(host: FakeHost, index: int) -> list:
    log = host.logs[index].log
    data = log.read(0, 1 << 20).records
    return [decode_record(r.key, r.value) for h in validate_batches(data)
            for r in decode_records(memoryview(data)[h.position:h.position + h.size_bytes], h)]


def test_group_partition_is_javas_abs_hash_code_modulo_partitions() -> None:
    assert java_string_hash("") == 0
    assert java_string_hash("abc") == 96354
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("Aa") == java_string_hash("BB") == 2112
    assert java_string_hash("polygenelubricants") == -(2**31)
    assert partition_for("polygenelubricants", 50) == 0  # Utils.abs(MIN_VALUE) == 0
    assert partition_for("abc", 50) == 96354 % 50
    assert java_string_hash("\U0001F600") == 1772899  # a surrogate pair, as Java sees it


def test_join_parks_until_the_join_phase_ends_and_records_precede_answers(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = [1_000]
        host = FakeHost(tmp_path, clock)
        runtime = runtime_for(host, clock)
        await runtime.start()
        first = join(runtime)
        assert first.error_code == E.MEMBER_ID_REQUIRED
        index = partition_for("g", PARTITIONS)
        assert host.offsets_topic_partition_count() == PARTITIONS  # created on first use
        assert [type(r.key).__name__ for r in stored_records(host, index)] == ["GroupMetadataKey"]
        parked = join(runtime, first.member_id)
        assert asyncio.isfuture(parked) and not parked.done()
        clock[0] += 100
        runtime.fire_timers(clock[0])
        response = await asyncio.wait_for(parked, 1)
        assert (response.error_code, response.generation_id, response.leader) == (
            0, 1, first.member_id)
        response = commit(runtime, 42, group="simple")  # a standalone consumer's group
        assert response.topics[0].partitions[0].error_code == 0
        last = stored_records(host, partition_for("simple", PARTITIONS))[-1]
        assert (last.key.group, last.key.topic, last.value.offset) == ("simple", "t", 42)
        await runtime.stop()
        host.close()

    asyncio.run(scenario())


def test_restart_replays_offsets_and_answers_load_in_progress_meanwhile(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = [1_000]
        host = FakeHost(tmp_path, clock)
        runtime = runtime_for(host, clock)
        await runtime.start()
        commit(runtime, 7)
        await runtime.stop()
        host.close()

        host = FakeHost(tmp_path, clock)
        runtime = runtime_for(host, clock)
        await runtime.start()  # loading runs in a task that has not had a turn yet
        response = commit(runtime, 8)
        assert response.topics == []  # the error response: nothing was committed
        assert runtime.shard_for  # and the reason is the load:
        try:
            runtime.shard_for("g", create_topic=True)
            raise AssertionError("expected COORDINATOR_LOAD_IN_PROGRESS")
        except Exception as exc:
            assert getattr(exc, "error_code", None) == E.COORDINATOR_LOAD_IN_PROGRESS
        for _ in range(50):
            await asyncio.sleep(0)
        _, shard = runtime.shard_for("g", create_topic=True)
        error, topics = shard.offset_fetch("g", [("t", [0])])
        assert (error, topics[0][1][0].committed_offset) == (E.NONE, 7)
        await runtime.stop()
        host.close()

    asyncio.run(scenario())


def test_stop_answers_parked_joins_with_not_coordinator(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = [1_000]
        host = FakeHost(tmp_path, clock)
        runtime = runtime_for(host, clock)
        await runtime.start()
        member_id = join(runtime).member_id
        parked = join(runtime, member_id)
        await runtime.stop()
        assert (await parked).error_code == E.NOT_COORDINATOR
        assert join(runtime, member_id).error_code == E.NOT_COORDINATOR
        host.close()

    asyncio.run(scenario())


def test_a_parked_request_whose_connection_closed_is_dropped_quietly(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = [1_000]
        host = FakeHost(tmp_path, clock)
        runtime = runtime_for(host, clock)
        await runtime.start()
        member_id = join(runtime).member_id
        parked = join(runtime, member_id)
        parked.cancel()  # what the server does when the client disconnects
        await asyncio.sleep(0)
        clock[0] += 100
        runtime.fire_timers(clock[0])  # completes the join; nobody is waiting any more
        _, shard = runtime.shard_for("g", create_topic=False)
        assert shard.groups["g"].generation_id == 1
        await runtime.stop()
        host.close()

    asyncio.run(scenario())
