"""The offset index of one segment: sparse offset -> position entries.

This module owns the ``.index`` file format and the shared index-file mechanics (also used by
``time_index.py``).  It never reads the segment's ``.log``.

Layout: a flat array of 8-byte big-endian entries, no header and no checksum::

    offset  size  field
         0     4  relative_offset   u32: entry offset - segment base_offset
         4     4  position          u32: byte position of the batch in the .log file

An entry ``(offset, position)`` says that the batch at ``position`` has ``offset`` as its last
offset (Kafka indexes ``batch.lastOffset``).  Entries are sparse, one per
``index_interval_bytes`` of appended batches, and strictly increasing in both fields, so the
greatest entry <= a target offset gives a safe position to start scanning from.

The file is only ever appended (never preallocated), so there is nothing to trim on close.
The whole index is kept in memory as a ``bytearray`` and searched by bisection; new entries
are written behind, on flush or close (see :class:`IndexFile`).  Because the
index carries no checksum it is rebuilt from the log after an unclean shutdown; on every open it
is sanity-checked and a failure raises :class:`CorruptIndexError` so the log rebuilds it.
Not thread-safe.
"""

from __future__ import annotations

import array
import operator
import os
import struct
import sys
from pathlib import Path

from streambus.log.errors import CorruptIndexError

__all__ = ["OffsetIndex", "OFFSET_INDEX_ENTRY_SIZE", "MAX_RELATIVE_OFFSET"]

OFFSET_INDEX_ENTRY_SIZE = 8
#: Relative offsets are stored as u32 but Kafka keeps them below 2**31 so they fit a Java int;
#: we keep the same bound so a segment written here stays readable by Kafka's tools.
MAX_RELATIVE_OFFSET = 2**31 - 1

_ENTRY = struct.Struct(">II")


class IndexFile:
    """Fixed-size entries kept in memory and written behind to an append-only file.

    Base of both indexes.  New entries reach the file on :meth:`flush` or :meth:`close`, not
    one syscall each: an index only has to be complete on disk for segments below the
    recovery point (which were flushed) or after a clean close; everything else is rebuilt
    from the ``.log`` by recovery after a crash.
    """

    entry_size: int = 0

    def __init__(self, path: Path, base_offset: int, max_index_size_bytes: int) -> None:
        self.path = path
        self.base_offset = base_offset
        # Kafka rounds the index size down to a whole number of entries.
        self.max_entries_count = max(1, max_index_size_bytes // self.entry_size)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        size_bytes = os.fstat(self._fd).st_size
        self._entries = bytearray(_pread_fully(self._fd, size_bytes, 0))
        self._written_bytes = len(self._entries)
        """Prefix of ``_entries`` already in the file."""
        self._synced = True

    @property
    def entries_count(self) -> int:
        return len(self._entries) // self.entry_size

    @property
    def size_bytes(self) -> int:
        return len(self._entries)

    @property
    def is_full(self) -> bool:
        return self.entries_count >= self.max_entries_count

    def _append_entry(self, entry: bytes) -> None:
        self._entries += entry

    def _truncate_entries(self, entries_count: int) -> None:
        size_bytes = entries_count * self.entry_size
        if size_bytes < len(self._entries):
            del self._entries[size_bytes:]
        if size_bytes < self._written_bytes:
            os.ftruncate(self._fd, size_bytes)
            self._written_bytes = size_bytes
            self._synced = False

    def _check_size(self) -> None:
        if len(self._entries) % self.entry_size:
            raise CorruptIndexError(
                f"{self.path}: size {len(self._entries)} is not a multiple of {self.entry_size}"
            )

    def reset(self) -> None:
        """Remove every entry (before a rebuild)."""
        self._truncate_entries(0)

    def _write_pending(self) -> None:
        if self._written_bytes < len(self._entries):
            pending = memoryview(self._entries)[self._written_bytes :]
            _pwrite_fully(self._fd, pending, self._written_bytes)
            pending.release()
            self._written_bytes = len(self._entries)
            self._synced = False

    def flush(self) -> None:
        """Write pending entries and fsync the file."""
        self._write_pending()
        if not self._synced:
            os.fsync(self._fd)
            self._synced = True

    def close(self, *, write_pending: bool = True) -> None:
        """Write pending entries (no fsync) and close the file.  ``write_pending=False``
        drops them, leaving the file as a killed process would."""
        if self._fd >= 0:
            try:
                if write_pending:
                    self._write_pending()
            finally:
                os.close(self._fd)
                self._fd = -1

    def delete(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.path.unlink(missing_ok=True)


class OffsetIndex(IndexFile):
    """Sparse map from offset to the position of a batch in the segment's ``.log`` file."""

    entry_size = OFFSET_INDEX_ENTRY_SIZE

    def entry(self, index: int) -> tuple[int, int]:
        """The ``index``-th entry as (offset, position)."""
        relative_offset, position = _ENTRY.unpack_from(self._entries, index * self.entry_size)
        return self.base_offset + relative_offset, position

    def last_entry(self) -> tuple[int, int]:
        """The last entry, or (base_offset, 0) when the index is empty."""
        if not self._entries:
            return self.base_offset, 0
        return self.entry(self.entries_count - 1)

    def append(self, offset: int, position: int) -> None:
        """Add an entry; ``offset`` and ``position`` must exceed the previous entry's.

        Raises:
            ValueError: the entry would break monotonicity or the u32 encoding (a caller bug:
                the segment rolls before offsets or positions overflow).
        """
        relative_offset = offset - self.base_offset
        if not 0 <= relative_offset <= MAX_RELATIVE_OFFSET or not 0 <= position < 2**32:
            raise ValueError(
                f"entry ({offset}, {position}) does not fit segment {self.base_offset}"
            )
        if self._entries:
            last_offset, last_position = self.last_entry()
            if offset <= last_offset or position <= last_position:
                raise ValueError(
                    f"entry ({offset}, {position}) is not after ({last_offset}, {last_position})"
                )
        self._append_entry(_ENTRY.pack(relative_offset, position))

    def lookup(self, target_offset: int) -> tuple[int, int]:
        """The greatest entry whose offset is <= ``target_offset``, as (offset, position).

        Returns (base_offset, 0) when every entry is above the target or the index is empty:
        scanning from the start of the segment is always safe.
        """
        relative_target = target_offset - self.base_offset
        low, high = 0, self.entries_count - 1
        found = -1
        while low <= high:
            middle = (low + high) // 2
            relative_offset = _ENTRY.unpack_from(self._entries, middle * self.entry_size)[0]
            if relative_offset <= relative_target:
                found = middle
                low = middle + 1
            else:
                high = middle - 1
        if found < 0:
            return self.base_offset, 0
        return self.entry(found)

    def truncate_to(self, offset: int) -> None:
        """Remove every entry whose offset is >= ``offset``."""
        keep = self.entries_count
        while keep > 0 and self.entry(keep - 1)[0] >= offset:
            keep -= 1
        self._truncate_entries(keep)

    def sanity_check(self, log_size_bytes: int) -> None:
        """Check that the index could describe a ``.log`` of ``log_size_bytes``.

        Raises:
            CorruptIndexError: torn size, non-increasing entries, or a position past the log
                (for example a zeroed or stale file).
        """
        self._check_size()
        if not self._entries:
            return
        # Every entry is checked (a single bad one would send reads to the wrong batch), at C
        # speed: unpack all fields with one array conversion rather than a Python loop.
        fields = array.array("I")
        fields.frombytes(self._entries)
        if sys.byteorder == "little":
            fields.byteswap()
        relative_offsets, positions = fields[0::2], fields[1::2]
        if not all(map(operator.lt, relative_offsets, relative_offsets[1:])):
            raise CorruptIndexError(f"{self.path}: offsets are not increasing")
        if not all(map(operator.lt, positions, positions[1:])):
            raise CorruptIndexError(f"{self.path}: positions are not increasing")
        if relative_offsets[-1] > MAX_RELATIVE_OFFSET or positions[-1] >= log_size_bytes:
            raise CorruptIndexError(f"{self.path}: the last entry points past the log")


def _pread_fully(fd: int, size_bytes: int, position: int) -> bytes:
    """Read exactly ``size_bytes`` (fewer only at end of file)."""
    chunks = []
    remaining = size_bytes
    while remaining > 0:
        chunk = os.pread(fd, remaining, position)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
        position += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _pwrite_fully(fd: int, data: bytes | bytearray | memoryview, position: int) -> None:
    """Write all of ``data`` at ``position``; ``os.pwrite`` may write less than asked."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, position)
        view = view[written:]
        position += written
