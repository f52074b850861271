"""The aborted-transaction index of one segment: the ``.txnindex`` file (KIP-98).

This module owns the bytes and the in-memory copy of one segment's aborted transactions: which
producer aborted, where its transaction began and where its ABORT marker landed, and the last
stable offset right after that marker.  It never decides when a transaction ends (the
partition log does, when it appends a marker) and never reads the ``.log``.

A read_committed consumer gets, with every Fetch, the aborted transactions whose records may
be in the returned bytes; it then drops a producer's transactional records from the
transaction's first offset up to that producer's next control batch.  The entry is stored in
the segment that holds the ABORT marker, which is always at or after every record of the
transaction, so a transaction whose data starts in one segment and ends in a later one is
found by scanning the indexes from the fetch offset's segment onwards.  ``last_stable_offset``
bounds that scan (Kafka's ``TransactionIndex.collectAbortedTxns``): a transaction aborted
after an entry whose last stable offset is at or past the fetch's upper bound began at or
after that offset, so it cannot overlap the fetch.

File ``%020d.txnindex``, named like its segment; entries back to back, in marker order, no
header, no checksum (Kafka's format, so a torn tail entry is simply dropped)::

    offset  size  field
         0     2  version (int16, 0)
         2     8  producer_id (int64)
        10     8  first_offset (int64)        first offset of the aborted transaction
        18     8  last_offset (int64)         offset of its ABORT marker
        26     8  last_stable_offset (int64)  the partition's LSO once the marker was appended

The file is created only when the segment's first abort lands (most segments never have one),
appended with ``pwrite`` so a killed process loses nothing, and fsynced by :meth:`flush`.
Not thread-safe: the partition log serialises every call.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from streambus.log.file_names import TXN_INDEX_FILE_SUFFIX, file_name_prefix

__all__ = [
    "AbortedTxn",
    "TransactionIndex",
    "TXN_INDEX_ENTRY_SIZE",
    "txn_index_file_path",
]

_ENTRY = struct.Struct(">hqqqq")
TXN_INDEX_ENTRY_SIZE = _ENTRY.size  # 34
_VERSION = 0


def txn_index_file_path(directory: Path, base_offset: int) -> Path:
    """``<directory>/%020d.txnindex``."""
    return Path(directory) / (file_name_prefix(base_offset) + TXN_INDEX_FILE_SUFFIX)


@dataclass(frozen=True, slots=True)
class AbortedTxn:
    """One aborted transaction of one producer in one partition."""

    producer_id: int
    first_offset: int
    """First offset the transaction wrote to this partition (the marker's, if it wrote none)."""
    last_offset: int
    """Offset of the ABORT marker."""
    last_stable_offset: int
    """The partition's last stable offset right after the marker was appended."""

    def encode(self) -> bytes:
        return _ENTRY.pack(_VERSION, self.producer_id, self.first_offset, self.last_offset,
                           self.last_stable_offset)


def decode_entries(data: bytes) -> list[AbortedTxn]:
    """Entries of a ``.txnindex`` file; a torn trailing entry is ignored.

    Raises:
        ValueError: an entry has an unknown version or impossible offsets (a corrupt file).
    """
    entries = []
    whole = len(data) - len(data) % TXN_INDEX_ENTRY_SIZE
    for position in range(0, whole, TXN_INDEX_ENTRY_SIZE):
        version, producer_id, first, last, lso = _ENTRY.unpack_from(data, position)
        if version != _VERSION:
            raise ValueError(f"txn index entry version {version} at {position} is not 0")
        if not 0 <= first <= last or producer_id < 0:
            raise ValueError(f"txn index entry at {position} has offsets {first}..{last}")
        entries.append(AbortedTxn(producer_id, first, last, lso))
    return entries


class TransactionIndex:
    """The aborted transactions of one segment, in memory and in its ``.txnindex`` file.

    Args:
        path: the file (need not exist).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._entries: list[AbortedTxn] | None = None
        self._dirty = False

    @property
    def entries(self) -> list[AbortedTxn]:
        """Every entry in marker order (loaded from the file on first use).  Do not mutate."""
        if self._entries is None:
            self._entries = self._read()
        return self._entries

    def _read(self) -> list[AbortedTxn]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        try:
            return decode_entries(data)
        except ValueError:
            # Derived data: a corrupt file is dropped rather than served (the caller rebuilds
            # what it can from the log).
            self.path.unlink(missing_ok=True)
            return []

    def __len__(self) -> int:
        return len(self.entries)

    def contains(self, producer_id: int, last_offset: int) -> bool:
        return any(e.producer_id == producer_id and e.last_offset == last_offset
                   for e in self.entries)

    def append(self, entry: AbortedTxn) -> None:
        """Add one entry at the end (markers are appended in offset order).

        Raises:
            ValueError: the entry's marker is not after the last entry's.
        """
        entries = self.entries
        if entries and entry.last_offset <= entries[-1].last_offset:
            raise ValueError(f"aborted txn at {entry.last_offset} is not after "
                             f"{entries[-1].last_offset}")
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            position = len(entries) * TXN_INDEX_ENTRY_SIZE
            data = entry.encode()
            written = os.pwrite(fd, data, position)
            if written != len(data):
                raise OSError(f"short write to {self.path}")
            os.ftruncate(fd, position + len(data))
        finally:
            os.close(fd)
        entries.append(entry)
        self._dirty = True

    def replace(self, entries: Iterable[AbortedTxn]) -> None:
        """Rewrite the file with ``entries`` (truncation, rebuilt or compacted segments)."""
        new_entries = sorted(entries, key=lambda e: e.last_offset)
        if not new_entries:
            self.path.unlink(missing_ok=True)
        else:
            temporary = self.path.with_name(self.path.name + ".tmp")
            with open(temporary, "wb") as file:
                file.write(b"".join(e.encode() for e in new_entries))
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        self._entries = new_entries
        self._dirty = True

    def truncate_to(self, offset: int) -> None:
        """Forget entries whose marker is at or after ``offset`` (the log was cut there)."""
        entries = self.entries
        kept = [e for e in entries if e.last_offset < offset]
        if len(kept) != len(entries):
            self.replace(kept)

    def flush(self) -> None:
        """fsync the file, if it exists and changed."""
        if not self._dirty:
            return
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            self._dirty = False
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self._dirty = False

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)
        self._entries = []
        self._dirty = False

    def collect(self, fetch_offset: int, upper_bound_offset: int,
                out: list[AbortedTxn]) -> bool:
        """Append the entries overlapping [fetch_offset, upper_bound_offset) to ``out``.

        Returns:
            True when the search is complete: an entry's last stable offset reached the
            upper bound, so no later segment can hold an overlapping transaction.
        """
        for entry in self.entries:
            if entry.last_offset >= fetch_offset and entry.first_offset < upper_bound_offset:
                out.append(entry)
            if entry.last_stable_offset >= upper_bound_offset:
                return True
        return False
