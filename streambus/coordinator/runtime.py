"""The group coordinator runtime: shards on ``__consumer_offsets``, appends, timers, loading.

This module is the only asyncio code of the coordinator (Kafka's ``CoordinatorRuntime``).  It
owns, for each partition of ``__consumer_offsets``, one pure
:class:`~streambus.coordinator.group.coordinator.GroupCoordinatorShard`, and the contract of
``result.py``: run one operation, append its records as one batch to the partition's log,
replay them when asked, and only then answer the caller and the parked requests the operation
completed.  Operations run to completion on the event loop, so each partition sees one at a
time.

* Routing: a group lives on partition ``abs(java_hash(group_id)) % partitions`` (Kafka's
  ``Utils.abs(groupId.hashCode()) % groupMetadataTopicPartitionCount``).
* The topic is created on first use with ``offsets.topic.num.partitions`` partitions and
  ``cleanup.policy=compact``.
* Cluster: the topic is created through the active controller (a forwarded CreateTopics), and
  requests answer COORDINATOR_NOT_AVAILABLE until it is in the image.  A node runs shards only
  for the partitions it leads: it loads one when the image makes it the leader, unloads it
  when the image moves the leadership away, and answers NOT_COORDINATOR for groups on
  partitions it does not lead (FindCoordinator names the leader).
* Loading: at start, every existing partition is replayed in the background; a group whose
  partition is still loading gets COORDINATOR_LOAD_IN_PROGRESS.
* Parked JoinGroup/SyncGroup: the operation gets a token; the handler gets an asyncio future
  that a later completion resolves.  A future whose connection went away is dropped.
* Timers: one task sleeps until the earliest shard deadline (woken early when an operation
  schedules an earlier one) and fires due timers with the node clock.
* Stop: every parked request is answered NOT_COORDINATOR, as Kafka does on unload.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Awaitable, TypeVar

from streambus.coordinator.group.config import GroupConfig
from streambus.coordinator.group.coordinator import GroupCoordinatorShard, uuid_member_id
from streambus.coordinator.group.offsets import TopicsView
from streambus.coordinator.group.records import RecordFormatError, decode_record, encode_record
from streambus.coordinator.result import Completion, CoordinatorResult
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.records.batch import validate_batches
from streambus.protocol.records.control import ControlRecordType, parse_control_record
from streambus.protocol.records.record import build_batch, decode_records

__all__ = [
    "InternalTopicHost",
    "GroupCoordinatorRuntime",
    "NodeCoordinatorHost",
    "OFFSETS_TOPIC",
    "java_string_hash",
    "led_partition_indexes",
    "partition_for",
    "then",
]

logger = logging.getLogger(__name__)

R = TypeVar("R")
T = TypeVar("T")

OFFSETS_TOPIC = "__consumer_offsets"
#: Kafka's ``offsets.topic.segment.bytes``.
OFFSETS_TOPIC_SEGMENT_BYTES = 104857600
#: Kafka's ``offsets.topic.replication.factor`` (capped by the brokers there are).
OFFSETS_TOPIC_REPLICATION_FACTOR = 3
#: Bytes read per step while loading a partition (Kafka's ``offsets.load.buffer.size``).
LOAD_BUFFER_BYTES = 5 * 1024 * 1024
#: The partition of the stand-in shard used while the topic does not exist.
NO_PARTITION = -1
#: How often group gauges and lag are recomputed.
METRICS_INTERVAL_MS = 1000


def java_string_hash(text: str) -> int:
    """Java's ``String.hashCode`` over UTF-16 code units, as a signed 32-bit int."""
    value = 0
    data = text.encode("utf-16-be")
    for index in range(0, len(data), 2):
        value = (31 * value + ((data[index] << 8) | data[index + 1])) & 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def partition_for(group_id: str, partition_count: int) -> int:
    """Kafka's group -> ``__consumer_offsets`` partition (``Utils.abs`` maps MIN_VALUE to 0)."""
    value = java_string_hash(group_id)
    value = 0 if value == -(1 << 31) else abs(value)
    return value % partition_count


def led_partition_indexes(node: Any, topic: str) -> set[int]:
    """Partitions of ``topic`` that ``node`` leads in its image and already hosts a log for
    (the replica manager creates logs from committed images; the controller's own image may
    be ahead of them)."""
    topic_image = node.image.topics_by_name.get(topic)
    replica_manager = node.replica_manager
    if topic_image is None or replica_manager is None:
        return set()
    return {index for index, partition in topic_image.partitions.items()
            if partition.leader == node.node_id and replica_manager.get(topic, index) is not None}


def then(outcome: Any, adapt: Callable[[Any], T]) -> Any:
    """Apply ``adapt`` to a response now, or to an awaitable's result when it comes."""
    if asyncio.isfuture(outcome) or asyncio.iscoroutine(outcome):
        async def later() -> T:
            return adapt(await outcome)
        return later()
    return adapt(outcome)


class CoordinatorError(Exception):
    """The operation could not run here (loading, not coordinator, append failed)."""

    def __init__(self, error_code: ErrorCode) -> None:
        super().__init__(error_code.name)
        self.error_code = error_code


class InternalTopicHost:
    """What a coordinator runtime needs from a broker node for its internal topic
    (``__consumer_offsets`` or ``__transaction_state``), read through the node's public
    attributes.  Kept duck-typed so this package never imports ``streambus.broker``.

    Subclasses name the topic and its settings.
    """

    TOPIC: str
    SEGMENT_BYTES: int
    REPLICATION_FACTOR: int

    def __init__(self, node: Any) -> None:
        self._node = node

    def partition_count(self) -> int | None:
        topic = self._node.image.topics_by_name.get(self.TOPIC)
        return None if topic is None else len(topic.partitions)

    def clustered(self) -> bool:
        """Several brokers: shards follow partition leadership (see module docstring)."""
        return self._node.cluster is not None

    def led_partitions(self) -> set[int]:
        return led_partition_indexes(self._node, self.TOPIC)

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every metadata image change."""
        self._node.metadata.subscribe(lambda old, new: listener())

    def create_topic(self, partition_count: int) -> None:
        from streambus.metadata import controller
        from streambus.metadata.controller import ControllerError, TopicSpec

        node = self._node
        brokers = node.usable_broker_ids()
        configs = {"cleanup.policy": "compact", "segment.bytes": str(self.SEGMENT_BYTES),
                   "compression.type": "producer"}
        if node.cluster is not None:
            # Only the active controller writes metadata: a CreateTopics goes to it (Kafka's
            # AutoTopicCreationManager creates internal topics the same way).
            node.cluster.request_topic_creation(
                self.TOPIC, num_partitions=partition_count,
                # default.replication.factor: partitions have one replica until replication
                # exists (CreateTopics refuses more).
                replication_factor=-1, configs=configs)
            return
        spec = TopicSpec(
            name=self.TOPIC, num_partitions=partition_count,
            replication_factor=max(1, min(self.REPLICATION_FACTOR, len(brokers))),
            configs=configs)
        try:
            records, _, _ = controller.create_topic(
                node.image, spec, usable_broker_ids=brokers,
                default_num_partitions=partition_count, default_replication_factor=1)
        except ControllerError as exc:
            if exc.error_code == ErrorCode.TOPIC_ALREADY_EXISTS:
                return
            raise
        node.commit_metadata(records)
        logger.info("created %s with %d partitions", self.TOPIC, partition_count)

    def partition(self, index: int) -> Any | None:
        replica_manager = self._node.replica_manager
        return None if replica_manager is None else replica_manager.get(self.TOPIC, index)

    def after_append(self, partition: Any) -> None:
        self._node.replica_manager.after_append(partition)


class NodeCoordinatorHost(InternalTopicHost):
    """The group coordinator's view of the node: ``__consumer_offsets`` plus other topics'
    high watermarks (for lag)."""

    TOPIC = OFFSETS_TOPIC
    SEGMENT_BYTES = OFFSETS_TOPIC_SEGMENT_BYTES
    REPLICATION_FACTOR = OFFSETS_TOPIC_REPLICATION_FACTOR

    offsets_topic_partition_count = InternalTopicHost.partition_count
    create_offsets_topic = InternalTopicHost.create_topic

    def high_watermark(self, topic: str, partition: int) -> int | None:
        replica_manager = self._node.replica_manager
        hosted = None if replica_manager is None else replica_manager.get(topic, partition)
        return None if hosted is None else hosted.log.high_watermark

    def topics(self) -> TopicsView:
        return _ImageTopicsView(self._node)


class _ImageTopicsView(TopicsView):
    def __init__(self, node: Any) -> None:
        self._node = node

    def partition_count(self, topic: str) -> int | None:
        image = self._node.image.topics_by_name.get(topic)
        return None if image is None else len(image.partitions)

    def topic_id(self, topic: str) -> Any | None:
        image = self._node.image.topics_by_name.get(topic)
        return None if image is None else image.topic_id

    def topic_name(self, topic_id: Any) -> str | None:
        image = self._node.image.topics_by_id.get(topic_id)
        return None if image is None else image.name

    def topic_names(self) -> Sequence[str]:
        return list(self._node.image.topics_by_name)


class GroupCoordinatorRuntime:
    """Runs group coordinator shards over the partitions of ``__consumer_offsets``.

    Args:
        host: node services (:class:`NodeCoordinatorHost` in a broker, a fake in tests).
        config: group settings.
        clock_ms: wall clock in ms (the node clock).
        offsets_topic_partitions: partitions to create the topic with.
        metrics: the broker's metrics, or None.
    """

    def __init__(self, host: Any, config: GroupConfig, clock_ms: Callable[[], int], *,
                 offsets_topic_partitions: int = 50, metrics: Any = None,
                 member_id_factory: Callable[[str], str] = uuid_member_id) -> None:
        self._host = host
        self.config = config
        self._clock_ms = clock_ms
        self._offsets_topic_partitions = offsets_topic_partitions
        self._metrics = metrics
        self._member_id_factory = member_id_factory
        self._topics = host.topics()
        self.shards: dict[int, GroupCoordinatorShard] = {}
        self._loading: set[int] = set()
        self._partition_count: int | None = None
        self._waiters: dict[int, asyncio.Future] = {}
        self._tokens = itertools.count(1)
        self._wake: asyncio.Future | None = None
        self._armed_deadline_ms: int | None = None
        self._tasks: list[asyncio.Task] = []
        self._running = False
        self._metrics_next_ms = 0
        self._counted: dict[int, tuple[int, int]] = {}
        #: Shards follow partition leadership (a cluster); known once started.
        self._clustered = False

    @classmethod
    def for_node(cls, node: Any) -> "GroupCoordinatorRuntime":
        broker = node.config
        config = GroupConfig(initial_rebalance_delay_ms=broker.group_initial_rebalance_delay_ms)
        return cls(NodeCoordinatorHost(node), config, node.clock_ms,
                   offsets_topic_partitions=broker.offsets_topic_num_partitions,
                   metrics=node.metrics)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the timer task and load every existing partition in the background."""
        self._running = True
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._run_timers()))
        clustered = getattr(self._host, "clustered", None)
        self._clustered = bool(clustered()) if clustered is not None else False
        if self._clustered:
            self._host.subscribe(self.follow_leadership)
            self.follow_leadership()
            return
        count = self._host.offsets_topic_partition_count()
        if count is not None:
            self._partition_count = count
            self._loading = set(range(count))
            self._tasks.append(loop.create_task(self._load_all(count)))

    async def stop(self) -> None:
        """Answer parked requests with NOT_COORDINATOR and stop the tasks."""
        self._running = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        for shard in self.shards.values():
            for completion in shard.on_unloaded():
                self._deliver(completion)
        for future in list(self._waiters.values()):
            if not future.done():
                future.cancel()
        self._waiters.clear()

    # -- routing ----------------------------------------------------------------------------

    def partition_for(self, group_id: str) -> int | None:
        count = self._partition_count
        return None if count is None else partition_for(group_id, count)

    def shard_for(self, group_id: str, *, create_topic: bool) -> tuple[int, GroupCoordinatorShard]:
        """The shard that owns ``group_id`` and its partition.

        Args:
            create_topic: create ``__consumer_offsets`` if it does not exist (operations that
                may create a group).  Without it, a missing topic yields an empty stand-in
                shard on partition ``NO_PARTITION``.

        Raises:
            CoordinatorError: NOT_COORDINATOR when stopped, COORDINATOR_LOAD_IN_PROGRESS while
                the partition loads.
        """
        if not self._running:
            raise CoordinatorError(ErrorCode.NOT_COORDINATOR)
        if self._clustered:
            return self._led_shard_for(group_id, create_topic=create_topic)
        if self._partition_count is None:
            if not create_topic:
                # No topic, no groups: answer from an empty stand-in shard, whose answers are
                # exactly those for an unknown group (and which has nothing to persist).
                return NO_PARTITION, self._new_shard()
            self._create_topic()
        partition = partition_for(group_id, self._partition_count or 1)
        if partition in self._loading:
            raise CoordinatorError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS)
        shard = self.shards.get(partition)
        if shard is None:
            raise CoordinatorError(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        return partition, shard

    def ensure_topic(self) -> None:
        """Create ``__consumer_offsets`` if it does not exist (in a cluster: ask the active
        controller; FindCoordinator calls this, as Kafka's does)."""
        if self._host.offsets_topic_partition_count() is None:
            self._host.create_offsets_topic(self._offsets_topic_partitions)

    def _led_shard_for(self, group_id: str, *, create_topic: bool
                       ) -> tuple[int, GroupCoordinatorShard]:
        """:meth:`shard_for` in a cluster: only partitions this node leads have shards."""
        count = self._host.offsets_topic_partition_count()
        if count is None:
            if not create_topic:
                return NO_PARTITION, self._new_shard()
            self._host.create_offsets_topic(self._offsets_topic_partitions)
            raise CoordinatorError(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        self._partition_count = count
        partition = partition_for(group_id, count)
        if partition in self._loading:
            raise CoordinatorError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS)
        shard = self.shards.get(partition)
        if shard is not None:
            return partition, shard
        if partition in self._host.led_partitions():
            self.follow_leadership()  # the image got here before our listener ran
            raise CoordinatorError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS)
        raise CoordinatorError(ErrorCode.NOT_COORDINATOR)

    def follow_leadership(self) -> None:
        """Load the partitions this node now leads and unload those it no longer leads
        (Kafka's onElection / onResignation), after each metadata image change."""
        if not self._running:
            return
        count = self._host.offsets_topic_partition_count()
        if count is None:
            return
        self._partition_count = count
        led = self._host.led_partitions()
        for index in sorted(set(self.shards) - led):
            shard = self.shards.pop(index)
            logger.info("unloading %s-%d: no longer its leader", OFFSETS_TOPIC, index)
            for completion in shard.on_unloaded():
                self._deliver(completion)
        loop = asyncio.get_running_loop()
        for index in sorted(led - set(self.shards) - self._loading):
            self._loading.add(index)
            self._tasks.append(loop.create_task(self._load_led(index)))

    async def _load_led(self, index: int) -> None:
        try:
            await self.load_partition(index)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("loading %s-%d failed", OFFSETS_TOPIC, index)
            self._loading.discard(index)
            return
        if index not in self._host.led_partitions():  # resigned while loading
            shard = self.shards.pop(index, None)
            if shard is not None:
                for completion in shard.on_unloaded():
                    self._deliver(completion)

    def loaded_shards(self) -> list[GroupCoordinatorShard]:
        """Every shard, for list-style requests.

        Raises:
            CoordinatorError: COORDINATOR_LOAD_IN_PROGRESS while any partition loads.
        """
        if not self._running:
            raise CoordinatorError(ErrorCode.NOT_COORDINATOR)
        if self._loading:
            raise CoordinatorError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS)
        return [self.shards[index] for index in sorted(self.shards)]

    def _create_topic(self) -> None:
        count = self._host.offsets_topic_partition_count()
        if count is None:
            self._host.create_offsets_topic(self._offsets_topic_partitions)
            count = self._host.offsets_topic_partition_count()
            if count is None:
                raise CoordinatorError(ErrorCode.COORDINATOR_NOT_AVAILABLE)
            now_ms = self._clock_ms()
            for index in range(count):
                shard = self._new_shard()
                shard.on_loaded(now_ms)
                self.shards[index] = shard
            self._partition_count = count
            self._rearm_timers()
            return
        # Created meanwhile by someone else (e.g. an admin): load what is there.
        self._partition_count = count
        self._loading = set(range(count))
        self._tasks.append(asyncio.get_running_loop().create_task(self._load_all(count)))

    def _new_shard(self) -> GroupCoordinatorShard:
        return GroupCoordinatorShard(self.config, self._topics, self._member_id_factory)

    # -- running operations -----------------------------------------------------------------

    def execute(self, group_id: str,
                operation: Callable[[GroupCoordinatorShard, int, int], CoordinatorResult[R]],
                error_response: Callable[[ErrorCode], R], *, create_topic: bool = True
                ) -> R | Awaitable[R]:
        """Run ``operation(shard, token, now_ms)`` on the group's shard.

        Returns:
            The response, or a future of it when the operation parked the request.  Routing
            and append failures come back as ``error_response(code)``.
        """
        try:
            partition, shard = self.shard_for(group_id, create_topic=create_topic)
        except CoordinatorError as exc:
            return error_response(exc.error_code)
        token = next(self._tokens)
        result = operation(shard, token, self._clock_ms())
        if partition == NO_PARTITION:
            assert not result.records, "an unknown group produced records without a topic"
            return result.response if result.response is not None else error_response(
                ErrorCode.COORDINATOR_NOT_AVAILABLE)
        error = self._apply(partition, shard, result)
        if error is not None:
            return error_response(error)
        if result.response is not None:
            return result.response
        future = asyncio.get_running_loop().create_future()
        self._waiters[token] = future
        future.add_done_callback(lambda _, t=token: self._waiters.pop(t, None))
        return future

    def execute_transactional(self, group_id: str, producer_id: int, producer_epoch: int,
                              operation: Callable[[GroupCoordinatorShard, int], CoordinatorResult[R]],
                              error_response: Callable[[ErrorCode], R]) -> R:
        """Run ``operation(shard, now_ms)`` (TxnOffsetCommit) and append its records as the
        producer's transactional batch; they replay as pending offsets, which the
        transaction's marker commits or drops (:meth:`complete_transaction`)."""
        try:
            partition, shard = self.shard_for(group_id, create_topic=True)
        except CoordinatorError as exc:
            return error_response(exc.error_code)
        result = operation(shard, self._clock_ms())
        if result.records:
            try:
                self._append(partition, result, producer=(producer_id, producer_epoch))
            except Exception as exc:
                code = getattr(exc, "error_code", None)
                if code is None:
                    logger.exception("append to %s-%d failed", OFFSETS_TOPIC, partition)
                    return error_response(ErrorCode.NOT_COORDINATOR)
                return error_response(ErrorCode.for_code(int(code)))
            for record in result.records:
                shard.replay_transactional(producer_id, record)
        return result.response

    def complete_transaction(self, partition_index: int, producer_id: int, commit: bool) -> None:
        """A COMMIT/ABORT marker was appended to ``__consumer_offsets-<partition_index>``."""
        shard = self.shards.get(partition_index)
        if shard is not None:
            shard.complete_transaction(producer_id, commit, self._clock_ms())
            if self._metrics is not None and commit:
                self._refresh_metrics(force=False)

    def _apply(self, partition: int, shard: GroupCoordinatorShard,
               result: CoordinatorResult) -> ErrorCode | None:
        """Append, replay, answer; returns the error the caller must see if the append failed."""
        error = None
        if result.records:
            try:
                self._append(partition, result)
            except Exception:
                logger.exception("append to %s-%d failed", OFFSETS_TOPIC, partition)
                error = ErrorCode.NOT_COORDINATOR
        if error is None and result.replay_records:
            now_ms = self._clock_ms()
            for record in result.records:
                shard.replay(record, now_ms)
        for completion in result.completions:
            if error is not None:
                completion = Completion(completion.token, _error_like(completion.response, error))
            self._deliver(completion)
        self._rearm_timers()
        if self._metrics is not None:
            self._count(partition, shard)
        return error

    def _count(self, partition: int, shard: GroupCoordinatorShard) -> None:
        """Move the shard's counters into the metrics now (gauges and lag wait for the next
        refresh), so a scrape right after an operation already counts it."""
        seen = self._counted.get(partition, (0, 0))
        now = (shard.rebalances_completed_count, shard.offset_commits_count)
        self._metrics.add_group_rebalances(now[0] - seen[0])
        self._metrics.add_group_offset_commits(now[1] - seen[1])
        self._counted[partition] = now

    def _append(self, partition_index: int, result: CoordinatorResult, *,
                producer: tuple[int, int] | None = None) -> None:
        partition = self._host.partition(partition_index)
        if partition is None:
            raise RuntimeError(f"{OFFSETS_TOPIC}-{partition_index} is not hosted here")
        now_ms = self._clock_ms()
        entries = [(*encode_record(record), [], now_ms) for record in result.records]
        if producer is None:
            batch = bytearray(build_batch(entries))
        else:
            batch = bytearray(build_batch(entries, producer_id=producer[0],
                                          producer_epoch=producer[1], is_transactional=True))
        headers = validate_batches(batch)
        partition.log.append_as_leader(batch, headers, leader_epoch=partition.leader_epoch,
                                       from_coordinator=producer is not None)
        self._host.after_append(partition)

    def _deliver(self, completion: Completion) -> None:
        future = self._waiters.pop(completion.token, None)
        if future is not None and not future.done():
            future.set_result(completion.response)

    # -- timers -----------------------------------------------------------------------------

    def _next_deadline_ms(self) -> int | None:
        deadlines = [d for d in (s.next_deadline_ms() for s in self.shards.values()) if d is not None]
        if self._metrics is not None:
            deadlines.append(self._metrics_next_ms)
        return min(deadlines, default=None)

    def _rearm_timers(self) -> None:
        deadline = self._next_deadline_ms()
        wake = self._wake
        if wake is not None and not wake.done() and deadline is not None and (
                self._armed_deadline_ms is None or deadline < self._armed_deadline_ms):
            wake.set_result(None)

    async def _run_timers(self) -> None:
        # A plain future rather than wait_for(event.wait()): Python 3.11's wait_for swallows a
        # cancellation that races with the event being set, and stop() must always win.
        loop = asyncio.get_running_loop()
        while True:
            deadline = self._next_deadline_ms()
            self._armed_deadline_ms = deadline
            wake = self._wake = loop.create_future()
            handle = None
            if deadline is not None:
                delay_s = max(0, deadline - self._clock_ms()) / 1000
                handle = loop.call_later(delay_s, lambda: wake.done() or wake.set_result(None))
            try:
                await wake
            finally:
                if handle is not None:
                    handle.cancel()
            try:
                self.fire_timers(self._clock_ms())
            except Exception:  # a timer bug must not stop every later timer
                logger.exception("group coordinator timer failed")

    def fire_timers(self, now_ms: int) -> None:
        """Fire every due timer of every shard (the timer task calls this)."""
        for partition, shard in list(self.shards.items()):
            for result in shard.poll(now_ms):
                self._apply(partition, shard, result)
        if self._metrics is not None and now_ms >= self._metrics_next_ms:
            self._refresh_metrics(force=True)

    # -- loading ----------------------------------------------------------------------------

    async def _load_all(self, count: int) -> None:
        for index in range(count):
            try:
                await self.load_partition(index)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("loading %s-%d failed", OFFSETS_TOPIC, index)
                self._loading.discard(index)

    async def load_partition(self, index: int) -> None:
        """Replay one partition into a fresh shard, yielding to the loop between reads."""
        self._loading.add(index)
        shard = self._new_shard()
        partition = self._host.partition(index)
        records = 0
        if partition is not None:
            log = partition.log
            offset = log.log_start_offset
            while offset < log.high_watermark:
                data = log.read(offset, LOAD_BUFFER_BYTES).records
                if not data:
                    break
                for header in validate_batches(data, verify_crc=False):
                    if header.last_offset < offset:
                        continue
                    view = memoryview(data)[header.position:header.position + header.size_bytes]
                    if header.is_control:
                        # A transaction marker decides the producer's pending offsets.
                        try:
                            marker, _ = parse_control_record(view)
                        except ValueError:
                            marker = None
                        if marker is not None and header.producer_id >= 0:
                            shard.complete_transaction(header.producer_id,
                                                       marker == ControlRecordType.COMMIT,
                                                       self._clock_ms())
                        offset = header.last_offset + 1
                        continue
                    for stored in decode_records(view, header, verify_crc=False):
                        if stored.offset < offset or stored.key is None:
                            continue
                        try:
                            record = decode_record(stored.key, stored.value)
                        except RecordFormatError:
                            logger.warning("skipping an unreadable record at %s-%d offset %d",
                                           OFFSETS_TOPIC, index, stored.offset)
                            continue
                        if record is not None and header.is_transactional:
                            shard.replay_transactional(header.producer_id, record)
                            records += 1
                        elif record is not None:
                            shard.replay(record, self._clock_ms())
                            records += 1
                    offset = header.last_offset + 1
                await asyncio.sleep(0)
        shard.on_loaded(self._clock_ms())
        self.shards[index] = shard
        self._loading.discard(index)
        self._rearm_timers()
        if records:
            logger.info("loaded %s-%d: %d records, %d groups", OFFSETS_TOPIC, index, records,
                        len(shard.groups))

    # -- metrics ----------------------------------------------------------------------------

    def _refresh_metrics(self, *, force: bool) -> None:
        metrics = self._metrics
        now_ms = self._clock_ms()
        if not force and now_ms < self._metrics_next_ms:
            return
        self._metrics_next_ms = now_ms + METRICS_INTERVAL_MS
        states: Counter = Counter()
        lag: dict[tuple[str, str, int], int] = {}
        for partition, shard in self.shards.items():
            states.update(shard.group_states())
            self._count(partition, shard)
            for group_id, offsets in shard.committed_offsets().items():
                for (topic, partition), offset in offsets.items():
                    high_watermark = self._host.high_watermark(topic, partition)
                    if high_watermark is not None and offset.committed_offset >= 0:
                        lag[(group_id, topic, partition)] = max(high_watermark - offset.committed_offset, 0)
        metrics.set_group_counts(states)
        metrics.set_consumer_lag(lag)


def _error_like(response: Any, error: ErrorCode) -> Any:
    """The same response type carrying ``error`` (for answers whose append failed)."""
    if hasattr(response, "error_code"):
        replacement = type(response)()
        replacement.error_code = int(error)
        if hasattr(replacement, "protocol_name"):
            replacement.protocol_name = None
        return replacement
    return response
