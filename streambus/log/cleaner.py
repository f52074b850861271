"""The log cleaner: compaction of ``cleanup.policy=compact`` (and ``compact,delete``) logs.

This module owns choosing which log to compact, the cleaning pass itself and the cleaner's
checkpoint file.  The bytes of a rewritten batch are ``compacted_batch.py``'s business, the
crash-safe swap of segment files ``segment_swap.py``'s, and the memory bound
``offset_map.py``'s.  It never touches the active segment and never moves offsets: every kept
record keeps its offset, so consumers see gaps, never renumbering.

Vocabulary, as in Kafka's ``LogCleaner`` and ``LogCleanerManager``::

    log start          first dirty offset           first uncleanable offset   log end
       |------ clean ------|---------- dirty ----------|------ uncleanable ------|
                            (cleaned by the next pass)   (active segment, open
                                                          transactions, min.compaction.lag.ms,
                                                          above the high watermark)

* The *first dirty offset* is where the previous pass stopped; it is kept per partition in
  ``<data_dir>/cleaner-offset-checkpoint`` (Kafka's checkpoint format and name).  The
  *dirty ratio* is dirty bytes / (clean + dirty bytes); a log is cleaned when it reaches
  ``min.cleanable.dirty.ratio``, when its oldest dirty record is older than
  ``max.compaction.lag.ms``, or when tombstones it kept have passed their delete horizon.
* A pass (1) reads the dirty section into an :class:`OffsetMap` of key -> latest offset,
  stopping early when the map is full; (2) rewrites every segment from the log start up to
  where the map stopped, in groups that fit ``segment.bytes``, keeping a record only if no
  later record has its key; (3) swaps each group's compacted copy in (``segment_swap.py``).

What a pass keeps:

* the latest record of each key; records without a key are dropped (Kafka refuses them on
  compacted topics and its cleaner drops them too);
* tombstones (null values) until ``delete.retention.ms`` after the first pass that kept them:
  that pass stamps the batch's delete horizon (KIP-534), a later pass past it drops them;
* transaction markers: COMMIT markers always; ABORT markers until their delete horizon, by
  which time the aborted records before them are gone.  Records of aborted transactions are
  dropped, and they never enter the offset map, so they cannot hide committed values;
* a batch emptied of records when it is its producer's last (so idempotent producers'
  sequence state survives) or the last batch of a rewritten group (so the group's offset range,
  and therefore the swap's recovery, is exact).

I/O and latency: a pass is a generator that yields after every batch; :meth:`LogCleaner.run`
drives it on the event loop, giving control back at least every few milliseconds and sleeping
as needed to stay under ``log.cleaner.io.max.bytes.per.second`` (bytes read plus written).
Source segments are read through descriptors of the cleaner's own, so retention deleting a
segment mid-pass cannot make it read another file; the swap then sees the segment list changed
and abandons that group.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import os
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Generator, Iterable, Iterator, Mapping

from streambus.log.compacted_batch import (
    RecordsSection,
    RecordSpan,
    batch_crc_is_valid,
    build_compacted_batch,
    delete_horizon_ms,
    iter_record_spans,
    read_records_section,
    records_data,
)
from streambus.log.config import MAX_INT64
from streambus.log.errors import LogError
from streambus.log.manager import read_offset_checkpoint, write_offset_checkpoint
from streambus.log.offset_index import MAX_RELATIVE_OFFSET
from streambus.log.offset_map import NO_OFFSET, OffsetMap
from streambus.log.partition_log import PartitionLog
from streambus.log.segment import LogSegment
from streambus.log.segment_swap import cleaned_file_path, install_cleaned_segment
from streambus.protocol.records.batch import (
    BATCH_HEADER_SIZE,
    BatchHeader,
    CorruptRecordError,
    read_batch_header,
)

__all__ = [
    "CLEANER_OFFSET_CHECKPOINT_FILE_NAME",
    "CompactionConfig",
    "CleanerConfig",
    "CleanerStats",
    "CleaningPlan",
    "LogCleaner",
]

logger = logging.getLogger(__name__)

CLEANER_OFFSET_CHECKPOINT_FILE_NAME = "cleaner-offset-checkpoint"
#: Longest stretch of cleaning work between two returns to the event loop.
_SLICE_S = 0.002
#: Event-loop iterations given to other tasks after each slice (see ``_give_way``).
_LOOP_TURNS = 3
#: Records handled between two yields of a pass, so a batch of 10,000 records is not one step.
_RECORDS_PER_STEP = 256
#: Smallest read window, whatever ``log.cleaner.io.buffer.size`` says.
_WINDOW_BYTES_MIN = 64 * 1024
_CONTROL_KEY = struct.Struct(">hh")
_ABORT, _COMMIT = 0, 1

TopicPartition = tuple[str, int]
#: What a pass yields: bytes read or written since the last yield, or a blocking callable
#: (an fsync) for the driver to run off the event loop.
Step = int | Callable[[], object]


@dataclass(frozen=True, slots=True)
class CompactionConfig:
    """The topic configs compaction reads, with Kafka's defaults."""

    compact: bool = False
    """``compact`` is in ``cleanup.policy``."""
    delete_retention_ms: int = 86_400_000
    min_compaction_lag_ms: int = 0
    max_compaction_lag_ms: int = MAX_INT64
    min_cleanable_dirty_ratio: float = 0.5

    @classmethod
    def from_topic_configs(cls, configs: Mapping[str, str]) -> CompactionConfig:
        """From effective topic configs (``cleanup.policy``, ``delete.retention.ms``, ...)."""
        policy = {p.strip() for p in configs.get("cleanup.policy", "delete").split(",")}
        return cls(
            compact="compact" in policy,
            delete_retention_ms=int(configs.get("delete.retention.ms", "86400000")),
            min_compaction_lag_ms=int(configs.get("min.compaction.lag.ms", "0")),
            max_compaction_lag_ms=int(configs.get("max.compaction.lag.ms", str(MAX_INT64))),
            min_cleanable_dirty_ratio=float(configs.get("min.cleanable.dirty.ratio", "0.5")),
        )


@dataclass(frozen=True, slots=True)
class CleanerConfig:
    """The broker's ``log.cleaner.*`` settings (dynamic: re-read before every pass)."""

    enabled: bool = True
    dedupe_buffer_size: int = 128 * 1024 * 1024
    io_buffer_size: int = 512 * 1024
    io_buffer_load_factor: float = 0.9
    io_max_bytes_per_second: float = math.inf
    backoff_ms: int = 15_000

    @classmethod
    def from_broker_properties(cls, properties: Mapping[str, str]) -> CleanerConfig:
        rate = float(properties.get("log.cleaner.io.max.bytes.per.second", "inf"))
        return cls(
            enabled=properties.get("log.cleaner.enable", "true") == "true"
            and int(properties.get("log.cleaner.threads", "1")) > 0,
            dedupe_buffer_size=int(properties.get("log.cleaner.dedupe.buffer.size",
                                                  "134217728")),
            io_buffer_size=int(properties.get("log.cleaner.io.buffer.size", "524288")),
            io_buffer_load_factor=float(properties.get("log.cleaner.io.buffer.load.factor",
                                                       "0.9")),
            # Double.MAX_VALUE (Kafka's default) means "no limit".
            io_max_bytes_per_second=math.inf if rate >= 1e300 else rate,
            backoff_ms=int(properties.get("log.cleaner.backoff.ms", "15000")),
        )


@dataclass(slots=True)
class CleaningPlan:
    """A log chosen for cleaning and the offsets that bound the pass."""

    log: PartitionLog
    compaction: CompactionConfig
    first_dirty_offset: int
    first_uncleanable_offset: int
    dirty_ratio: float
    reason: str
    """``dirty-ratio``, ``max-compaction-lag`` or ``delete-horizon``."""
    start_position: int = 0
    """File position to read the first dirty segment from (from its offset index)."""


@dataclass(slots=True)
class CleanerStats:
    """What one pass did."""

    topic: str
    partition: int
    first_dirty_offset: int
    end_offset: int = 0
    """First offset not covered by the pass: the next pass's first dirty offset."""
    map_keys_count: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    records_read: int = 0
    records_kept: int = 0
    tombstones_removed: int = 0
    aborted_records_removed: int = 0
    groups_swapped: int = 0
    groups_abandoned: int = 0
    elapsed_s: float = 0.0

    @property
    def read_mb_per_s(self) -> float:
        return self.bytes_read / 1e6 / self.elapsed_s if self.elapsed_s > 0 else 0.0


class _MapTooSmallError(LogError):
    """Not even one batch of the dirty section fits the offset map."""


class _SegmentReader:
    """A segment's ``.log`` through a descriptor of the cleaner's own."""

    def __init__(self, segment: LogSegment) -> None:
        self.fd = os.open(segment.log_path, os.O_RDONLY)
        self.size_bytes = segment.size_bytes

    def batches(self, position: int, window_bytes: int) -> Iterator[tuple[BatchHeader, bytes]]:
        """(header, batch bytes) of each whole batch from ``position`` to the end."""
        end = self.size_bytes
        # Bounded by the file size: every pass consumes at least one batch or stops.
        while end - position >= BATCH_HEADER_SIZE:
            window = os.pread(self.fd, min(window_bytes, end - position), position)
            consumed = 0
            while len(window) - consumed >= BATCH_HEADER_SIZE:
                header = read_batch_header(window, consumed)
                size_bytes = header.size_bytes
                if size_bytes < BATCH_HEADER_SIZE:
                    raise CorruptRecordError(f"batch length {header.batch_length} is invalid")
                if consumed + size_bytes > len(window):
                    if consumed == 0:  # a batch larger than the window: read it alone
                        window = os.pread(self.fd, size_bytes, position)
                        if len(window) < size_bytes:
                            return  # the file shrank under us; the swap will notice
                        continue
                    break
                header.position = position + consumed
                yield header, window[consumed: consumed + size_bytes]
                consumed += size_bytes
            if consumed == 0:
                return
            position += consumed

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _control_type(batch: bytes, header: BatchHeader) -> int:
    spans = read_records_section(batch, header).spans
    key = spans[0].key if spans else None
    if key is None or len(key) < _CONTROL_KEY.size:
        return -1
    return _CONTROL_KEY.unpack_from(key)[1]


def _is_aborted(aborted: dict[int, list[tuple[int, int]]], header: BatchHeader) -> bool:
    return any(first <= header.base_offset <= last
               for first, last in aborted.get(header.producer_id, ()))


def _group_segments(segments: list[LogSegment], segment_bytes: int) -> list[list[LogSegment]]:
    """Consecutive runs whose combined size fits one segment and whose offsets fit its index
    (Kafka's ``groupSegmentsBySize``)."""
    groups: list[list[LogSegment]] = []
    for segment in segments:
        group = groups[-1] if groups else None
        if (
            group is not None
            and sum(s.size_bytes for s in group) + segment.size_bytes <= segment_bytes
            and segment.next_offset - 1 - group[0].base_offset <= MAX_RELATIVE_OFFSET
        ):
            group.append(segment)
        else:
            groups.append([segment])
    return groups


@dataclass(slots=True)
class _PassState:
    plan: CleaningPlan
    now_ms: int
    window_bytes: int
    offset_map: OffsetMap
    stats: CleanerStats
    readers: dict[int, _SegmentReader] = field(default_factory=dict)
    aborted: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    map_end: int = 0
    earliest_horizon_ms: int | None = None

    def reader(self, segment: LogSegment) -> _SegmentReader:
        reader = self.readers.get(id(segment))
        if reader is None:
            reader = self.readers[id(segment)] = _SegmentReader(segment)
        return reader

    def note_horizon(self, horizon_ms: int | None) -> None:
        if horizon_ms is not None and (
            self.earliest_horizon_ms is None or horizon_ms < self.earliest_horizon_ms
        ):
            self.earliest_horizon_ms = horizon_ms


class LogCleaner:
    """Compacts logs, one pass at a time.

    Args:
        checkpoint_dir: where ``cleaner-offset-checkpoint`` lives (the data dir), or None to
            keep first dirty offsets in memory only (tests).
        clock_ms: wall clock in ms, for compaction lags and delete horizons.
        config: the broker's cleaner settings.
    """

    def __init__(self, checkpoint_dir: Path | None, clock_ms: Callable[[], int],
                 config: CleanerConfig | None = None) -> None:
        self.config = config or CleanerConfig()
        self._clock_ms = clock_ms
        self._checkpoint_path = (
            None if checkpoint_dir is None else checkpoint_dir / CLEANER_OFFSET_CHECKPOINT_FILE_NAME
        )
        self._first_dirty: dict[TopicPartition, int] = (
            {} if self._checkpoint_path is None else read_offset_checkpoint(self._checkpoint_path)
        )
        # Earliest delete horizon among the batches of the clean section (None: none kept);
        # a log missing here has not been looked at since startup.
        self._pending_horizon_ms: dict[TopicPartition, int | None] = {}
        self._uncleanable: dict[TopicPartition, str] = {}
        self.last_stats: CleanerStats | None = None

    # ------------------------------------------------------------------------------ state

    def first_dirty_offset(self, log: PartitionLog) -> int:
        """Where the next pass starts reading the dirty section."""
        offset = self._first_dirty.get((log.topic, log.partition), log.log_start_offset)
        if offset < log.log_start_offset or offset > log.log_end_offset:
            # Retention moved the log start past it, or the log was truncated or recreated.
            offset = log.log_start_offset
        return offset

    def forget(self, topic: str, partition: int) -> None:
        """Drop a deleted partition's state."""
        key = (topic, partition)
        self._first_dirty.pop(key, None)
        self._pending_horizon_ms.pop(key, None)
        self._uncleanable.pop(key, None)

    def checkpoint(self, live: Iterable[TopicPartition] | None = None) -> None:
        """Write first dirty offsets (of ``live`` partitions only, when given)."""
        if live is not None:
            keep = set(live)
            for key in [k for k in self._first_dirty if k not in keep]:
                self.forget(*key)
        if self._checkpoint_path is not None:
            write_offset_checkpoint(self._checkpoint_path, dict(self._first_dirty))

    # ------------------------------------------------------------------------------ choice

    def plan(self, log: PartitionLog, compaction: CompactionConfig) -> CleaningPlan | None:
        """A pass for ``log`` if it needs one now, else None."""
        key = (log.topic, log.partition)
        if not compaction.compact or log.is_closed or key in self._uncleanable:
            return None
        now_ms = self._clock_ms()
        segments = log.segments
        first_dirty = self.first_dirty_offset(log)
        first_uncleanable = self._first_uncleanable_offset(log, compaction, first_dirty, now_ms)
        clean_bytes = dirty_bytes = 0
        first_dirty_segment: LogSegment | None = None
        for index, segment in enumerate(segments[:-1]):
            next_base = segments[index + 1].base_offset
            if next_base <= first_dirty:
                clean_bytes += segment.size_bytes
            elif segment.base_offset < first_uncleanable:
                dirty_bytes += segment.size_bytes
                first_dirty_segment = first_dirty_segment or segment
        total = clean_bytes + dirty_bytes
        ratio = dirty_bytes / total if total else 0.0
        reason = ""
        if first_dirty < first_uncleanable and dirty_bytes:
            if ratio >= compaction.min_cleanable_dirty_ratio:
                reason = "dirty-ratio"
            elif self._compaction_lag_due(first_dirty_segment, compaction, now_ms):
                reason = "max-compaction-lag"
        if not reason:
            horizon_ms = self._pending_horizon(log, first_dirty)
            if horizon_ms is not None and horizon_ms <= now_ms:
                reason = "delete-horizon"
        if not reason:
            return None
        start_position = 0
        if first_dirty_segment is not None:
            _, start_position = first_dirty_segment.offset_index.lookup(first_dirty)
        return CleaningPlan(log, compaction, first_dirty, max(first_uncleanable, first_dirty),
                            ratio, reason, start_position)

    @staticmethod
    def _compaction_lag_due(segment: LogSegment | None, compaction: CompactionConfig,
                            now_ms: int) -> bool:
        if segment is None or compaction.max_compaction_lag_ms >= MAX_INT64:
            return False
        first_timestamp_ms = segment.rolling_based_timestamp()
        return (first_timestamp_ms is not None and first_timestamp_ms >= 0
                and now_ms - first_timestamp_ms > compaction.max_compaction_lag_ms)

    @staticmethod
    def _first_uncleanable_offset(log: PartitionLog, compaction: CompactionConfig,
                                  first_dirty: int, now_ms: int) -> int:
        """The active segment, open transactions, the high watermark and
        ``min.compaction.lag.ms`` each bound what may be cleaned."""
        segments = log.segments
        bounds = [segments[-1].base_offset, log.high_watermark]
        first_unstable = log.first_unstable_offset()
        if first_unstable is not None:
            bounds.append(first_unstable)
        if compaction.min_compaction_lag_ms > 0:
            for index, segment in enumerate(segments[:-1]):
                if segments[index + 1].base_offset <= first_dirty:
                    continue
                if segment.largest_timestamp > now_ms - compaction.min_compaction_lag_ms:
                    bounds.append(segment.base_offset)
                    break
        return min(bounds)

    def _pending_horizon(self, log: PartitionLog, first_dirty: int) -> int | None:
        key = (log.topic, log.partition)
        if key not in self._pending_horizon_ms:
            # First look since startup: find horizons in the clean section's batch headers.
            earliest: int | None = None
            segments = log.segments
            for index, segment in enumerate(segments[:-1]):
                if segment.base_offset >= first_dirty:
                    break
                for header in segment.batch_headers():
                    if header.base_offset >= first_dirty:
                        break
                    horizon_ms = delete_horizon_ms(header)
                    if horizon_ms is not None and (earliest is None or horizon_ms < earliest):
                        earliest = horizon_ms
            self._pending_horizon_ms[key] = earliest
        return self._pending_horizon_ms[key]

    def grab_filthiest(
        self, candidates: Iterable[tuple[PartitionLog, CompactionConfig]]
    ) -> CleaningPlan | None:
        """The log that most needs cleaning: one past ``max.compaction.lag.ms`` first, then
        the highest dirty ratio, then one whose tombstones may now be removed."""
        order = {"max-compaction-lag": 0, "dirty-ratio": 1, "delete-horizon": 2}
        best: CleaningPlan | None = None
        for log, compaction in candidates:
            try:
                plan = self.plan(log, compaction)
            except LogError:
                continue
            if plan is None:
                continue
            if best is None or (order[plan.reason], -plan.dirty_ratio) < (
                order[best.reason], -best.dirty_ratio
            ):
                best = plan
        return best

    # ------------------------------------------------------------------------------ pass

    def clean_now(self, log: PartitionLog, compaction: CompactionConfig) -> CleanerStats | None:
        """Plan and run one whole pass synchronously (tests, tools); None if not needed."""
        plan = self.plan(log, compaction)
        if plan is None:
            return None
        generator = self.clean(plan)
        try:
            while True:
                step = next(generator)
                if callable(step):
                    step()
        except StopIteration as stop:
            return stop.value

    def clean(self, plan: CleaningPlan) -> Generator[Step, None, CleanerStats]:
        """One cleaning pass as a generator that yields the bytes it read or wrote since the
        last yield, or a blocking callable (an fsync) its driver should run off the event
        loop; its return value is the pass's statistics.

        Raises:
            LogError: the log went offline, or a batch is corrupt (the log is then left alone
                until restart, as Kafka marks a partition uncleanable).
        """
        log = plan.log
        key = (log.topic, log.partition)
        started = time.monotonic()
        state = _PassState(
            plan=plan,
            now_ms=self._clock_ms(),
            window_bytes=max(self.config.io_buffer_size, _WINDOW_BYTES_MIN),
            offset_map=OffsetMap(self.config.dedupe_buffer_size,
                                 self.config.io_buffer_load_factor),
            stats=CleanerStats(topic=log.topic, partition=log.partition,
                               first_dirty_offset=plan.first_dirty_offset),
        )
        stats = state.stats
        try:
            yield from self._build_offset_map(state)
            end_offset = max(state.map_end, plan.first_dirty_offset)
            segments = [s for s in log.segments[:-1] if s.base_offset < end_offset]
            complete = True
            for group in _group_segments(segments, log.config.segment_bytes):
                swapped = yield from self._clean_group(state, group)
                if swapped is False:
                    complete = False
                    break
            stats.end_offset = end_offset
            stats.map_keys_count = len(state.offset_map)
            if complete:
                self._first_dirty[key] = end_offset
                self._pending_horizon_ms[key] = state.earliest_horizon_ms
                self.checkpoint()
        except (CorruptRecordError, _MapTooSmallError) as exc:
            self._uncleanable[key] = str(exc)
            logger.error("%s-%d: marked uncleanable: %s", log.topic, log.partition, exc)
            raise LogError(f"cannot clean {log.topic}-{log.partition}: {exc}") from exc
        finally:
            for reader in state.readers.values():
                reader.close()
        stats.elapsed_s = time.monotonic() - started
        self.last_stats = stats
        logger.info(
            "%s-%d: cleaned offsets [%d, %d) by %s in %.3f s: read %d bytes (%.1f MB/s), "
            "wrote %d, kept %d of %d records, %d keys, %d tombstones and %d aborted records "
            "removed", log.topic, log.partition, plan.first_dirty_offset, stats.end_offset,
            plan.reason, stats.elapsed_s, stats.bytes_read, stats.read_mb_per_s,
            stats.bytes_written, stats.records_kept, stats.records_read, stats.map_keys_count,
            stats.tombstones_removed, stats.aborted_records_removed)
        return stats

    def _build_offset_map(self, state: _PassState) -> Generator[int, None, None]:
        """Phase 1: key -> latest offset over the dirty section, stopping when the map fills.

        Records of a transaction wait in ``pending`` until its marker says COMMIT (they
        enter the map) or ABORT (the range is remembered so phase 2 drops it)."""
        plan = state.plan
        offset_map = state.offset_map
        first_dirty, end = plan.first_dirty_offset, plan.first_uncleanable_offset
        pending: dict[int, list[tuple[bytes, int]]] = {}
        txn_first_offset: dict[int, int] = {}
        state.map_end = first_dirty
        full = False
        for segment in plan.log.segments[:-1]:
            if full or segment.base_offset >= end:
                break
            if segment.next_offset <= first_dirty:
                continue
            position = plan.start_position if segment.base_offset <= first_dirty else 0
            for header, batch in state.reader(segment).batches(position, state.window_bytes):
                if header.last_offset < first_dirty:
                    continue
                if header.base_offset >= end:
                    full = True  # not full, but done: nothing cleanable follows
                    break
                state.stats.bytes_read += header.size_bytes
                if not batch_crc_is_valid(batch, header):
                    raise CorruptRecordError(
                        f"{plan.log.directory}: CRC mismatch in batch at {header.base_offset}")
                if header.is_control:
                    self._end_transaction(state, header, batch, pending, txn_first_offset)
                else:
                    # records_count bounds the keys a batch adds (keyless records add none).
                    pending_count = sum(len(records) for records in pending.values())
                    if (len(offset_map) + pending_count + header.records_count
                            > offset_map.capacity):
                        if state.map_end == first_dirty:
                            raise _MapTooSmallError(
                                f"a batch of {header.records_count} records does not fit the "
                                f"offset map of {offset_map.capacity} keys; raise "
                                "log.cleaner.dedupe.buffer.size")
                        full = True
                        break
                    target = None
                    if header.is_transactional:
                        if header.producer_id not in txn_first_offset:
                            txn_first_offset[header.producer_id] = header.base_offset
                        target = pending.setdefault(header.producer_id, [])
                    yield from self._map_batch(offset_map, header, batch, target)
                state.map_end = header.next_offset
                yield header.size_bytes
        if pending:
            yield from self._resolve_open_transactions(state, pending, txn_first_offset)

    @staticmethod
    def _map_batch(offset_map: OffsetMap, header: BatchHeader, batch: bytes,
                   target: list[tuple[bytes, int]] | None) -> Generator[int, None, None]:
        """Put the batch's keys in the map (or in ``target``, for a transaction whose outcome
        is not known yet), pausing every few hundred records."""
        base_offset = header.base_offset
        put = offset_map.put
        data = records_data(batch, header)
        for index, span in enumerate(iter_record_spans(data, header.records_count), 1):
            key = span.key
            if key is not None:
                if target is None:
                    put(key, base_offset + span.offset_delta)
                else:
                    target.append((key, base_offset + span.offset_delta))
            if index % _RECORDS_PER_STEP == 0:
                yield 0

    @staticmethod
    def _end_transaction(state: _PassState, header: BatchHeader, batch: bytes,
                         pending: dict[int, list[tuple[bytes, int]]],
                         txn_first_offset: dict[int, int]) -> None:
        producer_id = header.producer_id
        if producer_id not in txn_first_offset:
            return
        control_type = _control_type(batch, header)
        if control_type not in (_ABORT, _COMMIT):
            return
        records = pending.pop(producer_id, [])
        first_offset = txn_first_offset.pop(producer_id)
        if control_type == _ABORT:
            state.aborted.setdefault(producer_id, []).append((first_offset, header.last_offset))
        else:
            for record_key, offset in records:
                state.offset_map.put(record_key, offset)

    def _resolve_open_transactions(
        self, state: _PassState, pending: dict[int, list[tuple[bytes, int]]],
        txn_first_offset: dict[int, int],
    ) -> Generator[int, None, None]:
        """Transactions still open where the map stopped: find their markers further on (they
        exist: the pass never goes past the first unstable offset)."""
        log = state.plan.log
        for segment in log.segments:
            if not pending:
                return
            if segment.next_offset <= state.map_end:
                continue
            reader = _SegmentReader(segment)
            try:
                for header, batch in reader.batches(0, state.window_bytes):
                    if header.last_offset < state.map_end or not header.is_control:
                        continue
                    self._end_transaction(state, header, batch, pending, txn_first_offset)
                    yield header.size_bytes
                    if not pending:
                        return
            finally:
                reader.close()
        # No marker at all (history lost to truncation): keep those records as committed.
        for records in pending.values():
            for record_key, offset in records:
                if offset < state.map_end:
                    state.offset_map.put(record_key, offset)

    def _clean_group(self, state: _PassState,
                     group: list[LogSegment]) -> Generator[Step, None, bool | None]:
        """Phase 2 for one group: write the compacted copy, then swap it in.

        Returns:
            True when swapped, None when nothing changed (no swap needed), False when the log
            changed under the pass and the group was abandoned.
        """
        log = state.plan.log
        directory = log.directory
        cleaned_path = cleaned_file_path(directory, group[0].base_offset)
        fd = os.open(cleaned_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        changed = False
        out = bytearray()
        written_bytes = 0
        kept_markers: set[int] = set()
        try:
            last_segment = group[-1]
            for segment in group:
                for header, batch in state.reader(segment).batches(0, state.window_bytes):
                    is_group_last = segment is last_segment and (
                        header.next_offset == segment.next_offset)
                    kept = yield from self._filter_batch(state, header, batch, is_group_last)
                    if kept is not batch:
                        changed = True
                    if kept is not None:
                        out += kept
                        if header.is_control:
                            kept_markers.add(header.base_offset)
                    state.stats.bytes_read += header.size_bytes
                    step_bytes = header.size_bytes
                    if len(out) >= state.window_bytes:
                        written_bytes += _write_all(fd, out)
                        step_bytes += len(out)
                        out.clear()
                    yield step_bytes
            if out:
                written_bytes += _write_all(fd, out)
                yield len(out)
            if not changed or written_bytes == 0:
                os.close(fd)
                fd = -1
                cleaned_path.unlink()
                return None
            # The data fsync is the slow part of a swap: a worker thread does it (the driver
            # runs callables it is handed off the event loop).
            yield functools.partial(os.fsync, fd)
            os.close(fd)
            fd = -1
            state.stats.bytes_written += written_bytes
            # Aborted transactions stay indexed while their ABORT marker is kept.
            aborted_txns = [entry for segment in group for entry in segment.txn_index.entries
                            if entry.last_offset in kept_markers]
            swapped = not log.is_closed and log.replace_segments(
                group,
                lambda: install_cleaned_segment(group, cleaned_path, self._opener(log, group),
                                                aborted_txns=aborted_txns),
            )
            if not swapped:
                cleaned_path.unlink(missing_ok=True)
                state.stats.groups_abandoned += 1
                logger.info("%s-%d: segments changed during cleaning; group at %d abandoned",
                            log.topic, log.partition, group[0].base_offset)
                return False
            state.stats.groups_swapped += 1
            return True
        except BaseException:
            if fd >= 0:
                os.close(fd)
            cleaned_path.unlink(missing_ok=True)
            raise

    @staticmethod
    def _opener(log: PartitionLog, group: list[LogSegment]) -> Callable[[int], LogSegment]:
        created_ms = group[0].created_ms

        def open_segment(base_offset: int) -> LogSegment:
            return LogSegment.open(
                log.directory, base_offset,
                index_interval_bytes=log.config.index_interval_bytes,
                segment_index_bytes=log.config.segment_index_bytes,
                created_ms=created_ms,
            )

        return open_segment

    def _filter_batch(self, state: _PassState, header: BatchHeader, batch: bytes,
                      is_group_last: bool) -> Generator[int, None, bytes | None]:
        """The batch to write for ``batch`` (the same object when unchanged), or None."""
        plan = state.plan
        stats = state.stats
        if header.base_offset >= state.map_end and header.base_offset >= plan.first_dirty_offset:
            return batch  # beyond what this pass looked at: untouched
        if not batch_crc_is_valid(batch, header):
            raise CorruptRecordError(
                f"{plan.log.directory}: CRC mismatch in batch at {header.base_offset}")
        horizon_ms = delete_horizon_ms(header)
        horizon_passed = horizon_ms is not None and horizon_ms <= state.now_ms
        new_horizon_ms = state.now_ms + plan.compaction.delete_retention_ms
        if header.is_control:
            return self._filter_marker(state, header, batch, is_group_last, horizon_ms,
                                       new_horizon_ms)
        data = records_data(batch, header)
        kept: list[RecordSpan] = []
        stats.records_read += header.records_count
        if (header.is_transactional and header.base_offset >= plan.first_dirty_offset
                and _is_aborted(state.aborted, header)):
            stats.aborted_records_removed += header.records_count
        else:
            offset_map = state.offset_map
            base_offset = header.base_offset
            for index, span in enumerate(iter_record_spans(data, header.records_count), 1):
                key = span.key
                if key is None:
                    pass  # a keyless record has no place in a compacted log
                elif (latest := offset_map.get(key)) != NO_OFFSET and (
                        latest > base_offset + span.offset_delta):
                    pass  # a later record has this key
                elif span.is_tombstone and horizon_passed:
                    stats.tombstones_removed += 1
                else:
                    kept.append(span)
                if index % _RECORDS_PER_STEP == 0:
                    yield 0
        stats.records_kept += len(kept)
        if not kept:
            if is_group_last or (header.producer_id >= 0 and plan.log.producer_last_offset(
                    header.producer_id) == header.last_offset):
                return build_compacted_batch(batch, header, RecordsSection(b"", []), [])
            return None
        has_tombstones = any(span.is_tombstone for span in kept)
        needs_horizon = horizon_ms is None and has_tombstones
        state.note_horizon(new_horizon_ms if needs_horizon else
                           horizon_ms if has_tombstones else None)
        if len(kept) == header.records_count and not needs_horizon:
            return batch
        return build_compacted_batch(batch, header, RecordsSection(data, kept), kept,
                                     new_delete_horizon_ms=new_horizon_ms if needs_horizon
                                     else None)

    @staticmethod
    def _filter_marker(state: _PassState, header: BatchHeader, batch: bytes, is_group_last: bool,
                       horizon_ms: int | None, new_horizon_ms: int) -> bytes | None:
        """COMMIT markers stay; an ABORT marker gets a delete horizon, then goes after it."""
        if _control_type(batch, header) != _ABORT:
            return batch
        if horizon_ms is not None and horizon_ms <= state.now_ms:
            # Kept only as a group's last batch: nothing a later pass could do sooner.
            return batch if is_group_last else None
        if horizon_ms is not None:
            state.note_horizon(horizon_ms)
            return batch
        state.note_horizon(new_horizon_ms)
        section = read_records_section(batch, header)
        return build_compacted_batch(batch, header, section, section.spans,
                                     new_delete_horizon_ms=new_horizon_ms)

    # ------------------------------------------------------------------------------ driver

    async def drive(self, generator: Generator[Step, None, CleanerStats]) -> CleanerStats:
        """Run a pass on the event loop: hand control back at least every few milliseconds
        and sleep to stay under ``io_max_bytes_per_second``."""
        rate = self.config.io_max_bytes_per_second
        started = last_yield = time.monotonic()
        done_bytes = 0
        try:
            while True:
                try:
                    step = next(generator)
                except StopIteration as stop:
                    return stop.value
                if callable(step):
                    await asyncio.to_thread(step)
                    last_yield = time.monotonic()
                    continue
                done_bytes += step
                now = time.monotonic()
                if math.isfinite(rate) and rate > 0:
                    due = started + done_bytes / rate
                    if due > now:
                        await asyncio.sleep(due - now)
                        last_yield = time.monotonic()
                        continue
                if now - last_yield >= _SLICE_S:
                    await _give_way()
                    last_yield = time.monotonic()
        finally:
            generator.close()

    async def run(
        self,
        candidates: Callable[[], Iterable[tuple[PartitionLog, CompactionConfig]]],
        config: Callable[[], CleanerConfig],
    ) -> None:
        """Clean forever: the filthiest log first, backing off when none needs it."""
        while True:
            self.config = config()
            backoff_s = self.config.backoff_ms / 1000
            if not self.config.enabled:
                await asyncio.sleep(backoff_s)
                continue
            plan = None
            try:
                logs = list(candidates())
                plan = self.grab_filthiest(logs)
                if plan is None:
                    self.checkpoint(live=((log.topic, log.partition) for log, _ in logs))
                    await asyncio.sleep(backoff_s)
                    continue
                stats = await self.drive(self.clean(plan))
                if stats.groups_swapped == 0 and stats.end_offset <= plan.first_dirty_offset:
                    await asyncio.sleep(backoff_s)  # no progress: do not spin
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad log must not stop compaction of the others
                if plan is not None and plan.log.is_closed:
                    # The partition was deleted under the pass: nothing left to clean.
                    logger.info("%s-%d was deleted while being cleaned", plan.log.topic,
                                plan.log.partition)
                else:
                    logger.exception("log cleaner pass failed")
                await asyncio.sleep(backoff_s)


async def _give_way() -> None:
    """Let other tasks run.  A request reaches its handler through a chain of callbacks, one
    loop iteration each (socket event -> transport -> stream -> task step); one iteration per
    slice would make it wait a slice per link, so give the loop a few turns."""
    for _ in range(_LOOP_TURNS):
        await asyncio.sleep(0)


def _write_all(fd: int, data: bytearray) -> int:
    view = memoryview(data)
    total = len(view)
    while view:
        view = view[os.write(fd, view):]
    return total
