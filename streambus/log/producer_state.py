"""Per-partition producer state: idempotence (sequence checks, duplicate detection) and the
bookkeeping transactions need (KIP-98), plus its ``.snapshot`` files.

This module owns, for one partition, what each producer id last appended, and the snapshot
file format that lets a restart skip replaying the whole log.  It is pure and synchronous: the
only I/O is in the four snapshot functions, which touch nothing but ``*.snapshot`` files in
the directory they are given.  It never decides offsets or writes batches; the partition log
calls :meth:`ProducerStateManager.check_batches` before an append and
:meth:`ProducerStateManager.update` after it.

Rules, as Kafka's ``ProducerStateManager``/``ProducerAppendInfo``:

* Each producer keeps its last 5 batches (``NUM_BATCHES_TO_RETAIN``), because a producer may
  have 5 requests in flight (``max.in.flight.requests.per.connection`` <= 5 with idempotence);
  a retry of any of them is acknowledged with the original offsets instead of re-appended.
* A batch with an older epoch is fenced (INVALID_PRODUCER_EPOCH, KIP-588 replaced
  PRODUCER_FENCED for produce).  A newer epoch must restart at sequence 0.  The same epoch
  must continue at ``last_sequence + 1``, wrapping from 2**31 - 1 to 0.
* An unknown producer id (never seen, or expired) is accepted at any sequence: since KIP-360
  the broker no longer answers UNKNOWN_PRODUCER_ID for it.
* Kafka no longer answers DUPLICATE_SEQUENCE_NUMBER either: a duplicate older than the 5
  retained batches is OUT_OF_ORDER_SEQUENCE_NUMBER, as in Kafka.

Snapshot file ``%020d.snapshot`` (the offset is the log end offset the state covers; all
integers big-endian)::

    offset  size  field
         0     2  version (int16, 1)
         2     4  crc (uint32): CRC-32C of bytes [6, end)
         6     4  producer_count (int32)
        10     -  producers, each:
                    producer_id               int64
                    producer_epoch            int16
                    coordinator_epoch         int32
                    current_txn_first_offset  int64   -1 when no transaction is open
                    last_timestamp            int64
                    batch_count               int8    0..5, oldest first
                    batches, each: first_sequence int32, last_sequence int32,
                                   first_offset int64, last_offset int64, timestamp int64

Unlike Kafka's snapshots (which keep only each producer's last batch), all retained batches are
stored, so retries are still recognised after a restart.
"""

from __future__ import annotations

import logging
import os
import re
import struct
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from crc32c import crc32c

from streambus.protocol.records.batch import (
    NO_PRODUCER_EPOCH,
    NO_SEQUENCE,
    BatchHeader,
)

__all__ = [
    "NUM_BATCHES_TO_RETAIN",
    "PRODUCER_ID_EXPIRATION_MS_DEFAULT",
    "SNAPSHOT_FILE_SUFFIX",
    "BatchMetadata",
    "DuplicateBatch",
    "ProducerStateEntry",
    "ProducerStateManager",
    "ProducerStateError",
    "OutOfOrderSequenceError",
    "InvalidProducerEpochError",
    "InvalidTxnStateError",
    "TransactionCoordinatorFencedError",
    "snapshot_file_name",
    "list_snapshot_offsets",
]

logger = logging.getLogger(__name__)

#: Kafka's ``ProducerStateEntry.NUM_BATCHES_TO_RETAIN``.
NUM_BATCHES_TO_RETAIN = 5
#: Kafka's ``producer.id.expiration.ms`` default (KIP-854): one day.
PRODUCER_ID_EXPIRATION_MS_DEFAULT = 24 * 60 * 60 * 1000
SNAPSHOT_FILE_SUFFIX = ".snapshot"

_SEQUENCE_MODULUS = 1 << 31
_SNAPSHOT_VERSION = 1
_SNAPSHOT_HEADER = struct.Struct(">hIi")  # version, crc, producer_count
_SNAPSHOT_CRC_START = 6
_SNAPSHOT_ENTRY = struct.Struct(">qhiqqb")
_SNAPSHOT_BATCH = struct.Struct(">iiqqq")
_INT32 = struct.Struct(">i")
_SNAPSHOT_NAME = re.compile(r"^(\d{20})\.snapshot$")
_NO_OFFSET = -1


class ProducerStateError(Exception):
    """A batch breaks a producer's epoch or sequence rules; nothing of the request is written.

    ``error_code`` is the Kafka error number the Produce response carries.
    """

    error_code: int = -1


class OutOfOrderSequenceError(ProducerStateError):
    """The batch's first sequence does not follow the producer's last one."""

    error_code = 45  # OUT_OF_ORDER_SEQUENCE_NUMBER


class InvalidProducerEpochError(ProducerStateError):
    """The batch's producer epoch is older than the producer's current epoch (fenced)."""

    error_code = 47  # INVALID_PRODUCER_EPOCH


class InvalidTxnStateError(ProducerStateError):
    """A non-transactional batch from a producer whose transaction is still open here
    (Kafka's ``ProducerAppendInfo.appendDataBatch``)."""

    error_code = 48  # INVALID_TXN_STATE


class TransactionCoordinatorFencedError(ProducerStateError):
    """A transaction marker from a coordinator epoch older than one this partition has seen
    for the producer: a deposed coordinator must not complete the transaction (KIP-98)."""

    error_code = 52  # TRANSACTION_COORDINATOR_FENCED


@dataclass(frozen=True, slots=True)
class BatchMetadata:
    """Where one appended batch of a producer landed, for duplicate detection."""

    first_sequence: int
    last_sequence: int
    first_offset: int
    last_offset: int
    timestamp: int
    """The batch's max timestamp as stored (the LogAppendTime when the topic uses it)."""


@dataclass(frozen=True, slots=True)
class DuplicateBatch:
    """The batch is a retry of one already in the log: acknowledge these offsets, append nothing."""

    first_offset: int
    last_offset: int
    timestamp: int


@dataclass(slots=True)
class ProducerStateEntry:
    """What one producer id has appended to this partition."""

    producer_id: int
    producer_epoch: int = NO_PRODUCER_EPOCH
    batches: deque[BatchMetadata] = field(
        default_factory=lambda: deque(maxlen=NUM_BATCHES_TO_RETAIN)
    )
    """The last ``NUM_BATCHES_TO_RETAIN`` batches of the current epoch, oldest first."""
    coordinator_epoch: int = -1
    current_txn_first_offset: int | None = None
    """First offset of the producer's open transaction, or ``None`` when none is open."""
    last_timestamp: int = -1

    @property
    def last_sequence(self) -> int:
        return self.batches[-1].last_sequence if self.batches else NO_SEQUENCE

    @property
    def last_offset(self) -> int:
        return self.batches[-1].last_offset if self.batches else _NO_OFFSET

    def find_duplicate(self, header: BatchHeader) -> BatchMetadata | None:
        """The retained batch with exactly this epoch and sequence range, if any."""
        if header.producer_epoch != self.producer_epoch:
            return None
        for batch in self.batches:
            if (
                batch.first_sequence == header.base_sequence
                and batch.last_sequence == header.last_sequence
            ):
                return batch
        return None


def _in_sequence(last_sequence: int, next_sequence: int) -> bool:
    # Sequences are int32 and wrap from Integer.MAX_VALUE to 0 (KIP-98).
    return next_sequence == (last_sequence + 1) % _SEQUENCE_MODULUS and last_sequence >= -1


def _check_sequence(current_epoch: int, last_sequence: int, header: BatchHeader) -> None:
    """Kafka's ``ProducerAppendInfo.checkProducerEpoch`` then ``checkSequence``.

    Raises:
        InvalidProducerEpochError: the batch's epoch is older than ``current_epoch``.
        OutOfOrderSequenceError: the sequence does not continue the producer's.
    """
    if current_epoch == NO_PRODUCER_EPOCH:
        # Unknown producer (new, expired or deleted by retention): any sequence is accepted
        # (KIP-360 retired UNKNOWN_PRODUCER_ID for this case).
        return
    epoch = header.producer_epoch
    if epoch < current_epoch:
        raise InvalidProducerEpochError(
            f"producer {header.producer_id} epoch {epoch} is older than {current_epoch}"
        )
    if epoch > current_epoch:
        if header.base_sequence != 0:
            raise OutOfOrderSequenceError(
                f"producer {header.producer_id} new epoch {epoch} starts at sequence "
                f"{header.base_sequence}, not 0"
            )
        return
    if not _in_sequence(last_sequence, header.base_sequence):
        raise OutOfOrderSequenceError(
            f"producer {header.producer_id} epoch {epoch}: sequence {header.base_sequence} "
            f"does not follow {last_sequence}"
        )


class ProducerStateManager:
    """Producer ids -> :class:`ProducerStateEntry` for one partition.  Not thread-safe.

    Append protocol for the partition log (leader):

    1. ``check_batches(headers)`` before writing.  A :class:`DuplicateBatch` means "acknowledge
       with those offsets, write nothing"; an exception means "write nothing, answer with its
       ``error_code``".  It validates every batch against the state *including the earlier
       batches of the same request*, which per-batch ``check`` calls cannot do.
    2. Write the batches, then ``update(header, first_offset, last_offset, timestamp_ms)``
       for each producer batch, in log order.

    Followers and log recovery skip step 1 and call ``update``/``rebuild_from`` only.
    """

    def __init__(self) -> None:
        self._producers: dict[int, ProducerStateEntry] = {}
        #: producer id -> first offset of its open transaction; derived from the entries, kept
        #: so that the last stable offset costs O(open transactions), not O(producers).
        self._ongoing: dict[int, int] = {}

    # ----------------------------------------------------------------------------- queries

    def entry(self, producer_id: int) -> ProducerStateEntry | None:
        """The state of ``producer_id``, or ``None`` if unknown.  Do not mutate it."""
        return self._producers.get(producer_id)

    def producer_ids(self) -> list[int]:
        return sorted(self._producers)

    def __len__(self) -> int:
        return len(self._producers)

    def entries(self) -> list[ProducerStateEntry]:
        """Every producer's state, by producer id (DescribeProducers).  Do not mutate them."""
        return [self._producers[producer_id] for producer_id in sorted(self._producers)]

    def first_unstable_offset(self) -> int | None:
        """Smallest first offset of an open transaction (bounds the last stable offset)."""
        return min(self._ongoing.values()) if self._ongoing else None

    def ongoing_transactions(self) -> dict[int, int]:
        """Producer id -> first offset of its open transaction (a copy)."""
        return dict(self._ongoing)

    def _reindex_ongoing(self) -> None:
        self._ongoing = {
            producer_id: entry.current_txn_first_offset
            for producer_id, entry in self._producers.items()
            if entry.current_txn_first_offset is not None
        }

    # ----------------------------------------------------------------------------- checks

    def check(self, header: BatchHeader) -> DuplicateBatch | None:
        """Check one batch against the appended state (not against other unwritten batches).

        Returns:
            ``DuplicateBatch`` if the batch repeats one of the producer's retained batches
            (same epoch, same first and last sequence); ``None`` if it may be appended, or if
            it carries no producer id.

        Raises:
            InvalidProducerEpochError: the batch's epoch is older than the producer's.
            OutOfOrderSequenceError: its sequence does not continue the producer's.
        """
        if header.producer_id < 0:
            return None
        entry = self._producers.get(header.producer_id)
        if entry is None:
            return None
        if header.is_control:
            # Transaction markers carry no sequence; only the epoch fences them.
            if header.producer_epoch < entry.producer_epoch:
                raise InvalidProducerEpochError(
                    f"marker for producer {header.producer_id} has epoch "
                    f"{header.producer_epoch}, older than {entry.producer_epoch}"
                )
            return None
        duplicate = entry.find_duplicate(header)
        if duplicate is not None:
            return DuplicateBatch(
                duplicate.first_offset, duplicate.last_offset, duplicate.timestamp
            )
        _check_sequence(entry.producer_epoch, entry.last_sequence, header)
        if entry.current_txn_first_offset is not None and not header.is_transactional:
            raise InvalidTxnStateError(
                f"expected a transactional write from producer {header.producer_id}: its "
                f"transaction from offset {entry.current_txn_first_offset} is still open"
            )
        return None

    def check_batches(self, headers: Sequence[BatchHeader]) -> DuplicateBatch | None:
        """Check all batches of one append, in order, each against the state left by the
        ones before it.

        As in Kafka's ``analyzeAndValidateProducerState``, a producer's first batch in the
        request is compared with its retained batches for duplicates; the first duplicate
        found is returned (producers send one batch per partition per request, so a
        duplicate request is a duplicate throughout).

        Raises:
            InvalidProducerEpochError, OutOfOrderSequenceError: as :meth:`check`.
        """
        pending: dict[int, tuple[int, int]] = {}  # producer_id -> (epoch, last_sequence)
        for header in headers:
            producer_id = header.producer_id
            if producer_id < 0:
                continue
            if producer_id not in pending:
                duplicate = self.check(header)
                if duplicate is not None:
                    return duplicate
            else:
                epoch, last_sequence = pending[producer_id]
                if header.is_control:
                    if header.producer_epoch < epoch:
                        raise InvalidProducerEpochError(
                            f"marker for producer {producer_id} has an older epoch"
                        )
                else:
                    _check_sequence(epoch, last_sequence, header)
            pending[producer_id] = self._state_after(header, pending.get(producer_id))
        return None

    def check_epochs(self, headers: Sequence[BatchHeader]) -> None:
        """The checks for a coordinator's own transactional appends (Kafka's
        ``AppendOrigin.COORDINATOR``): no sequences, only fencing of older epochs.

        Raises:
            InvalidProducerEpochError: a batch's epoch is older than its producer's.
        """
        for header in headers:
            entry = self._producers.get(header.producer_id) if header.producer_id >= 0 else None
            if entry is not None and header.producer_epoch < entry.producer_epoch:
                raise InvalidProducerEpochError(
                    f"producer {header.producer_id} epoch {header.producer_epoch} is older "
                    f"than {entry.producer_epoch}")

    def _state_after(
        self, header: BatchHeader, pending: tuple[int, int] | None
    ) -> tuple[int, int]:
        """(epoch, last_sequence) of a producer once ``header`` is appended, as ``update``
        would leave it."""
        if pending is None:
            entry = self._producers.get(header.producer_id)
            pending = (entry.producer_epoch, entry.last_sequence) if entry else None
        if not header.is_control:
            return header.producer_epoch, header.last_sequence
        if pending is not None and pending[0] == header.producer_epoch:
            return pending  # a marker leaves the sequence where it was
        return header.producer_epoch, NO_SEQUENCE  # a new epoch starts afresh

    # ----------------------------------------------------------------------------- updates

    def update(
        self,
        header: BatchHeader,
        first_offset: int,
        last_offset: int,
        timestamp_ms: int,
        *,
        coordinator_epoch: int | None = None,
    ) -> None:
        """Record an appended batch (its ``base_offset`` already assigned).

        Performs no validation: the leader validated with :meth:`check_batches`; followers
        and recovery replay what the leader accepted.  A new epoch discards the retained
        batches of the old one.  A control batch (transaction marker) closes the producer's
        open transaction and, if given, records ``coordinator_epoch``.
        """
        if header.producer_id < 0:
            return
        entry = self._producers.get(header.producer_id)
        if entry is None:
            entry = self._producers[header.producer_id] = ProducerStateEntry(header.producer_id)
        if header.producer_epoch != entry.producer_epoch:
            entry.producer_epoch = header.producer_epoch
            entry.batches.clear()
        entry.last_timestamp = timestamp_ms
        if header.is_control:
            entry.current_txn_first_offset = None
            self._ongoing.pop(header.producer_id, None)
            if coordinator_epoch is not None:
                entry.coordinator_epoch = coordinator_epoch
            return
        if header.base_sequence >= 0:
            entry.batches.append(
                BatchMetadata(
                    header.base_sequence,
                    header.last_sequence,
                    first_offset,
                    last_offset,
                    timestamp_ms,
                )
            )
        if header.is_transactional and entry.current_txn_first_offset is None:
            entry.current_txn_first_offset = first_offset
            self._ongoing[header.producer_id] = first_offset

    def rebuild_from(self, headers: Iterable[BatchHeader]) -> None:
        """Replay batches appended after the loaded snapshot (log recovery), in log order.

        Batches without a producer id are skipped; each batch's own ``max_timestamp`` is used
        as its timestamp, as Kafka does when it reloads from the log.
        """
        for header in headers:
            if header.producer_id >= 0:
                self.update(header, header.base_offset, header.last_offset, header.max_timestamp)

    def truncate_to(self, offset: int) -> None:
        """Forget everything at or after ``offset`` (the log was truncated there).

        Retained batches at or past ``offset`` are dropped; a producer left with no retained
        batches is forgotten, and so becomes "unknown" (any sequence accepted) until it
        appends again.  An open transaction that began at or after ``offset`` is closed.
        Exact state needs :meth:`load_latest_snapshot` plus :meth:`rebuild_from`, which is
        what log recovery does; this is the cheap in-memory form.
        """
        for producer_id in list(self._producers):
            entry = self._producers[producer_id]
            kept = [batch for batch in entry.batches if batch.last_offset < offset]
            if not kept:
                del self._producers[producer_id]
                continue
            entry.batches.clear()
            entry.batches.extend(kept)
            if (
                entry.current_txn_first_offset is not None
                and entry.current_txn_first_offset >= offset
            ):
                entry.current_txn_first_offset = None
        self._reindex_ongoing()

    def remove_expired(
        self, now_ms: int, expiration_ms: int = PRODUCER_ID_EXPIRATION_MS_DEFAULT
    ) -> list[int]:
        """Forget producers idle for ``expiration_ms`` (``producer.id.expiration.ms``).

        A producer with an open transaction never expires here (the transaction coordinator
        aborts it first), as in Kafka's ``isProducerExpired``.

        Returns:
            The removed producer ids, sorted.
        """
        expired = sorted(
            producer_id
            for producer_id, entry in self._producers.items()
            if entry.current_txn_first_offset is None
            and now_ms - entry.last_timestamp >= expiration_ms
        )
        for producer_id in expired:
            del self._producers[producer_id]
        return expired

    def clear(self) -> None:
        self._producers.clear()
        self._ongoing.clear()

    # ----------------------------------------------------------------------------- snapshots

    def encode_snapshot(self) -> bytes:
        """The snapshot bytes of the current state (see the module docstring)."""
        body = bytearray()
        for producer_id in sorted(self._producers):
            entry = self._producers[producer_id]
            body += _SNAPSHOT_ENTRY.pack(
                entry.producer_id,
                entry.producer_epoch,
                entry.coordinator_epoch,
                _NO_OFFSET
                if entry.current_txn_first_offset is None
                else entry.current_txn_first_offset,
                entry.last_timestamp,
                len(entry.batches),
            )
            for batch in entry.batches:
                body += _SNAPSHOT_BATCH.pack(
                    batch.first_sequence,
                    batch.last_sequence,
                    batch.first_offset,
                    batch.last_offset,
                    batch.timestamp,
                )
        count = _INT32.pack(len(self._producers))
        crc = crc32c(count + body)
        return _SNAPSHOT_HEADER.pack(_SNAPSHOT_VERSION, crc, len(self._producers)) + bytes(body)

    def decode_snapshot(self, data: bytes) -> None:
        """Replace the state with a snapshot's.

        Raises:
            ValueError: wrong version, CRC mismatch, truncated or trailing bytes, or
                impossible counts; the state is left unchanged then.
        """
        self._producers = _decode_snapshot(data)
        self._reindex_ongoing()

    def write_snapshot(self, directory: Path, offset: int) -> Path:
        """Write ``%020d.snapshot`` for ``offset`` durably: temp file, fsync, rename, fsync
        the directory, so a crash leaves either the old file set or the complete new file.

        Returns:
            The snapshot's path.
        """
        directory = Path(directory)
        path = directory / snapshot_file_name(offset)
        temp_path = path.with_name(path.name + ".tmp")
        data = self.encode_snapshot()
        with open(temp_path, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_path, path)
        _fsync_directory(directory)
        return path

    def load_latest_snapshot(self, directory: Path, max_offset: int) -> int | None:
        """Load the newest valid snapshot at or below ``max_offset``.

        Corrupt snapshots are deleted (and logged) and the next older one is tried; leftover
        temp files from an interrupted write are deleted too.  When none is usable the state
        is emptied.

        Returns:
            The loaded snapshot's offset (replay the log from there), or ``None``.
        """
        directory = Path(directory)
        for temp_path in directory.glob(f"*{SNAPSHOT_FILE_SUFFIX}.tmp"):
            temp_path.unlink(missing_ok=True)
        for offset in sorted(
            (o for o in list_snapshot_offsets(directory) if o <= max_offset), reverse=True
        ):
            path = directory / snapshot_file_name(offset)
            try:
                producers = _decode_snapshot(path.read_bytes())
            except ValueError as error:
                logger.warning("deleting corrupt producer state snapshot %s: %s", path, error)
                path.unlink(missing_ok=True)
                continue
            self._producers = producers
            self._reindex_ongoing()
            return offset
        self._producers = {}
        self._ongoing = {}
        return None

    def delete_snapshots_after(self, directory: Path, offset: int) -> list[int]:
        """Delete snapshots whose offset is greater than ``offset`` (after log truncation;
        ``-1`` deletes them all).

        Returns:
            The deleted snapshot offsets, ascending.
        """
        return _delete_snapshots(directory, lambda snapshot_offset: snapshot_offset > offset)

    def delete_snapshots_before(self, directory: Path, offset: int) -> list[int]:
        """Delete snapshots whose offset is below ``offset`` (the log start moved past them).

        Returns:
            The deleted snapshot offsets, ascending.
        """
        return _delete_snapshots(directory, lambda snapshot_offset: snapshot_offset < offset)


def snapshot_file_name(offset: int) -> str:
    """``%020d.snapshot``: zero-padded so that ``ls`` sorts by offset, as Kafka names it."""
    if offset < 0:
        raise ValueError(f"snapshot offset {offset} is negative")
    return f"{offset:020d}{SNAPSHOT_FILE_SUFFIX}"


def list_snapshot_offsets(directory: Path) -> list[int]:
    """Offsets of the ``*.snapshot`` files in ``directory``, ascending."""
    return sorted(_iter_snapshot_offsets(Path(directory)))


def _iter_snapshot_offsets(directory: Path) -> Iterator[int]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for name in names:
        match = _SNAPSHOT_NAME.match(name)
        if match is not None:
            yield int(match.group(1))


def _delete_snapshots(directory: Path, should_delete: Callable[[int], bool]) -> list[int]:
    directory = Path(directory)
    deleted = [offset for offset in list_snapshot_offsets(directory) if should_delete(offset)]
    for offset in deleted:
        (directory / snapshot_file_name(offset)).unlink(missing_ok=True)
    if deleted:
        _fsync_directory(directory)
    return deleted


def _fsync_directory(directory: Path) -> None:
    # A rename or unlink is durable only once the directory entry itself is synced.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _decode_snapshot(data: bytes) -> dict[int, ProducerStateEntry]:
    if len(data) < _SNAPSHOT_HEADER.size:
        raise ValueError("snapshot is truncated")
    version, crc, producer_count = _SNAPSHOT_HEADER.unpack_from(data, 0)
    if version != _SNAPSHOT_VERSION:
        raise ValueError(f"snapshot version {version} is not supported")
    if crc32c(data[_SNAPSHOT_CRC_START:]) != crc:
        raise ValueError("snapshot CRC mismatch")
    if producer_count < 0:
        raise ValueError(f"snapshot producer count {producer_count} is invalid")
    producers: dict[int, ProducerStateEntry] = {}
    position = _SNAPSHOT_HEADER.size
    try:
        for _ in range(producer_count):
            (
                producer_id,
                producer_epoch,
                coordinator_epoch,
                txn_first_offset,
                last_timestamp,
                batch_count,
            ) = _SNAPSHOT_ENTRY.unpack_from(data, position)
            position += _SNAPSHOT_ENTRY.size
            if not 0 <= batch_count <= NUM_BATCHES_TO_RETAIN:
                raise ValueError(f"snapshot batch count {batch_count} is invalid")
            entry = ProducerStateEntry(
                producer_id,
                producer_epoch,
                coordinator_epoch=coordinator_epoch,
                current_txn_first_offset=None if txn_first_offset < 0 else txn_first_offset,
                last_timestamp=last_timestamp,
            )
            for _ in range(batch_count):
                entry.batches.append(BatchMetadata(*_SNAPSHOT_BATCH.unpack_from(data, position)))
                position += _SNAPSHOT_BATCH.size
            producers[producer_id] = entry
    except struct.error:
        raise ValueError("snapshot is truncated") from None
    if position != len(data):
        raise ValueError(f"snapshot has {len(data) - position} trailing bytes")
    return producers
