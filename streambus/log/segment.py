"""One log segment: the ``.log`` file of batches for a range of offsets, plus its indexes.

This module owns reading and writing a segment's files.  It never decides when to roll, what
offsets to assign or whether a producer's batch is a duplicate (``partition_log.py`` does).

Files, all named by the segment's ``base_offset`` (see ``file_names.py``)::

    00000000000000000000.log        record batches v2, back to back, exactly as produced
                                    (layout in protocol/records/batch.py); no segment header
    00000000000000000000.index      offset index (offset_index.py)
    00000000000000000000.timeindex  time index (time_index.py)
    00000000000000000000.txnindex   aborted transactions whose ABORT marker is here
                                    (txn_index.py; created on the first abort only)

Writes go through ``os.pwrite`` at the tracked end position on a descriptor without
``O_APPEND`` and without userspace buffering, so once :meth:`LogSegment.append` returns the
bytes are in the kernel: a killed process loses nothing, only power loss can, and
:meth:`LogSegment.flush` (fsync) guards against that.  Reads use ``os.pread`` of a window and
parse batch headers from it, never one syscall per batch.

Not thread-safe: the partition log serialises every call.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, NamedTuple

from crc32c import crc32c

from streambus.log.errors import CorruptIndexError
from streambus.log.file_names import index_file_path, log_file_path, time_index_file_path
from streambus.log.offset_index import MAX_RELATIVE_OFFSET, OffsetIndex, _pread_fully, _pwrite_fully
from streambus.log.time_index import TimeIndex
from streambus.log.txn_index import TransactionIndex, txn_index_file_path
from streambus.protocol.records.batch import (
    BATCH_HEADER_SIZE,
    MAGIC_V2,
    BatchHeader,
    read_batch_header,
    scan_valid_prefix,
)

__all__ = ["LogSegment", "SegmentRead", "NO_TIMESTAMP"]

NO_TIMESTAMP = -1

#: Bytes read at once while looking for a batch boundary.  The offset index has an entry every
#: ``index_interval_bytes`` (4 KiB by default), so one window usually covers the whole search.
_SEARCH_WINDOW_BYTES = 16 * 1024
#: Bytes read at once during recovery; larger batches are verified in chunks of this size.
_RECOVERY_WINDOW_BYTES = 1024 * 1024
#: The CRC covers a batch from its attributes field (position 21) to its end.
_CRC_SCOPE_START = 21


class SegmentRead(NamedTuple):
    """Whole batches read from one segment."""

    records: bytes | memoryview
    """Consecutive complete batches; empty only when the first batch exceeds ``max_bytes``
    and ``min_one_batch`` is False."""
    base_offset: int
    """``base_offset`` of the first batch, which may be below the requested offset."""
    next_offset: int
    """Offset after the last returned batch."""
    reached_end: bool
    """True when the read stopped only because the segment had no more batches, so a caller
    with room left may continue into the next segment."""


class LogSegment:
    """The ``.log``, ``.index`` and ``.timeindex`` files of one segment.

    Create with :meth:`open`, then call :meth:`load` (cheap consistency check, raises
    :class:`CorruptIndexError`) or :meth:`recover` (full scan) before use.
    """

    def __init__(
        self,
        directory: Path,
        base_offset: int,
        *,
        index_interval_bytes: int,
        segment_index_bytes: int,
        created_ms: int,
    ) -> None:
        self.directory = directory
        self.base_offset = base_offset
        self.index_interval_bytes = index_interval_bytes
        self.created_ms = created_ms
        """Wall time the segment was created or opened: the roll clock when batches carry no
        timestamp."""
        self.log_path = log_file_path(directory, base_offset)
        self._fd = os.open(self.log_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            self.offset_index = OffsetIndex(
                index_file_path(directory, base_offset), base_offset, segment_index_bytes
            )
            self.time_index = TimeIndex(
                time_index_file_path(directory, base_offset), base_offset, segment_index_bytes
            )
        except BaseException:
            os.close(self._fd)
            raise
        self.txn_index = TransactionIndex(txn_index_file_path(directory, base_offset))
        self._size_bytes = os.fstat(self._fd).st_size
        self._next_offset = base_offset
        self._max_timestamp_ms = NO_TIMESTAMP
        self._offset_of_max_timestamp = base_offset
        self._bytes_since_last_index_entry = 0
        self._first_batch_max_timestamp_ms: int | None = None
        self._dirty = False

    @classmethod
    def open(
        cls,
        directory: Path,
        base_offset: int,
        *,
        index_interval_bytes: int,
        segment_index_bytes: int,
        created_ms: int,
    ) -> LogSegment:
        """Open (creating if missing) the files of the segment at ``base_offset``."""
        return cls(
            directory,
            base_offset,
            index_interval_bytes=index_interval_bytes,
            segment_index_bytes=segment_index_bytes,
            created_ms=created_ms,
        )

    # ----------------------------------------------------------------------------- state

    @property
    def size_bytes(self) -> int:
        """Bytes of batches in the ``.log`` file."""
        return self._size_bytes

    @property
    def next_offset(self) -> int:
        """Offset after the last batch, or ``base_offset`` when the segment is empty."""
        return self._next_offset

    @property
    def largest_timestamp(self) -> int:
        """Largest batch ``max_timestamp`` in the segment, or -1 when empty."""
        return self._max_timestamp_ms

    @property
    def offset_of_largest_timestamp(self) -> int:
        """Last offset of the first batch holding :attr:`largest_timestamp`."""
        return self._offset_of_max_timestamp

    @property
    def is_index_full(self) -> bool:
        return self.offset_index.is_full or self.time_index.is_full

    def can_hold_offset(self, offset: int) -> bool:
        """Whether ``offset`` fits the indexes' 31-bit relative offsets."""
        return 0 <= offset - self.base_offset <= MAX_RELATIVE_OFFSET

    def rolling_based_timestamp(self) -> int | None:
        """``max_timestamp`` of the first batch (Kafka rolls on message time), None if empty."""
        if self._first_batch_max_timestamp_ms is None and self._size_bytes >= BATCH_HEADER_SIZE:
            header = read_batch_header(_pread_fully(self._fd, BATCH_HEADER_SIZE, 0))
            self._first_batch_max_timestamp_ms = header.max_timestamp
        return self._first_batch_max_timestamp_ms

    # ----------------------------------------------------------------------------- load

    def load(self) -> None:
        """Check the indexes against the ``.log`` and find the segment's end state.

        Cost is one window read: the tail after the last offset-index entry is scanned to find
        ``next_offset`` and the largest timestamp.

        Raises:
            CorruptIndexError: an index fails its sanity check, or the ``.log`` does not end on
                a batch boundary after the last index entry; the caller should :meth:`recover`.
        """
        self.offset_index.sanity_check(self._size_bytes)
        self._load_tail()
        self.time_index.sanity_check(self._next_offset)

    def _load_tail(self) -> None:
        """Recompute end state from the last index entries plus the batches after them."""
        indexed_offset, position = self.offset_index.last_entry()
        last_time_entry = self.time_index.last_entry()
        if last_time_entry is None:
            self._max_timestamp_ms, self._offset_of_max_timestamp = NO_TIMESTAMP, self.base_offset
        else:
            self._max_timestamp_ms, self._offset_of_max_timestamp = last_time_entry
        self._next_offset = self.base_offset
        self._bytes_since_last_index_entry = self._size_bytes - position
        end_position = position
        for header in self._iter_headers(position, self._size_bytes):
            if header.base_offset < self._next_offset:
                raise CorruptIndexError(
                    f"{self.log_path}: offsets go backwards at {header.position}"
                )
            if position > 0 and header.position == position:
                if header.last_offset != indexed_offset:
                    raise CorruptIndexError(
                        f"{self.offset_index.path}: last entry does not match the log"
                    )
            self._track_timestamp(header)
            self._next_offset = header.next_offset
            end_position = header.position + header.size_bytes
        if end_position != self._size_bytes:
            raise CorruptIndexError(f"{self.log_path}: no batch boundary at the end of the log")

    def recover(self, max_message_bytes: int | None = None) -> int:
        """Rebuild both indexes from the ``.log`` and cut it after the last valid batch.

        A batch is valid when it is complete, magic 2, its CRC matches and its offsets follow
        the previous batch's.  Everything from the first invalid batch on is truncated.

        Args:
            max_message_bytes: batches larger than this (or than 1 MiB) have their CRC checked
                in chunks rather than read whole, so a corrupt length cannot exhaust memory.

        Returns:
            The number of bytes truncated.
        """
        window_bytes = max(max_message_bytes or 0, _RECOVERY_WINDOW_BYTES)
        self.offset_index.reset()
        self.time_index.reset()
        self._next_offset = self.base_offset
        self._max_timestamp_ms, self._offset_of_max_timestamp = NO_TIMESTAMP, self.base_offset
        self._bytes_since_last_index_entry = 0
        self._first_batch_max_timestamp_ms = None
        position = 0
        while position < self._size_bytes:
            window_size_bytes = min(window_bytes, self._size_bytes - position)
            window = _pread_fully(self._fd, window_size_bytes, position)
            end, headers = scan_valid_prefix(window, 0, expected_offset=self._next_offset)
            if not headers:
                large = self._verify_large_batch(window, position)
                if large is None:
                    break
                headers, end = [large], large.size_bytes
            accepted_end = position
            for header in headers:
                if not self.can_hold_offset(header.last_offset):
                    break  # Kafka's segments never hold such offsets; treat as corruption.
                header.position = accepted_end
                self._index_batch(header)
                self._next_offset = header.next_offset
                accepted_end += header.size_bytes
            stopped_early = accepted_end < position + end
            position = accepted_end
            if stopped_early:
                break
        truncated_bytes = self._size_bytes - position
        if truncated_bytes:
            os.ftruncate(self._fd, position)
            self._size_bytes = position
            self._dirty = True
        # Aborts whose marker was cut off go too; the partition log re-adds any the replay of
        # producer state finds missing.
        self.txn_index.truncate_to(self._next_offset)
        return truncated_bytes

    def _verify_large_batch(self, window: bytes, position: int) -> BatchHeader | None:
        """Validate a batch bigger than the recovery window by streaming its CRC."""
        if len(window) < BATCH_HEADER_SIZE:
            return None
        header = read_batch_header(window, 0)
        size_bytes = header.size_bytes
        if (
            size_bytes <= len(window)
            or position + size_bytes > self._size_bytes
            or header.magic != MAGIC_V2
            or header.last_offset_delta < 0
            or header.base_offset < self._next_offset
        ):
            return None
        crc = crc32c(memoryview(window)[_CRC_SCOPE_START:])
        chunk_position = position + len(window)
        end_position = position + size_bytes
        while chunk_position < end_position:
            chunk = _pread_fully(
                self._fd, min(_RECOVERY_WINDOW_BYTES, end_position - chunk_position), chunk_position
            )
            if not chunk:
                return None
            crc = crc32c(chunk, crc)
            chunk_position += len(chunk)
        return header if crc == header.crc else None

    # ----------------------------------------------------------------------------- write

    def append(self, records: bytes | bytearray | memoryview, headers: list[BatchHeader]) -> None:
        """Write whole batches at the end of the ``.log`` and index them.

        Args:
            records: the batches, back to back; offsets already assigned.
            headers: their headers, with positions relative to ``records``, in order.

        The bytes reach the kernel with ``pwrite`` before this returns.  Index entries are
        written afterwards: a crash between the two leaves an index that recovery rebuilds.
        """
        view = memoryview(records)
        assert headers and headers[0].position == 0
        assert headers[-1].position + headers[-1].size_bytes == len(view)
        assert headers[0].base_offset >= self._next_offset
        assert self.can_hold_offset(headers[-1].last_offset)
        position = self._size_bytes
        _pwrite_fully(self._fd, view, position)
        self._size_bytes = position + len(view)
        self._next_offset = headers[-1].next_offset
        self._dirty = True
        if position == 0:
            self._first_batch_max_timestamp_ms = headers[0].max_timestamp
        for header in headers:
            # The caller's headers stay relative to its buffer; index with file positions.
            self._index_batch(header, position + header.position)

    def _index_batch(self, header: BatchHeader, position: int | None = None) -> None:
        """Account one appended batch: timestamp tracking and, every interval, index entries."""
        self._track_timestamp(header)
        if self._bytes_since_last_index_entry > self.index_interval_bytes:
            if not self.offset_index.is_full:
                self.offset_index.append(
                    header.last_offset, header.position if position is None else position
                )
                self.time_index.maybe_append(self._max_timestamp_ms, self._offset_of_max_timestamp)
            self._bytes_since_last_index_entry = 0
        self._bytes_since_last_index_entry += header.size_bytes

    def _track_timestamp(self, header: BatchHeader) -> None:
        if header.max_timestamp > self._max_timestamp_ms:
            self._max_timestamp_ms = header.max_timestamp
            self._offset_of_max_timestamp = header.last_offset

    def truncate_to(self, offset: int) -> int:
        """Remove the batch holding ``offset`` and every later one.

        A batch is never split: truncating into the middle of a batch removes all of it, so the
        segment's ``next_offset`` may end up below ``offset``.

        Returns:
            The number of bytes removed.
        """
        header = self._find_batch(offset, self._size_bytes)
        if header is None:
            return 0
        truncated_bytes = self._size_bytes - header.position
        os.ftruncate(self._fd, header.position)
        self._size_bytes = header.position
        self._dirty = True
        self.offset_index.truncate_to(header.base_offset)
        self.time_index.truncate_to(header.base_offset)
        self.txn_index.truncate_to(header.base_offset)
        self._first_batch_max_timestamp_ms = None
        self._load_tail()
        return truncated_bytes

    # ----------------------------------------------------------------------------- read

    def read(
        self,
        start_offset: int,
        max_bytes: int,
        *,
        max_offset: int | None = None,
        max_position: int | None = None,
        min_one_batch: bool = True,
    ) -> SegmentRead | None:
        """Read whole batches starting with the one that holds ``start_offset``.

        Args:
            start_offset: first wanted offset; the batch holding it is returned whole, so the
                result may start below it.
            max_bytes: byte budget for the result.
            max_offset: exclusive bound (e.g. the high watermark): a batch is returned only if
                its last offset is below it.
            max_position: exclusive bound on file positions to read.
            min_one_batch: return the first batch even if it alone exceeds ``max_bytes``, so a
                consumer can always make progress (KIP-74).

        Returns:
            The batches, or None when no batch at or after ``start_offset`` is within bounds
            (the caller may look in the next segment).
        """
        end_position = self._size_bytes
        if max_position is not None:
            end_position = min(max_position, end_position)
        first = self._find_batch(start_offset, end_position)
        if first is None or (max_offset is not None and first.last_offset >= max_offset):
            return None
        start_position = first.position
        window_bytes = min(max(max_bytes, BATCH_HEADER_SIZE), end_position - start_position)
        window = _pread_fully(self._fd, window_bytes, start_position)
        position = 0
        next_offset = first.base_offset
        reached_end = False
        while True:
            if start_position + position >= end_position:
                reached_end = True
                break
            if len(window) - position < BATCH_HEADER_SIZE:
                break
            header = read_batch_header(window, position)
            if max_offset is not None and header.last_offset >= max_offset:
                break
            if position + header.size_bytes > len(window):
                if position == 0 and min_one_batch:
                    # KIP-74: an oversized first batch is returned alone rather than never.
                    window = _pread_fully(self._fd, header.size_bytes, start_position)
                    position = header.size_bytes
                    next_offset = header.next_offset
                    reached_end = start_position + position >= end_position
                break
            position += header.size_bytes
            next_offset = header.next_offset
        # A view, not a slice: trimming a partial batch off a 1 MiB window must not copy it.
        records = window if position == len(window) else memoryview(window)[:position]
        return SegmentRead(records, first.base_offset, next_offset, reached_end)

    def read_bytes(self, position: int, size_bytes: int) -> bytes:
        """Raw bytes of the ``.log`` (for example one batch found by a header search)."""
        return _pread_fully(self._fd, size_bytes, position)

    def batch_headers(self, start_offset: int | None = None) -> Iterator[BatchHeader]:
        """Headers (with file positions) of the batches from the one holding ``start_offset``."""
        position = 0
        if start_offset is not None:
            header = self._find_batch(start_offset, self._size_bytes)
            if header is None:
                return
            position = header.position
        yield from self._iter_headers(position, self._size_bytes)

    def find_batch_by_timestamp(
        self, timestamp_ms: int, start_offset: int | None = None
    ) -> BatchHeader | None:
        """Header of the first batch with ``max_timestamp >= timestamp_ms`` whose last offset is
        >= ``start_offset`` (the log start, or where a previous search left off), if any."""
        if self._max_timestamp_ms < timestamp_ms:
            return None
        search_offset = self.time_index.lookup(timestamp_ms)
        if start_offset is not None:
            search_offset = max(search_offset, start_offset)
        _, position = self.offset_index.lookup(search_offset)
        for header in self._iter_headers(position, self._size_bytes):
            if header.max_timestamp >= timestamp_ms and header.last_offset >= search_offset:
                return header
        return None

    def _find_batch(self, offset: int, end_position: int) -> BatchHeader | None:
        """The first batch before ``end_position`` whose last offset is >= ``offset``."""
        _, position = self.offset_index.lookup(offset)
        for header in self._iter_headers(position, end_position):
            if header.last_offset >= offset:
                return header
        return None

    def _iter_headers(self, position: int, end_position: int) -> Iterator[BatchHeader]:
        """Yield headers of consecutive batches in [position, end_position), reading windows.

        Trusts the file (it is our own log) but stops at anything that could loop forever or
        run past ``end_position``: a short or absurd length.  Positions are file positions.
        """
        window = b""
        window_position = position
        while end_position - position >= BATCH_HEADER_SIZE:
            relative = position - window_position
            if relative + BATCH_HEADER_SIZE > len(window):
                window_position, relative = position, 0
                window = _pread_fully(
                    self._fd, min(_SEARCH_WINDOW_BYTES, end_position - position), position
                )
                if len(window) < BATCH_HEADER_SIZE:
                    return
            header = read_batch_header(window, relative)
            size_bytes = header.size_bytes
            if size_bytes < BATCH_HEADER_SIZE or position + size_bytes > end_position:
                return
            header.position = position
            yield header
            position += size_bytes

    # ----------------------------------------------------------------------------- lifecycle

    def flush(self) -> None:
        """fsync the ``.log`` and its indexes."""
        if self._dirty:
            os.fsync(self._fd)
            self._dirty = False
        self.offset_index.flush()
        self.time_index.flush()
        self.txn_index.flush()

    def close(self, *, write_pending_index_entries: bool = True) -> None:
        """Close the files; index entries not yet written are written unless told not to
        (an unclean close that should leave the files as a crash would)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.offset_index.close(write_pending=write_pending_index_entries)
        self.time_index.close(write_pending=write_pending_index_entries)

    def delete(self) -> None:
        """Close and remove the segment's files."""
        self.close()
        self.log_path.unlink(missing_ok=True)
        self.offset_index.delete()
        self.time_index.delete()
        self.txn_index.delete()

    def __repr__(self) -> str:
        return (
            f"LogSegment(base_offset={self.base_offset}, next_offset={self._next_offset}, "
            f"size_bytes={self._size_bytes})"
        )

