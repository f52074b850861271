"""The transaction coordinator runtime: shards on ``__transaction_state``, markers, timers.

This module is the only asyncio code of the transaction coordinator (Kafka's
``TransactionStateManager`` + ``TransactionMarkerChannelManager``).  It owns, for each
partition of ``__transaction_state``, one pure
:class:`~streambus.coordinator.txn.coordinator.TransactionCoordinatorShard`, and:

* **Appends**: an operation's record is appended to the partition's log as one batch, and only
  then is the transition completed and the client answered (``TxnOutcome``'s contract).
* **Markers**: once PrepareCommit/PrepareAbort is durable, the markers for every partition of
  the transaction are handed to ``marker_writer`` (the node's WriteTxnMarkers path: local
  partitions directly, other leaders over the network, the same request either way).  Failed
  partitions are retried with backoff; a deleted partition counts as done.  When all are
  written, CompleteCommit/CompleteAbort is appended.  A restart finds transactions still in
  Prepare* while loading and writes their markers again, so a decided transaction always
  completes and is never left half-visible.
* **Timers**: every ``transaction.abort.timed.out.transaction.cleanup.interval.ms`` Ongoing
  transactions past their timeout are fenced and aborted; every
  ``transaction.remove.expired.transaction.cleanup.interval.ms`` idle ids are expired.
* **Routing and loading**: a transactional id lives on partition
  ``abs(java_hash(id)) % partitions``; the topic is created on first use (compacted);
  existing partitions load in the background and answer COORDINATOR_LOAD_IN_PROGRESS
  meanwhile.
* **Cluster**: the topic is created through the active controller (COORDINATOR_NOT_AVAILABLE
  until it is in the image); a node runs shards only for the partitions it leads, loading and
  unloading them as the image moves leadership, and answers NOT_COORDINATOR for other ids.
  Markers for partitions led elsewhere go to their leaders as WriteTxnMarkers requests.

Test hook: ``STREAMBUS_TEST_TXN_MARKER_DELAY_MS`` delays every marker write, so a test can
kill the broker between the commit decision and the markers.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from streambus.coordinator.result import CoordinatorRecord
from streambus.coordinator.runtime import OFFSETS_TOPIC, InternalTopicHost, partition_for
from streambus.coordinator.txn.coordinator import (
    MarkerJob,
    TransactionCoordinatorShard,
    TxnConfig,
    TxnDescription,
    TxnOutcome,
)
from streambus.coordinator.txn.records import RecordFormatError, decode_record, encode_record
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.records.batch import validate_batches
from streambus.protocol.records.record import build_batch, decode_records

__all__ = [
    "TRANSACTION_STATE_TOPIC",
    "MarkerWriter",
    "NodeTxnHost",
    "TransactionCoordinatorRuntime",
    "TxnCoordinatorError",
]

logger = logging.getLogger(__name__)

TRANSACTION_STATE_TOPIC = "__transaction_state"
#: Kafka's ``transaction.state.log.segment.bytes``.
TRANSACTION_STATE_SEGMENT_BYTES = 104857600
TRANSACTION_STATE_REPLICATION_FACTOR = 3
LOAD_BUFFER_BYTES = 5 * 1024 * 1024
MARKER_RETRY_BACKOFF_MS = 100
MARKER_RETRY_BACKOFF_MAX_MS = 2000
#: Marker errors after which a partition counts as done: the partition is gone, or a newer
#: epoch (producer or coordinator) already decided it, as Kafka's completion handler treats them.
_MARKER_DONE_ERRORS = frozenset({
    ErrorCode.NONE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.INVALID_PRODUCER_EPOCH,
    ErrorCode.TRANSACTION_COORDINATOR_FENCED,
})

#: (transactional id, producer id, producer epoch, partitions) -> per-partition error code,
#: as the coordinator of the id answers AddPartitionsToTxn with verify_only (KIP-890).
PartitionVerifier = Callable[[str, int, int, list[tuple[str, int]]],
                             Awaitable[dict[tuple[str, int], ErrorCode]]]
#: Remote verdicts kept for the retry that asks again (bounded; oldest dropped first).
_VERIFIED_MAX = 1024

#: (job, partitions to write) -> per-partition error code.
MarkerWriter = Callable[[MarkerJob, list[tuple[str, int]]],
                        Awaitable[dict[tuple[str, int], ErrorCode]]]


class TxnCoordinatorError(Exception):
    """The operation could not run here (not coordinator, loading, append failed)."""

    def __init__(self, error_code: ErrorCode) -> None:
        super().__init__(error_code.name)
        self.error_code = error_code


class NodeTxnHost(InternalTopicHost):
    """The transaction coordinator's view of the node: ``__transaction_state`` plus
    producer-id allocation."""

    TOPIC = TRANSACTION_STATE_TOPIC
    SEGMENT_BYTES = TRANSACTION_STATE_SEGMENT_BYTES
    REPLICATION_FACTOR = TRANSACTION_STATE_REPLICATION_FACTOR

    def next_producer_id(self) -> int:
        return self._node.next_producer_id()


class TransactionCoordinatorRuntime:
    """Runs transaction coordinator shards over the partitions of ``__transaction_state``.

    Args:
        host: node services (:class:`NodeTxnHost`, or a fake in tests).
        config: coordinator settings.
        clock_ms: wall clock in ms.
        partition_count: partitions to create the topic with
            (``transaction.state.log.num.partitions``).
        marker_writer: writes markers to partition leaders; None until the node sets it.
        metrics: the broker's metrics, or None.
    """

    def __init__(self, host: Any, config: TxnConfig, clock_ms: Callable[[], int], *,
                 partition_count: int = 50, marker_writer: MarkerWriter | None = None,
                 metrics: Any = None, marker_delay_ms: int | None = None) -> None:
        self._host = host
        self.config = config
        self._clock_ms = clock_ms
        self._partition_count_wanted = partition_count
        self.marker_writer = marker_writer
        self._metrics = metrics
        self.shards: dict[int, TransactionCoordinatorShard] = {}
        self._loading: set[int] = set()
        self._partition_count: int | None = None
        self._tasks: set[asyncio.Task] = set()
        self._running = False
        if marker_delay_ms is None:
            marker_delay_ms = int(os.environ.get("STREAMBUS_TEST_TXN_MARKER_DELAY_MS", "0") or 0)
        self._marker_delay_ms = marker_delay_ms
        #: transactional id -> its marker task (one decided transaction at a time per id).
        self._marker_tasks: dict[str, asyncio.Task] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Asks another broker's coordinator to verify partitions; None on a single node.
        self.partition_verifier: PartitionVerifier | None = None
        self._verified: dict[tuple, dict[tuple[str, int], ErrorCode] | None] = {}
        #: Shards follow partition leadership (a cluster); known once started.
        self._clustered = False

    @classmethod
    def for_node(cls, node: Any) -> "TransactionCoordinatorRuntime":
        broker = node.config
        config = TxnConfig(
            transaction_max_timeout_ms=broker.transaction_max_timeout_ms,
            transactional_id_expiration_ms=broker.transactional_id_expiration_ms,
            abort_timed_out_transaction_cleanup_interval_ms=(
                broker.transaction_abort_timed_out_transaction_cleanup_interval_ms),
            remove_expired_transactional_id_cleanup_interval_ms=(
                broker.transaction_remove_expired_transaction_cleanup_interval_ms),
        )
        return cls(NodeTxnHost(node), config, node.clock_ms,
                   partition_count=broker.transaction_state_log_num_partitions,
                   metrics=node.metrics)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the timers and load every existing partition in the background."""
        self._running = True
        self._loop = asyncio.get_running_loop()
        self._spawn(self._run_abort_timer())
        self._spawn(self._run_expiration_timer())
        clustered = getattr(self._host, "clustered", None)
        self._clustered = bool(clustered()) if clustered is not None else False
        if self._clustered:
            self._host.subscribe(self.follow_leadership)
            self.follow_leadership()
            return
        count = self._host.partition_count()
        if count is not None:
            self._partition_count = count
            self._loading = set(range(count))
            self._spawn(self._load_all(count))

    async def stop(self) -> None:
        """Stop timers, loads and marker writes (a restart finishes decided transactions)."""
        self._running = False
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        self._marker_tasks.clear()

    def _spawn(self, coroutine: Any) -> asyncio.Task:
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- routing ----------------------------------------------------------------------------

    def partition_for(self, transactional_id: str) -> int | None:
        count = self._partition_count or self._host.partition_count()
        return None if count is None else partition_for(transactional_id, count)

    def shard_for(self, transactional_id: str, *, create_topic: bool
                  ) -> tuple[int, TransactionCoordinatorShard]:
        """The shard owning ``transactional_id``.

        Raises:
            TxnCoordinatorError: NOT_COORDINATOR when stopped or when the topic is missing
                and may not be created; COORDINATOR_LOAD_IN_PROGRESS while loading.
        """
        if not self._running:
            raise TxnCoordinatorError(ErrorCode.NOT_COORDINATOR)
        if self._clustered:
            return self._led_shard_for(transactional_id, create_topic=create_topic)
        if self._partition_count is None:
            if not create_topic:
                raise TxnCoordinatorError(ErrorCode.TRANSACTIONAL_ID_NOT_FOUND)
            self._create_topic()
        assert self._partition_count is not None
        partition = partition_for(transactional_id, self._partition_count)
        if partition in self._loading:
            raise TxnCoordinatorError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS)
        shard = self.shards.get(partition)
        if shard is None:
            raise TxnCoordinatorError(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        return partition, shard

    def ensure_topic(self) -> None:
        """Create ``__transaction_state`` if it does not exist (in a cluster: ask the active
        controller; FindCoordinator calls this, as Kafka's does)."""
        if self._host.partition_count() is None:
            self._host.create_topic(self._partition_count_wanted)

    def _led_shard_for(self, transactional_id: str, *, create_topic: bool
                       ) -> tuple[int, TransactionCoordinatorShard]:
        """:meth:`shard_for` in a cluster: only partitions this node leads have shards."""
        count = self._host.partition_count()
        if count is None:
            if not create_topic:
                raise TxnCoordinatorError(ErrorCode.TRANSACTIONAL_ID_NOT_FOUND)
            self._host.create_topic(self._partition_count_wanted)
            raise TxnCoordinatorError(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        partition = partition_for(transactional_id, count)
        if partition in self._loading:
            raise TxnCoordinatorError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS)
        shard = self.shards.get(partition)
        if shard is not None:
            return partition, shard
        if partition in self._host.led_partitions():
            self.follow_leadership()  # the image got here before our listener ran
            raise TxnCoordinatorError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS)
        raise TxnCoordinatorError(ErrorCode.NOT_COORDINATOR)

    def follow_leadership(self) -> None:
        """Load the partitions this node now leads and drop those it no longer leads, after
        each metadata image change (a new leader's load restarts pending markers)."""
        if not self._running:
            return
        count = self._host.partition_count()
        if count is None:
            return
        self._partition_count = count
        led = self._host.led_partitions()
        for index in sorted(set(self.shards) - led):
            logger.info("unloading %s-%d: no longer its leader", TRANSACTION_STATE_TOPIC, index)
            del self.shards[index]
        for index in sorted(led - set(self.shards) - self._loading):
            self._loading.add(index)
            self._spawn(self._load_led(index))

    async def _load_led(self, index: int) -> None:
        try:
            await self.load_partition(index)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("loading %s-%d failed", TRANSACTION_STATE_TOPIC, index)
            self._loading.discard(index)
            return
        if index not in self._host.led_partitions():  # resigned while loading
            self.shards.pop(index, None)

    def loaded_shards(self) -> list[TransactionCoordinatorShard]:
        """Every shard (ListTransactions).

        Raises:
            TxnCoordinatorError: COORDINATOR_LOAD_IN_PROGRESS while any partition loads.
        """
        if not self._running:
            raise TxnCoordinatorError(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        if self._loading:
            raise TxnCoordinatorError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS)
        return [self.shards[index] for index in sorted(self.shards)]

    def _create_topic(self) -> None:
        count = self._host.partition_count()
        if count is None:
            try:
                self._host.create_topic(self._partition_count_wanted)
            except Exception as exc:
                logger.warning("could not create %s: %s", TRANSACTION_STATE_TOPIC, exc)
                raise TxnCoordinatorError(ErrorCode.COORDINATOR_NOT_AVAILABLE) from exc
            count = self._host.partition_count()
            if count is None:
                raise TxnCoordinatorError(ErrorCode.COORDINATOR_NOT_AVAILABLE)
            for index in range(count):
                self.shards[index] = self._new_shard(index)
            self._partition_count = count
            return
        self._partition_count = count
        self._loading = set(range(count))
        self._spawn(self._load_all(count))
        raise TxnCoordinatorError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS)

    def _new_shard(self, index: int) -> TransactionCoordinatorShard:
        partition = self._host.partition(index)
        epoch = 0 if partition is None else max(0, partition.leader_epoch)
        return TransactionCoordinatorShard(self.config, self._host.next_producer_id,
                                           coordinator_epoch=epoch)

    # -- operations -------------------------------------------------------------------------

    def init_producer_id(self, transactional_id: str, txn_timeout_ms: int,
                         expected: tuple[int, int] | None) -> tuple[ErrorCode, int, int]:
        """(error, producer id, producer epoch) for InitProducerId with a transactional id."""
        try:
            partition, shard = self.shard_for(transactional_id, create_topic=True)
        except TxnCoordinatorError as exc:
            return exc.error_code, -1, -1
        outcome = shard.init_producer_id(transactional_id, txn_timeout_ms, expected=expected,
                                         now_ms=self._clock_ms())
        error = self.run(partition, shard, outcome)
        if error != ErrorCode.NONE:
            return error, -1, -1
        return ErrorCode.NONE, outcome.producer_id, outcome.producer_epoch

    def add_partitions(self, transactional_id: str, producer_id: int, producer_epoch: int,
                       partitions: Iterable[tuple[str, int]]) -> ErrorCode:
        try:
            partition, shard = self.shard_for(transactional_id, create_topic=False)
        except TxnCoordinatorError as exc:
            return _missing_as(exc.error_code, ErrorCode.INVALID_PRODUCER_ID_MAPPING)
        outcome = shard.add_partitions(transactional_id, producer_id, producer_epoch, partitions,
                                       now_ms=self._clock_ms())
        return self.run(partition, shard, outcome)

    def verify_partitions(self, transactional_id: str, producer_id: int, producer_epoch: int,
                          partitions: Iterable[tuple[str, int]]
                          ) -> dict[tuple[str, int], ErrorCode]:
        wanted = list(partitions)
        if self._clustered and self.partition_verifier is not None and self._running:
            partition = self.partition_for(transactional_id)
            if (partition is not None and partition not in self.shards
                    and partition not in self._loading
                    and partition not in self._host.led_partitions()):
                return self._verify_remotely(transactional_id, producer_id, producer_epoch,
                                             wanted)
        try:
            _, shard = self.shard_for(transactional_id, create_topic=False)
        except TxnCoordinatorError as exc:
            code = _missing_as(exc.error_code, ErrorCode.INVALID_PRODUCER_ID_MAPPING)
            return {p: code for p in wanted}
        return shard.verify_partitions(transactional_id, producer_id, producer_epoch, wanted)

    def end_txn(self, transactional_id: str, producer_id: int, producer_epoch: int,
                commit: bool, *, transaction_version: int = 1) -> tuple[ErrorCode, int, int]:
        """(error, producer id, producer epoch); the ids matter for EndTxn v5 only."""
        try:
            partition, shard = self.shard_for(transactional_id, create_topic=False)
        except TxnCoordinatorError as exc:
            return _missing_as(exc.error_code, ErrorCode.INVALID_PRODUCER_ID_MAPPING), -1, -1
        outcome = shard.end_txn(transactional_id, producer_id, producer_epoch, commit,
                                now_ms=self._clock_ms(), transaction_version=transaction_version)
        error = self.run(partition, shard, outcome)
        metadata = shard.transactions.get(transactional_id)
        if error != ErrorCode.NONE or metadata is None:
            return error, -1, -1
        if metadata.next_producer_id >= 0:
            return error, metadata.next_producer_id, 0
        return error, metadata.producer_id, metadata.producer_epoch

    def _verify_remotely(self, transactional_id: str, producer_id: int, producer_epoch: int,
                         wanted: list[tuple[str, int]]) -> dict[tuple[str, int], ErrorCode]:
        """KIP-890 verification by the id's coordinator on another broker.  The question goes
        out in the background and the first answer is a retriable error; the client's retry
        finds the verdict (Kafka's AddPartitionsToTxnManager answers Produce with
        NOT_ENOUGH_REPLICAS while the coordinator is unreachable)."""
        key = (transactional_id, producer_id, producer_epoch, tuple(wanted))
        if key in self._verified:
            verdict = self._verified[key]
            if verdict is not None:
                del self._verified[key]
                return verdict
        else:
            self._verified[key] = None
            while len(self._verified) > _VERIFIED_MAX:
                del self._verified[next(iter(self._verified))]
            self._spawn(self._ask_verifier(key))
        # TxnOffsetCommit verifies a __consumer_offsets partition; Produce any other.
        pending = (ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
                   if any(topic == OFFSETS_TOPIC for topic, _ in wanted)
                   else ErrorCode.NOT_ENOUGH_REPLICAS)
        return {target: pending for target in wanted}

    async def _ask_verifier(self, key: tuple) -> None:
        transactional_id, producer_id, producer_epoch, wanted = key
        assert self.partition_verifier is not None
        try:
            verdict = await self.partition_verifier(transactional_id, producer_id,
                                                    producer_epoch, list(wanted))
        except Exception as exc:
            logger.info("verifying %s remotely failed: %s", transactional_id, exc)
            self._verified.pop(key, None)
            return
        if key in self._verified:
            self._verified[key] = verdict

    def describe(self, transactional_id: str) -> TxnDescription | ErrorCode:
        try:
            _, shard = self.shard_for(transactional_id, create_topic=False)
        except TxnCoordinatorError as exc:
            return exc.error_code
        return shard.describe(transactional_id)

    def list(self, *, states: Iterable[str] = (), producer_ids: Iterable[int] = (),
             duration_ms: int = -1) -> list[TxnDescription]:
        """Raises:
            TxnCoordinatorError: while loading or stopped.
        """
        if self._partition_count is None and self._running:
            return []
        listed = []
        for shard in self.loaded_shards():
            listed += shard.list(states=list(states), producer_ids=list(producer_ids),
                                 duration_ms=duration_ms, now_ms=self._clock_ms())
        return sorted(listed, key=lambda d: d.transactional_id)

    def run(self, partition: int, shard: TransactionCoordinatorShard,
            outcome: TxnOutcome) -> ErrorCode:
        """Carry out ``outcome``: append, complete the transition, start markers.

        Returns:
            The error to answer with.
        """
        transit = outcome.transit
        if transit is None:
            return outcome.error
        try:
            self._append(partition, outcome.records)
        except Exception:
            logger.exception("append to %s-%d failed", TRANSACTION_STATE_TOPIC, partition)
            shard.cancel_transition(outcome.transactional_id, epoch_fence=outcome.epoch_fence)
            return ErrorCode.NOT_COORDINATOR
        if transit.state.name == "DEAD":
            shard.remove_dead(outcome.transactional_id)
            return ErrorCode.NONE
        job = shard.complete_transition(outcome.transactional_id, transit)
        if job is not None:
            self._start_markers(partition, job)
        return outcome.error

    def _append(self, partition_index: int, records: Iterable[CoordinatorRecord]) -> None:
        partition = self._host.partition(partition_index)
        if partition is None:
            raise RuntimeError(f"{TRANSACTION_STATE_TOPIC}-{partition_index} is not hosted here")
        now_ms = self._clock_ms()
        batch = bytearray(build_batch([(*encode_record(r), [], now_ms) for r in records]))
        partition.log.append_as_leader(batch, validate_batches(batch),
                                       leader_epoch=partition.leader_epoch)
        self._host.after_append(partition)

    # -- markers ----------------------------------------------------------------------------

    def _start_markers(self, partition: int, job: MarkerJob) -> None:
        if not self._running:
            return
        task = self._spawn(self._write_markers(partition, job))
        self._marker_tasks[job.transactional_id] = task
        task.add_done_callback(
            lambda t, key=job.transactional_id: self._marker_tasks.get(key) is t
            and self._marker_tasks.pop(key, None))

    async def _write_markers(self, partition: int, job: MarkerJob) -> None:
        """Write ``job``'s markers until every partition took one, then persist Complete*."""
        if self._marker_delay_ms > 0:
            await asyncio.sleep(self._marker_delay_ms / 1000)
        pending = sorted(job.partitions)
        backoff_ms = MARKER_RETRY_BACKOFF_MS
        while pending:
            writer = self.marker_writer
            if writer is None:
                results = {p: ErrorCode.COORDINATOR_NOT_AVAILABLE for p in pending}
            else:
                try:
                    results = await writer(job, pending)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("writing markers of %s failed", job.transactional_id)
                    results = {}
            retry = []
            for target in pending:
                code = results.get(target, ErrorCode.NETWORK_EXCEPTION)
                if code in _MARKER_DONE_ERRORS:
                    if code != ErrorCode.NONE:
                        logger.warning("marker for %s on %s-%d: %s; counting it as written",
                                       job.transactional_id, target[0], target[1], code.name)
                    continue
                retry.append(target)
            pending = retry
            if pending:
                await asyncio.sleep(backoff_ms / 1000)
                backoff_ms = min(backoff_ms * 2, MARKER_RETRY_BACKOFF_MAX_MS)
        shard = self.shards.get(partition)
        if shard is None or not self._running:
            return
        outcome = shard.prepare_complete(job, now_ms=self._clock_ms())
        if outcome.transit is None:
            logger.info("not completing %s: %s", job.transactional_id, outcome.error.name)
            return
        self.run(partition, shard, outcome)
        if self._metrics is not None and hasattr(self._metrics, "record_transaction"):
            self._metrics.record_transaction("commit" if job.commit else "abort")

    # -- timers -----------------------------------------------------------------------------

    async def _run_abort_timer(self) -> None:
        interval_s = self.config.abort_timed_out_transaction_cleanup_interval_ms / 1000
        while True:
            await asyncio.sleep(interval_s)
            try:
                self.abort_timed_out_transactions()
            except Exception:
                logger.exception("aborting timed-out transactions failed")

    def abort_timed_out_transactions(self) -> None:
        now_ms = self._clock_ms()
        for partition, shard in list(self.shards.items()):
            for outcome in shard.timed_out_transactions(now_ms):
                self.run(partition, shard, outcome)

    async def _run_expiration_timer(self) -> None:
        interval_s = self.config.remove_expired_transactional_id_cleanup_interval_ms / 1000
        while True:
            await asyncio.sleep(interval_s)
            try:
                now_ms = self._clock_ms()
                for partition, shard in list(self.shards.items()):
                    for outcome in shard.expired_transactional_ids(now_ms):
                        self.run(partition, shard, outcome)
            except Exception:
                logger.exception("expiring transactional ids failed")

    # -- loading ----------------------------------------------------------------------------

    async def _load_all(self, count: int) -> None:
        for index in range(count):
            try:
                await self.load_partition(index)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("loading %s-%d failed", TRANSACTION_STATE_TOPIC, index)
                self._loading.discard(index)

    async def load_partition(self, index: int) -> None:
        """Replay one partition into a fresh shard, then restart the markers of every
        transaction it finds decided but not completed."""
        self._loading.add(index)
        shard = self._new_shard(index)
        partition = self._host.partition(index)
        if partition is not None:
            log = partition.log
            offset = log.log_start_offset
            while offset < log.high_watermark:
                data = log.read(offset, LOAD_BUFFER_BYTES).records
                if not data:
                    break
                for header in validate_batches(data, verify_crc=False):
                    if header.last_offset < offset or header.is_control:
                        offset = max(offset, header.last_offset + 1)
                        continue
                    view = memoryview(data)[header.position:header.position + header.size_bytes]
                    for stored in decode_records(view, header, verify_crc=False):
                        if stored.offset < offset or stored.key is None:
                            continue
                        try:
                            shard.replay(decode_record(stored.key, stored.value))
                        except (RecordFormatError, ValueError):
                            logger.warning("skipping an unreadable record at %s-%d offset %d",
                                           TRANSACTION_STATE_TOPIC, index, stored.offset)
                    offset = header.last_offset + 1
                await asyncio.sleep(0)
        epoch = 0 if partition is None else max(0, partition.leader_epoch)
        jobs = shard.on_loaded(epoch)
        self.shards[index] = shard
        self._loading.discard(index)
        if shard.transactions:
            logger.info("loaded %s-%d: %d transactional ids, %d to complete",
                        TRANSACTION_STATE_TOPIC, index, len(shard.transactions), len(jobs))
        for job in jobs:
            self._start_markers(index, job)


def _missing_as(code: ErrorCode, replacement: ErrorCode) -> ErrorCode:
    """No ``__transaction_state`` yet means no such transactional id."""
    return replacement if code == ErrorCode.TRANSACTIONAL_ID_NOT_FOUND else code
