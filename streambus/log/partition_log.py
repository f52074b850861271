"""The log of one partition: an ordered list of segments with offsets, roll and recovery.

This module owns a partition directory's contents: which segments exist, the offsets
(``log_start_offset`` <= ``high_watermark`` <= ``log_end_offset``), offset assignment, when to
roll, crash recovery and the producer-state snapshots.  It never walks the data directory or
decides which partitions exist (``manager.py`` does), and it never decodes records except to
answer a timestamp lookup exactly.

Directory layout (names from ``file_names.py``)::

    <topic>-<partition>/
        00000000000000000000.log / .index / .timeindex     segment at base_offset 0
        00000000000000004096.log / .index / .timeindex     next segment, base_offset 4096
        00000000000000004096.snapshot                      producer state as of offset 4096
        partition.metadata                                  "version: 0\\ntopic_id: <id>\\n"

``partition.metadata`` holds the topic id in Kafka's text format (base64url UUID, no padding),
so a directory left behind by a deleted topic is not mistaken for a recreated one.

Durability: an append is in the kernel (``pwrite``) before :meth:`PartitionLog.append_as_leader`
returns, so a killed process loses nothing.  Power loss is covered only up to
``recovery_point``, the offset below which everything has been fsynced; after an unclean
shutdown every segment from the one holding the recovery point is re-validated and cut at the
first torn or corrupt batch.

Not thread-safe: the broker serialises calls per partition.
"""

from __future__ import annotations

import base64
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from streambus.log.config import LogConfig
from streambus.log.errors import (
    CorruptIndexError,
    InconsistentTopicIdError,
    LogError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    UnexpectedAppendOffsetError,
)
from streambus.log.file_names import (
    CLEANED_FILE_SUFFIX,
    DELETED_FILE_SUFFIX,
    INDEX_FILE_SUFFIX,
    LOG_FILE_SUFFIX,
    PARTITION_METADATA_FILE_NAME,
    SWAP_FILE_SUFFIX,
    TIME_INDEX_FILE_SUFFIX,
    TXN_INDEX_FILE_SUFFIX,
    offset_from_file_name,
    parse_partition_dir_name,
)
from streambus.log.file_names import index_file_path
from streambus.log.producer_state import (
    ProducerStateEntry,
    ProducerStateManager,
    TransactionCoordinatorFencedError,
)
from streambus.log.txn_index import AbortedTxn
from streambus.log.segment import LogSegment
from streambus.log.segment_swap import recover_swap_files
from streambus.protocol.records.batch import (
    BatchHeader,
    read_batch_header,
    rewrite_base_offset,
    rewrite_partition_leader_epoch,
    set_log_append_time,
)
from streambus.protocol.records.control import ControlRecordType, build_control_batch, parse_control_record
from streambus.protocol.records.record import decode_records

__all__ = [
    "PartitionLog",
    "AppendResult",
    "ReadResult",
    "NO_TIMESTAMP",
    "fsync_directory",
    "write_file_atomically",
]

logger = logging.getLogger(__name__)

NO_TIMESTAMP = -1
_TEMPORARY_SUFFIXES = (DELETED_FILE_SUFFIX, CLEANED_FILE_SUFFIX, SWAP_FILE_SUFFIX, ".tmp")
_PARTITION_METADATA_VERSION = 0


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Outcome of one append, as the Produce response reports it."""

    base_offset: int
    """Offset of the first record appended (or of the original append, for a duplicate)."""
    last_offset: int
    log_append_time_ms: int
    """Broker timestamp stamped on the batches, or -1 unless the topic uses LogAppendTime."""
    log_start_offset: int
    duplicate: bool = False
    """True when an idempotent producer retried batches that are already in the log; nothing
    was written and the offsets are those of the original append."""


@dataclass(frozen=True, slots=True)
class ReadResult:
    """Whole batches for a Fetch, plus the partition offsets the response carries."""

    records: bytes | memoryview
    """Complete batches, possibly empty; the first may start below the fetch offset."""
    high_watermark: int
    log_start_offset: int
    log_end_offset: int


class PartitionLog:
    """Storage of one partition.  Create with :meth:`open`."""

    def __init__(
        self,
        directory: Path,
        config: LogConfig,
        clock_ms: Callable[[], int],
        topic_id: uuid.UUID | None,
    ) -> None:
        self.directory = directory
        self.topic, self.partition = parse_partition_dir_name(directory.name)
        self.config = config
        self.topic_id = topic_id
        self._clock_ms = clock_ms
        self._segments: list[LogSegment] = []
        self.log_start_offset = 0
        self.log_end_offset = 0
        """Offset the next appended record gets."""
        self.recovery_point = 0
        """Every offset below this is fsynced."""
        self._high_watermark = 0
        self.last_flush_ms = clock_ms()
        self._producer_state = ProducerStateManager()
        self._directory_dirty = False
        self._closed = False
        self._offline_reason: str | None = None

    # --------------------------------------------------------------------------- opening

    @classmethod
    def open(
        cls,
        directory: Path,
        config: LogConfig,
        *,
        clock_ms: Callable[[], int],
        recovery_point: int = 0,
        clean_shutdown: bool,
        topic_id: uuid.UUID | None = None,
        log_start_offset: int = 0,
    ) -> PartitionLog:
        """Open the log in ``directory`` (created if missing), recovering it if needed.

        Args:
            directory: ``<topic>-<partition>``; its name gives the topic and partition.
            recovery_point: offset below which the previous run fsynced everything (from the
                ``recovery-point-offset-checkpoint`` file).
            clean_shutdown: the previous run closed the log cleanly, so no segment is
                re-validated (indexes are still sanity-checked).
            topic_id: the topic's id; checked against (or written to) ``partition.metadata``.
            log_start_offset: from the ``log-start-offset-checkpoint`` file.

        Raises:
            InconsistentTopicIdError: ``partition.metadata`` names another topic id.
            ValueError: the directory name is not ``<topic>-<partition>``.
        """
        directory.mkdir(parents=True, exist_ok=True)
        log = cls(directory, config, clock_ms, topic_id)
        try:
            log._check_partition_metadata()
            log._load_segments(recovery_point, clean_shutdown)
            log._set_offsets_after_load(recovery_point, clean_shutdown, log_start_offset)
            log._load_producer_state()
        except BaseException:
            log._close_segments()
            raise
        return log

    def _check_partition_metadata(self) -> None:
        path = self.directory / PARTITION_METADATA_FILE_NAME
        stored = _read_partition_metadata(path) if path.exists() else None
        if stored is not None and self.topic_id is not None and stored != self.topic_id:
            raise InconsistentTopicIdError(
                f"{self.directory} belongs to topic id {stored}, not {self.topic_id}"
            )
        if stored is None and self.topic_id is not None:
            _write_partition_metadata(path, self.topic_id)
            self._directory_dirty = True
        self.topic_id = stored or self.topic_id

    def _load_segments(self, recovery_point: int, clean_shutdown: bool) -> None:
        base_offsets = self._scan_directory()
        now_ms = self._clock_ms()
        # A segment without its .index file (a finished compaction swap, or a deleted index)
        # is rebuilt from its .log, as Kafka's LogLoader does.
        missing_index = {
            base_offset for base_offset in base_offsets
            if not index_file_path(self.directory, base_offset).exists()
        }
        for base_offset in base_offsets:
            self._segments.append(self._open_segment(base_offset, now_ms))
        if clean_shutdown or not self._segments:
            recover_from_index = len(self._segments)
        else:
            recover_from_index = max(0, self._floor_segment_index(recovery_point))
        index = 0
        while index < len(self._segments):
            segment = self._segments[index]
            needs_recovery = index >= recover_from_index or segment.base_offset in missing_index
            if not needs_recovery:
                try:
                    segment.load()
                except CorruptIndexError as exc:
                    logger.warning("%s: %s; rebuilding the segment's indexes", self.directory, exc)
                    needs_recovery = True
            truncated_bytes = 0
            if needs_recovery:
                truncated_bytes = segment.recover(self.config.max_message_bytes)
            if index > 0 and segment.base_offset < self._segments[index - 1].next_offset:
                raise LogError(
                    f"{self.directory}: segment {segment.base_offset} overlaps the previous one"
                )
            if truncated_bytes:
                logger.warning(
                    "%s: truncated %d invalid bytes from segment %d",
                    self.directory, truncated_bytes, segment.base_offset,
                )
                # Nothing after a torn batch can be trusted to follow it: drop later segments.
                for later in self._segments[index + 1 :]:
                    later.delete()
                del self._segments[index + 1 :]
                self._directory_dirty = True
            index += 1

    def _scan_directory(self) -> list[int]:
        """Remove leftovers of interrupted operations; return the segments' base offsets."""
        # A compaction swap that reached its .swap file is finished first (segment_swap.py);
        # what remains with a temporary suffix after that is debris.
        if recover_swap_files(self.directory):
            self._directory_dirty = True
        base_offsets: list[int] = []
        index_offsets: dict[int, list[Path]] = {}
        for path in self.directory.iterdir():
            name = path.name
            if name.endswith(_TEMPORARY_SUFFIXES):
                path.unlink()
                continue
            if name.endswith(LOG_FILE_SUFFIX):
                base_offsets.append(offset_from_file_name(name))
            elif name.endswith((INDEX_FILE_SUFFIX, TIME_INDEX_FILE_SUFFIX, TXN_INDEX_FILE_SUFFIX)):
                index_offsets.setdefault(offset_from_file_name(name), []).append(path)
        for base_offset, paths in index_offsets.items():
            if base_offset not in base_offsets:
                for path in paths:
                    path.unlink()
        return sorted(base_offsets)

    def _set_offsets_after_load(
        self, recovery_point: int, clean_shutdown: bool, log_start_offset: int
    ) -> None:
        if not self._segments:
            self._segments.append(self._open_segment(log_start_offset, self._clock_ms()))
            self._directory_dirty = True
        self.log_end_offset = self._segments[-1].next_offset
        self.log_start_offset = min(
            max(log_start_offset, self._segments[0].base_offset), self.log_end_offset
        )
        # After an unclean shutdown the recovered tail is still not known to be fsynced.
        self.recovery_point = (
            self.log_end_offset if clean_shutdown else min(recovery_point, self.log_end_offset)
        )
        self._high_watermark = self.log_end_offset

    def _open_segment(self, base_offset: int, now_ms: int) -> LogSegment:
        return LogSegment.open(
            self.directory,
            base_offset,
            index_interval_bytes=self.config.index_interval_bytes,
            segment_index_bytes=self.config.segment_index_bytes,
            created_ms=now_ms,
        )

    def _load_producer_state(self) -> None:
        """Load the newest snapshot at or below the log end, then replay batches after it.

        The replay also restores aborted-transaction entries that a crash kept out of the
        ``.txnindex`` files (the marker reached the log, its entry did not): every entry is
        written before any later snapshot, so the markers after the snapshot cover them all.
        """
        producer_state = ProducerStateManager()
        producer_state.delete_snapshots_after(self.directory, self.log_end_offset)
        snapshot_offset = producer_state.load_latest_snapshot(self.directory, self.log_end_offset)
        replay_from = self.log_start_offset if snapshot_offset is None else snapshot_offset
        self._producer_state = producer_state
        index = max(0, self._floor_segment_index(replay_from))
        for count, segment in enumerate(self._segments[index:]):
            for header in segment.batch_headers(replay_from if count == 0 else None):
                if header.base_offset < replay_from or header.producer_id < 0:
                    continue
                batch = (segment.read_bytes(header.position, header.size_bytes)
                         if header.is_control else None)
                self._update_producer_state(header, batch, header.max_timestamp)

    # --------------------------------------------------------------------------- properties

    @property
    def high_watermark(self) -> int:
        """Offset below which records are committed and visible to consumers."""
        return self._high_watermark

    @high_watermark.setter
    def high_watermark(self, offset: int) -> None:
        if not self.log_start_offset <= offset <= self.log_end_offset:
            raise ValueError(
                f"high watermark {offset} is outside [{self.log_start_offset}, "
                f"{self.log_end_offset}]"
            )
        self._high_watermark = offset

    @property
    def segments(self) -> tuple[LogSegment, ...]:
        return tuple(self._segments)

    @property
    def active_segment(self) -> LogSegment:
        return self._segments[-1]

    @property
    def size_bytes(self) -> int:
        return sum(segment.size_bytes for segment in self._segments)

    def update_config(self, config: LogConfig) -> None:
        """Apply new topic configs; they take effect from the next append or roll."""
        self.config = config

    @property
    def is_closed(self) -> bool:
        return self._closed

    def first_unstable_offset(self) -> int | None:
        """First offset of the oldest open transaction, or None (the log cleaner stops there)."""
        return self._producer_state.first_unstable_offset()

    @property
    def last_stable_offset(self) -> int:
        """Offset below which every transaction is decided: what read_committed consumers may
        read (Fetch) and what ListOffsets answers them for "latest".

        It is the first offset of the oldest open transaction, bounded by the high watermark
        (a decided transaction whose marker is not yet replicated is not stable either) and
        raised to the log start (DeleteRecords may have removed an open transaction's start).
        """
        high_watermark = self._high_watermark
        first_unstable = self._producer_state.first_unstable_offset()
        if first_unstable is None or first_unstable >= high_watermark:
            return high_watermark
        return max(first_unstable, self.log_start_offset)

    def producer_entries(self) -> list[ProducerStateEntry]:
        """Every producer this partition knows (DescribeProducers).  Do not mutate them."""
        return self._producer_state.entries()

    def ongoing_transactions(self) -> dict[int, int]:
        """Producer id -> first offset of its open transaction here."""
        return self._producer_state.ongoing_transactions()

    def has_ongoing_transaction(self, producer_id: int) -> bool:
        entry = self._producer_state.entry(producer_id)
        return entry is not None and entry.current_txn_first_offset is not None

    def collect_aborted_transactions(self, fetch_offset: int,
                                     upper_bound_offset: int) -> list[AbortedTxn]:
        """Aborted transactions that may have records in [fetch_offset, upper_bound_offset):
        what a read_committed Fetch returns beside those records (Kafka's
        ``collectAbortedTransactions``).  Entries live with their ABORT marker, so the scan
        starts at the fetch offset's segment and goes on until an entry's last stable offset
        shows that no later abort can overlap."""
        found: list[AbortedTxn] = []
        if upper_bound_offset <= fetch_offset:
            return found
        index = max(0, self._floor_segment_index(fetch_offset))
        for segment in self._segments[index:]:
            if segment.txn_index.collect(fetch_offset, upper_bound_offset, found):
                break
        return found

    def aborted_transactions(self) -> list[AbortedTxn]:
        """Every aborted transaction still indexed, in marker order (tests, tools)."""
        return [entry for segment in self._segments for entry in segment.txn_index.entries]

    def producer_last_offset(self, producer_id: int) -> int:
        """Last offset the producer appended, or -1 if it is unknown (the log cleaner keeps
        that batch, even emptied, so idempotence state survives compaction)."""
        entry = self._producer_state.entry(producer_id)
        return -1 if entry is None else entry.last_offset

    def replace_segments(
        self, old_segments: list[LogSegment], install: Callable[[], LogSegment]
    ) -> bool:
        """Swap a run of non-active segments for the one ``install()`` puts in place (the log
        cleaner's swap, see ``segment_swap.py``).

        Returns:
            False, without calling ``install``, when ``old_segments`` are no longer a
            contiguous, unchanged run of this log's non-active segments (retention, truncation
            or DeleteRecords got there first); True once the new segment is in the list.
        """
        self._check_open()
        if not old_segments:
            return False
        try:
            start = next(i for i, s in enumerate(self._segments) if s is old_segments[0])
        except StopIteration:
            return False
        end = start + len(old_segments)
        if end >= len(self._segments) or any(
            a is not b for a, b in zip(self._segments[start:end], old_segments)
        ):
            return False
        carried = [entry for segment in old_segments for entry in segment.txn_index.entries]
        try:
            new_segment = install()
            if carried:
                # An aborted transaction stays indexed only while its ABORT marker is kept:
                # once the cleaner dropped the marker (and, before it, the records), an entry
                # would make consumers skip that producer's later committed records.
                control_offsets = {header.base_offset for header in new_segment.batch_headers()
                                   if header.is_control}
                new_segment.txn_index.replace(
                    entry for entry in carried if entry.last_offset in control_offsets)
        except OSError as exc:
            self._go_offline(exc)
        self._segments[start:end] = [new_segment]
        self._directory_dirty = True
        return True

    # --------------------------------------------------------------------------- append

    def append_as_leader(
        self,
        records: bytearray | memoryview,
        headers: list[BatchHeader],
        *,
        leader_epoch: int,
        from_coordinator: bool = False,
    ) -> AppendResult:
        """Assign offsets to validated batches and append them.

        Args:
            records: the Produce request's batches, back to back and writable: offsets,
                leader epoch and (for LogAppendTime) timestamps are rewritten in place.
            headers: ``validate_batches(records)``; updated in place like the bytes.
            leader_epoch: stamped as every batch's ``partition_leader_epoch``.
            from_coordinator: a group coordinator's transactional offsets (TxnOffsetCommit):
                batches carry the producer's id and epoch but no sequence, so only epochs
                are checked (Kafka's ``AppendOrigin.COORDINATOR``).

        Returns:
            The offsets given, or those of the original append when every batch is an
            idempotent producer's retry (nothing is written then).

        Raises:
            RecordTooLargeError: a batch exceeds ``max_message_bytes``.
            ProducerStateError: a sequence or epoch check failed (``error_code`` is
                OUT_OF_ORDER_SEQUENCE_NUMBER or INVALID_PRODUCER_EPOCH); nothing is written.
            LogError: the log is closed or its disk failed.
        """
        self._check_open()
        view = memoryview(records)
        _check_buffer(view, headers)
        for header in headers:
            if header.size_bytes > self.config.max_message_bytes:
                raise RecordTooLargeError(
                    f"batch of {header.size_bytes} bytes exceeds {self.config.max_message_bytes}"
                )
        if from_coordinator:
            self._producer_state.check_epochs(headers)
        else:
            duplicate = self._check_producer_state(headers)
            if duplicate is not None:
                return duplicate
        now_ms = self._clock_ms()
        log_append_time_ms = now_ms if self.config.is_log_append_time else NO_TIMESTAMP
        next_offset = self.log_end_offset
        for header in headers:
            rewrite_base_offset(view, header.position, next_offset)
            rewrite_partition_leader_epoch(view, header.position, leader_epoch)
            header.base_offset = next_offset
            header.partition_leader_epoch = leader_epoch
            if log_append_time_ms != NO_TIMESTAMP:
                set_log_append_time(view, header, log_append_time_ms)
            next_offset = header.next_offset
        self._append(view, headers, now_ms)
        return AppendResult(
            base_offset=headers[0].base_offset,
            last_offset=next_offset - 1,
            log_append_time_ms=log_append_time_ms,
            log_start_offset=self.log_start_offset,
        )

    def append_as_follower(
        self, records: bytes | bytearray | memoryview, headers: list[BatchHeader]
    ) -> None:
        """Append batches whose offsets the leader assigned (replication).

        Raises:
            UnexpectedAppendOffsetError: the first batch starts below the log end offset.
        """
        self._check_open()
        view = memoryview(records)
        _check_buffer(view, headers)
        if headers[0].base_offset < self.log_end_offset:
            raise UnexpectedAppendOffsetError(
                f"follower append at {headers[0].base_offset} is below the log end offset "
                f"{self.log_end_offset}"
            )
        self._append(view, headers, self._clock_ms())

    def _check_producer_state(self, headers: list[BatchHeader]) -> AppendResult | None:
        """Run the idempotence/sequence checks on every producer batch before writing.

        Kafka treats the request as a duplicate as soon as one batch is (producers send one
        batch per partition per request, so in practice all of it is).
        """
        duplicate = self._producer_state.check_batches(headers)
        if duplicate is None:
            return None
        return AppendResult(
            base_offset=duplicate.first_offset,
            last_offset=duplicate.last_offset,
            log_append_time_ms=(
                duplicate.timestamp if self.config.is_log_append_time else NO_TIMESTAMP
            ),
            log_start_offset=self.log_start_offset,
            duplicate=True,
        )

    def _append(self, view: memoryview, headers: list[BatchHeader], now_ms: int) -> None:
        """Roll if needed, write all batches with one write, then update offsets and state."""
        try:
            if self._should_roll(len(view), headers, now_ms):
                self._roll(headers[0].base_offset, now_ms)
            self.active_segment.append(view, headers)
        except OSError as exc:
            self._go_offline(exc)
        self.log_end_offset = headers[-1].next_offset
        for header in headers:
            if header.producer_id >= 0:
                batch = (view[header.position:header.position + header.size_bytes]
                         if header.is_control else None)
                self._update_producer_state(header, batch, header.max_timestamp)
        if self.log_end_offset - self.recovery_point >= self.config.flush_interval_messages:
            self.flush()

    def _update_producer_state(self, header: BatchHeader, batch: bytes | memoryview | None,
                               timestamp_ms: int) -> None:
        """Apply one appended batch to producer state; an ABORT marker also gets its
        ``.txnindex`` entry (Kafka's ``updateProducers`` + ``updateTxnIndex``)."""
        if not header.is_control:
            self._producer_state.update(header, header.base_offset, header.last_offset,
                                        timestamp_ms)
            return
        marker: tuple[ControlRecordType, int] | None = None
        if batch is not None:
            try:
                marker = parse_control_record(batch)
            except ValueError:
                marker = None  # not a transaction marker: it only fences by epoch
        entry = self._producer_state.entry(header.producer_id)
        first_offset = None if entry is None else entry.current_txn_first_offset
        self._producer_state.update(header, header.base_offset, header.last_offset, timestamp_ms,
                                    coordinator_epoch=None if marker is None else marker[1])
        if marker is None or marker[0] != ControlRecordType.ABORT:
            return
        marker_offset = header.base_offset
        first_unstable = self._producer_state.first_unstable_offset()
        entry_to_add = AbortedTxn(
            producer_id=header.producer_id,
            first_offset=marker_offset if first_offset is None else first_offset,
            last_offset=marker_offset,
            last_stable_offset=marker_offset + 1 if first_unstable is None else first_unstable,
        )
        segment = self._segments[max(0, self._floor_segment_index(marker_offset))]
        index = segment.txn_index
        if index.contains(entry_to_add.producer_id, marker_offset):
            return
        entries = index.entries
        if not entries or entries[-1].last_offset < marker_offset:
            index.append(entry_to_add)
        else:
            index.replace([*entries, entry_to_add])

    def append_control_marker(
        self,
        *,
        producer_id: int,
        producer_epoch: int,
        coordinator_epoch: int,
        commit: bool,
        leader_epoch: int,
    ) -> AppendResult:
        """Append a COMMIT or ABORT marker for ``producer_id`` (WriteTxnMarkers).

        The marker closes the producer's open transaction here (if any); an ABORT also
        indexes the transaction in the active segment's ``.txnindex``.  A marker with a newer
        epoch than the producer's (a coordinator's fencing abort) fences the old epoch.

        Raises:
            InvalidProducerEpochError: the marker's epoch is older than the producer's.
            TransactionCoordinatorFencedError: an older coordinator epoch than one seen.
            LogError: the log is closed or its disk failed.
        """
        self._check_open()
        entry = self._producer_state.entry(producer_id)
        if entry is not None and coordinator_epoch < entry.coordinator_epoch:
            raise TransactionCoordinatorFencedError(
                f"marker for producer {producer_id} from coordinator epoch {coordinator_epoch}, "
                f"older than {entry.coordinator_epoch}")
        now_ms = self._clock_ms()
        batch = bytearray(build_control_batch(
            ControlRecordType.COMMIT if commit else ControlRecordType.ABORT,
            producer_id, producer_epoch, coordinator_epoch, now_ms,
            base_offset=self.log_end_offset, partition_leader_epoch=leader_epoch))
        header = read_batch_header(batch, 0)
        header.position = 0
        self._producer_state.check_batches([header])  # fences an older epoch
        self._append(memoryview(batch), [header], now_ms)
        return AppendResult(base_offset=header.base_offset, last_offset=header.last_offset,
                            log_append_time_ms=NO_TIMESTAMP,
                            log_start_offset=self.log_start_offset)

    def _should_roll(self, size_bytes: int, headers: list[BatchHeader], now_ms: int) -> bool:
        segment = self.active_segment
        fits = segment.can_hold_offset(headers[0].base_offset) and segment.can_hold_offset(
            headers[-1].last_offset
        )
        if segment.size_bytes == 0:
            # An empty segment is reused unless the offsets cannot be indexed from its base.
            return not fits
        if not fits or segment.is_index_full:
            return True
        if segment.size_bytes + size_bytes > self.config.segment_bytes:
            return True
        max_timestamp_ms = max(header.max_timestamp for header in headers)
        # Kafka rolls on message time (the first batch's max timestamp) so replicas roll at
        # the same batches; the wall clock only matters when batches carry no timestamp.
        first_timestamp_ms = segment.rolling_based_timestamp()
        if first_timestamp_ms is not None and first_timestamp_ms >= 0:
            waited_ms = max_timestamp_ms - first_timestamp_ms
        else:
            waited_ms = now_ms - segment.created_ms
        return waited_ms > self.config.segment_ms

    def roll(self) -> LogSegment:
        """Start a new active segment at the log end offset (no-op if the active one is empty)."""
        self._check_open()
        if self.active_segment.size_bytes == 0:
            return self.active_segment
        try:
            self._roll(self.log_end_offset, self._clock_ms())
        except OSError as exc:
            self._go_offline(exc)
        return self.active_segment

    def _roll(self, base_offset: int, now_ms: int) -> None:
        active = self.active_segment
        if active.size_bytes == 0:
            # An empty active segment at the wrong base offset is replaced, not kept.
            active.delete()
            self._segments.pop()
        self._segments.append(self._open_segment(base_offset, now_ms))
        self._directory_dirty = True
        # A snapshot per segment bounds the replay after a crash to about one segment.
        self._producer_state.write_snapshot(self.directory, base_offset)

    # --------------------------------------------------------------------------- read

    def read(
        self,
        fetch_offset: int,
        max_bytes: int,
        *,
        max_offset: int | None = None,
        min_one_batch: bool = True,
    ) -> ReadResult:
        """Read whole batches from ``fetch_offset``, across segments if needed.

        Args:
            fetch_offset: first wanted offset; the batch holding it is returned whole.
            max_bytes: byte budget.
            max_offset: exclusive bound on returned offsets (consumers pass the high
                watermark); defaults to the log end offset.
            min_one_batch: return the first batch even if it exceeds ``max_bytes`` (KIP-74).

        Raises:
            OffsetOutOfRangeError: ``fetch_offset`` is below the log start offset or above
                the log end offset.  Fetching exactly at the log end returns no records.
        """
        self._check_open()
        if not self.log_start_offset <= fetch_offset <= self.log_end_offset:
            raise OffsetOutOfRangeError(
                f"fetch offset {fetch_offset} is outside [{self.log_start_offset}, "
                f"{self.log_end_offset}] of {self.topic}-{self.partition}"
            )
        limit = self.log_end_offset if max_offset is None else min(max_offset, self.log_end_offset)
        chunks: list[bytes] = []
        remaining_bytes = max_bytes
        offset = fetch_offset
        index = self._floor_segment_index(fetch_offset)
        # Bounded by the segment count: each pass moves to the next segment or stops.
        while 0 <= index < len(self._segments) and offset < limit:
            result = self._segments[index].read(
                offset,
                remaining_bytes,
                max_offset=limit,
                min_one_batch=min_one_batch and not chunks,
            )
            index += 1
            if result is None:
                continue  # fetch offset in a gap after this segment's last batch
            if result.records:
                chunks.append(result.records)
                remaining_bytes -= len(result.records)
            if not result.reached_end or remaining_bytes <= 0:
                break
            offset = result.next_offset
        records = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return ReadResult(
            records=records,
            high_watermark=self._high_watermark,
            log_start_offset=self.log_start_offset,
            log_end_offset=self.log_end_offset,
        )

    def offset_for_timestamp(self, timestamp_ms: int) -> tuple[int, int] | None:
        """The first record (at or after the log start) with timestamp >= ``timestamp_ms``.

        ListOffsets semantics: find the batch through the time indexes and batch
        ``max_timestamp``, then decode it to pick the exact record.

        Returns:
            (offset, timestamp_ms) of that record, or None when no record is that late.
        """
        self._check_open()
        start_offset = self.log_start_offset
        for segment in self._segments:
            if segment.next_offset <= start_offset or segment.largest_timestamp < timestamp_ms:
                continue
            # Bounded by the segment's batch count: each pass starts after the previous batch.
            while True:
                header = segment.find_batch_by_timestamp(timestamp_ms, start_offset)
                if header is None:
                    break
                batch = segment.read_bytes(header.position, header.size_bytes)
                for record in decode_records(batch):
                    if record.timestamp >= timestamp_ms and record.offset >= start_offset:
                        return record.offset, record.timestamp
                start_offset = header.next_offset
        return None

    def max_timestamp_offset(self) -> tuple[int, int] | None:
        """(offset, timestamp_ms) of the first record with the largest timestamp (KIP-734).

        Returns None for an empty log.
        """
        self._check_open()
        best: LogSegment | None = None
        for segment in self._segments:
            if not segment.size_bytes:
                continue
            if best is None or segment.largest_timestamp > best.largest_timestamp:
                best = segment
        if best is None:
            return None
        largest_timestamp_ms = best.largest_timestamp
        header = best.find_batch_by_timestamp(largest_timestamp_ms, best.base_offset)
        assert header is not None and header.max_timestamp == largest_timestamp_ms
        if header.is_log_append_time:
            return header.base_offset, largest_timestamp_ms
        batch = best.read_bytes(header.position, header.size_bytes)
        for record in decode_records(batch):
            if record.timestamp == largest_timestamp_ms:
                return record.offset, largest_timestamp_ms
        # A batch whose max_timestamp matches none of its records was written by a broken
        # producer; its last offset is still a sensible answer.
        return header.last_offset, largest_timestamp_ms

    def _iter_batch_headers(self, start_offset: int) -> Iterator[BatchHeader]:
        """Headers of every batch from the one holding ``start_offset`` to the log end."""
        index = max(0, self._floor_segment_index(start_offset))
        for count, segment in enumerate(self._segments[index:]):
            yield from segment.batch_headers(start_offset if count == 0 else None)

    def _floor_segment_index(self, offset: int) -> int:
        """Index of the last segment whose base offset is <= ``offset``, or -1."""
        low, high = 0, len(self._segments) - 1
        found = -1
        while low <= high:
            middle = (low + high) // 2
            if self._segments[middle].base_offset <= offset:
                found = middle
                low = middle + 1
            else:
                high = middle - 1
        return found

    # --------------------------------------------------------------------------- durability

    def flush(self, up_to_offset: int | None = None) -> None:
        """fsync every segment holding offsets below ``up_to_offset`` (default: the log end)
        and advance ``recovery_point`` to it."""
        self._check_open()
        target = self.log_end_offset
        if up_to_offset is not None:
            target = min(up_to_offset, target)
        if target <= self.recovery_point and not self._directory_dirty:
            return
        try:
            for index, segment in enumerate(self._segments):
                end_offset = (
                    self._segments[index + 1].base_offset
                    if index + 1 < len(self._segments)
                    else self.log_end_offset + 1
                )
                if segment.base_offset < target and end_offset > self.recovery_point:
                    segment.flush()
            if self._directory_dirty:
                # New or deleted segment files are durable only once the directory is.
                fsync_directory(self.directory)
                self._directory_dirty = False
        except OSError as exc:
            self._go_offline(exc)
        self.recovery_point = max(self.recovery_point, target)
        self.last_flush_ms = self._clock_ms()

    def remove_expired_producers(self, now_ms: int) -> list[int]:
        """Forget idempotent producers idle for ``producer.id.expiration.ms`` (1 day)."""
        return self._producer_state.remove_expired(now_ms)

    def maybe_flush(self) -> bool:
        """Flush if ``flush_interval_ms`` has passed since the last flush; return whether it did."""
        interval_ms = self.config.flush_interval_ms
        if interval_ms is None or self._clock_ms() - self.last_flush_ms < interval_ms:
            return False
        self.flush()
        return True

    def close(self, clean: bool) -> None:
        """Close the files.  ``clean`` first fsyncs everything and snapshots producer state,
        so the next open needs no recovery.  Otherwise the files are left exactly as a killed
        process leaves them: appended batches are in the kernel, index entries written behind
        are lost, and the next open must recover."""
        if self._closed:
            return
        try:
            if clean and self._offline_reason is None:
                self.flush()
                self._producer_state.write_snapshot(self.directory, self.log_end_offset)
        finally:
            self._close_segments(write_pending_index_entries=clean)
            self._closed = True

    def _close_segments(self, *, write_pending_index_entries: bool = False) -> None:
        for segment in self._segments:
            segment.close(write_pending_index_entries=write_pending_index_entries)

    # --------------------------------------------------------------------------- truncation

    def truncate_to(self, offset: int) -> None:
        """Remove every batch at or after ``offset`` (a follower diverged from its leader).

        A batch holding ``offset`` is removed whole.  Truncating at or past the log end does
        nothing; truncating below the log start empties the log and restarts it at ``offset``.
        """
        self._check_open()
        if offset < 0:
            raise ValueError(f"cannot truncate to negative offset {offset}")
        if offset >= self.log_end_offset:
            return
        if offset < self.log_start_offset:
            self.truncate_fully_and_start_at(offset)
            return
        try:
            index = self._floor_segment_index(offset)
            for segment in self._segments[index + 1 :]:
                segment.delete()
            del self._segments[index + 1 :]
            self._segments[index].truncate_to(offset)
            self._directory_dirty = True
        except OSError as exc:
            self._go_offline(exc)
        self.log_end_offset = self.active_segment.next_offset
        self._high_watermark = min(self._high_watermark, self.log_end_offset)
        self.recovery_point = min(self.recovery_point, self.log_end_offset)
        self._load_producer_state()

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Delete every segment and restart the empty log at ``offset``."""
        self._check_open()
        try:
            for segment in self._segments:
                segment.delete()
            self._segments = [self._open_segment(offset, self._clock_ms())]
            self._directory_dirty = True
        except OSError as exc:
            self._go_offline(exc)
        self.log_start_offset = self.log_end_offset = offset
        self._high_watermark = self.recovery_point = offset
        self._producer_state.delete_snapshots_after(self.directory, -1)
        self._load_producer_state()

    def delete_records_before(self, offset: int) -> int:
        """Advance the log start offset to ``offset`` (DeleteRecords, retention).

        Segments whose every offset is below the new log start are deleted; the active
        segment always stays.

        Returns:
            The new log start offset.

        Raises:
            OffsetOutOfRangeError: ``offset`` is above the high watermark.
        """
        self._check_open()
        if offset > self._high_watermark:
            raise OffsetOutOfRangeError(
                f"cannot delete records before {offset}: high watermark is {self._high_watermark}"
            )
        if offset <= self.log_start_offset and (
            len(self._segments) < 2 or self._segments[1].base_offset > self.log_start_offset
        ):
            return self.log_start_offset
        # Segments wholly below an earlier log start (e.g. one restored from the checkpoint
        # after a crash) are deleted too, as Kafka's deleteLogStartOffsetBreachedSegments does.
        offset = max(offset, self.log_start_offset)
        self.log_start_offset = offset
        try:
            while len(self._segments) > 1 and self._segments[1].base_offset <= offset:
                self._segments.pop(0).delete()
                self._directory_dirty = True
            # Replay after a crash starts at the log start at the earliest.
            self._producer_state.delete_snapshots_before(
                self.directory, self._segments[0].base_offset
            )
        except OSError as exc:
            self._go_offline(exc)
        return self.log_start_offset

    def delete(self) -> None:
        """Close the log and remove every file in its directory, then the directory."""
        self._close_segments()
        self._closed = True
        for path in self.directory.iterdir():
            path.unlink()
        self.directory.rmdir()

    # --------------------------------------------------------------------------- guards

    def _check_open(self) -> None:
        if self._closed:
            raise LogError(f"log {self.topic}-{self.partition} is closed")
        if self._offline_reason is not None:
            raise LogError(f"log {self.topic}-{self.partition} is offline: {self._offline_reason}")

    def _go_offline(self, exc: OSError) -> None:
        """An I/O error leaves files and memory possibly out of step: refuse further use, as
        Kafka takes a failed log directory offline, rather than serve or extend a bad log."""
        self._offline_reason = str(exc)
        logger.error("log %s-%d is offline: %s", self.topic, self.partition, exc)
        raise LogError(f"I/O error on {self.topic}-{self.partition}: {exc}") from exc

    def __repr__(self) -> str:
        return (
            f"PartitionLog({self.topic}-{self.partition}, "
            f"log_start_offset={self.log_start_offset}, log_end_offset={self.log_end_offset}, "
            f"segments={len(self._segments)})"
        )


def _check_buffer(view: memoryview, headers: list[BatchHeader]) -> None:
    if not headers:
        raise ValueError("an append needs at least one batch")
    if headers[0].position != 0 or headers[-1].position + headers[-1].size_bytes != len(view):
        raise ValueError("headers do not describe the whole records buffer")


def _read_partition_metadata(path: Path) -> uuid.UUID | None:
    fields = {}
    for line in path.read_text(encoding="ascii").splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    if fields.get("version") != str(_PARTITION_METADATA_VERSION) or "topic_id" not in fields:
        raise LogError(f"{path}: unsupported partition metadata")
    encoded = fields["topic_id"]
    return uuid.UUID(bytes=base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))


def _write_partition_metadata(path: Path, topic_id: uuid.UUID) -> None:
    # Kafka prints a Uuid as base64url without padding.
    encoded = base64.urlsafe_b64encode(topic_id.bytes).decode("ascii").rstrip("=")
    text = f"version: {_PARTITION_METADATA_VERSION}\ntopic_id: {encoded}\n"
    write_file_atomically(path, text.encode("ascii"))


def write_file_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so a crash leaves the old or the new file, never a mix:
    write a temporary file, fsync it, rename it over, fsync the directory."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make file creations, renames and deletions in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
