"""The time index of one segment: sparse max-timestamp -> offset entries.

This module owns the ``.timeindex`` file format.  It never reads the segment's ``.log``.

Layout: a flat array of 12-byte big-endian entries, no header and no checksum::

    offset  size  field
         0     8  timestamp_ms      i64: largest batch max_timestamp seen so far
         8     4  relative_offset   u32: last offset of the batch holding that timestamp,
                                          minus the segment base_offset

An entry ``(timestamp_ms, offset)`` says that every batch up to and including the one ending at
``offset`` has ``max_timestamp <= timestamp_ms``.  Entries are added beside offset-index entries,
only when the timestamp grows, so both fields increase.  To find the first batch with
``max_timestamp >= target`` the segment starts scanning at the offset of the greatest entry whose
timestamp is strictly below the target: nothing up to that offset can match.

Like the offset index it is sanity-checked on open and rebuilt after an unclean shutdown.
"""

from __future__ import annotations

import operator
import struct

from streambus.log.errors import CorruptIndexError
from streambus.log.offset_index import MAX_RELATIVE_OFFSET, IndexFile

__all__ = ["TimeIndex", "TIME_INDEX_ENTRY_SIZE"]

TIME_INDEX_ENTRY_SIZE = 12

_ENTRY = struct.Struct(">qI")


class TimeIndex(IndexFile):
    """Sparse map from timestamp to the offset where a timestamp search should start."""

    entry_size = TIME_INDEX_ENTRY_SIZE

    def entry(self, index: int) -> tuple[int, int]:
        """The ``index``-th entry as (timestamp_ms, offset)."""
        timestamp_ms, relative_offset = _ENTRY.unpack_from(self._entries, index * self.entry_size)
        return timestamp_ms, self.base_offset + relative_offset

    def last_entry(self) -> tuple[int, int] | None:
        """The last entry as (timestamp_ms, offset), or None when the index is empty."""
        if not self._entries:
            return None
        return self.entry(self.entries_count - 1)

    def maybe_append(self, timestamp_ms: int, offset: int) -> bool:
        """Add an entry if ``timestamp_ms`` is larger than the last one and the index has room.

        Returns:
            Whether an entry was written.
        """
        relative_offset = offset - self.base_offset
        if not 0 <= relative_offset <= MAX_RELATIVE_OFFSET:
            raise ValueError(f"offset {offset} does not fit segment {self.base_offset}")
        last = self.last_entry()
        if last is not None:
            if timestamp_ms <= last[0]:
                return False
            if offset < last[1]:
                raise ValueError(f"offset {offset} is before the last time index offset {last[1]}")
        if self.is_full:
            return False
        self._append_entry(_ENTRY.pack(timestamp_ms, relative_offset))
        return True

    def lookup(self, target_timestamp_ms: int) -> int:
        """Offset to start scanning from for the first batch with max_timestamp >= target.

        That is the offset of the greatest entry with a timestamp strictly below the target, or
        the segment's base offset when there is none.
        """
        low, high = 0, self.entries_count - 1
        found = -1
        while low <= high:
            middle = (low + high) // 2
            timestamp_ms = _ENTRY.unpack_from(self._entries, middle * self.entry_size)[0]
            if timestamp_ms < target_timestamp_ms:
                found = middle
                low = middle + 1
            else:
                high = middle - 1
        if found < 0:
            return self.base_offset
        return self.entry(found)[1]

    def truncate_to(self, offset: int) -> None:
        """Remove every entry whose offset is >= ``offset``."""
        keep = self.entries_count
        while keep > 0 and self.entry(keep - 1)[1] >= offset:
            keep -= 1
        self._truncate_entries(keep)

    def sanity_check(self, next_offset: int) -> None:
        """Check entries increase and stay below the segment's ``next_offset``.

        Raises:
            CorruptIndexError: torn size, decreasing entries, or an offset past the log.
        """
        self._check_size()
        if not self._entries:
            return
        # Check every entry at C speed: map/operator instead of a Python loop per entry.
        entries = list(_ENTRY.iter_unpack(self._entries))
        timestamps = list(map(operator.itemgetter(0), entries))
        relative_offsets = list(map(operator.itemgetter(1), entries))
        if not all(map(operator.lt, timestamps, timestamps[1:])):
            raise CorruptIndexError(f"{self.path}: timestamps are not increasing")
        if not all(map(operator.le, relative_offsets, relative_offsets[1:])):
            raise CorruptIndexError(f"{self.path}: offsets are decreasing")
        if self.base_offset + relative_offsets[-1] >= next_offset:
            raise CorruptIndexError(f"{self.path}: the last entry points past the log")
