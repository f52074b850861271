"""Crash-safe replacement of segments by their compacted copy, and its recovery on open.

This module owns the file steps of the log cleaner's swap and what startup does with the
files a crash left half-way.  It never decides what goes into the compacted segment
(``cleaner.py``) and never edits the partition's segment list (``PartitionLog.replace_segments``
does, calling :func:`install_cleaned_segment`).

Files, named after the base offset ``B`` of the first segment being replaced (Kafka's suffixes
from ``file_names.py``)::

    B.log.cleaned       the compacted copy while it is being written; debris after a crash
    B.txnindex.swap     aborted transactions whose ABORT marker the copy keeps (if any)
    B.log.swap          the complete, fsynced copy: from here on the swap must finish
    B.log, B.txnindex   the installed copy (the originals' files are all gone)

Steps, each made durable before the next (fsync of the file, then of the directory):

1. write and fsync ``B.log.cleaned``, and ``B.txnindex.swap`` when aborts are carried over;
2. rename ``B.log.cleaned`` to ``B.log.swap`` (the commit point);
3. delete every replaced segment's files;
4. rename ``B.txnindex.swap`` to ``B.txnindex``, ``B.log.swap`` to ``B.log``, and build the
   offset and time indexes.

Recovery (:func:`recover_swap_files`, called before a partition directory is scanned): a
``.cleaned`` or ``.deleted`` file is removed, and so is a ``.txnindex.swap`` without its
``.log.swap`` (the swap never committed); a ``.log.swap`` file covers the offsets from ``B``
to its last batch's next offset, so every segment whose base offset lies in that range is
deleted and the swap's files are renamed into place; the missing offset index is rebuilt
when the segment is loaded.  The cleaner always keeps the last batch of a replaced run (emptied if need be), so
that range is exactly the replaced segments', never a later one.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Callable

from streambus.log.file_names import (
    CLEANED_FILE_SUFFIX,
    DELETED_FILE_SUFFIX,
    LOG_FILE_SUFFIX,
    SWAP_FILE_SUFFIX,
    index_file_path,
    log_file_path,
    offset_from_file_name,
    time_index_file_path,
)
from streambus.log.segment import LogSegment
from streambus.log.txn_index import AbortedTxn, txn_index_file_path

__all__ = [
    "cleaned_file_path",
    "swap_file_path",
    "install_cleaned_segment",
    "recover_swap_files",
]

_PREFIX = struct.Struct(">qi")  # base_offset, batch_length
_LAST_OFFSET_DELTA = struct.Struct(">i")
_LAST_OFFSET_DELTA_POSITION = 23
_BATCH_HEADER_SIZE = 61
_LOG_OVERHEAD = 12


def cleaned_file_path(directory: Path, base_offset: int) -> Path:
    return log_file_path(directory, base_offset).with_suffix(LOG_FILE_SUFFIX + CLEANED_FILE_SUFFIX)


def swap_file_path(directory: Path, base_offset: int) -> Path:
    return log_file_path(directory, base_offset).with_suffix(LOG_FILE_SUFFIX + SWAP_FILE_SUFFIX)


def _txn_swap_file_path(directory: Path, base_offset: int) -> Path:
    path = txn_index_file_path(directory, base_offset)
    return path.with_name(path.name + SWAP_FILE_SUFFIX)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def install_cleaned_segment(
    old_segments: list[LogSegment],
    cleaned_path: Path,
    open_segment: Callable[[int], LogSegment],
    before_delete: Callable[[], None] | None = None,
    aborted_txns: list[AbortedTxn] | None = None,
) -> LogSegment:
    """Steps 1 (the transaction index) to 4: replace ``old_segments`` by the fsynced file at
    ``cleaned_path``.

    Args:
        old_segments: the run being replaced, oldest first; closed and deleted here.
        cleaned_path: ``B.log.cleaned`` with ``B`` the first old segment's base offset.
        open_segment: opens (creating index files) the segment at a base offset.
        before_delete: test hook called after the commit point, to simulate a crash there.
        aborted_txns: the old segments' aborted transactions whose ABORT marker the copy
            keeps; they become the new segment's ``.txnindex``.

    Returns:
        The installed segment, indexes rebuilt and fsynced.

    Raises:
        OSError: a rename, delete or fsync failed.
    """
    base_offset = old_segments[0].base_offset
    directory = cleaned_path.parent
    swap_path = swap_file_path(directory, base_offset)
    txn_swap_path = _txn_swap_file_path(directory, base_offset)
    if aborted_txns:
        with open(txn_swap_path, "wb") as file:
            file.write(b"".join(entry.encode() for entry in aborted_txns))
            file.flush()
            os.fsync(file.fileno())
    os.replace(cleaned_path, swap_path)
    _fsync_directory(directory)
    if before_delete is not None:
        before_delete()
    for segment in old_segments:
        segment.delete()
    if aborted_txns:
        os.replace(txn_swap_path, txn_index_file_path(directory, base_offset))
    os.replace(swap_path, log_file_path(directory, base_offset))
    _fsync_directory(directory)
    segment = open_segment(base_offset)
    segment.recover()
    segment.flush()
    return segment


def _next_offset(path: Path) -> int | None:
    """Offset after the last complete batch of a swap file, or None when it holds none."""
    next_offset = None
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        position = 0
        # Bounded by the file size: each pass moves past one whole batch.
        while size - position >= _BATCH_HEADER_SIZE:
            header = os.pread(file.fileno(), _BATCH_HEADER_SIZE, position)
            base_offset, batch_length = _PREFIX.unpack_from(header)
            (last_offset_delta,) = _LAST_OFFSET_DELTA.unpack_from(
                header, _LAST_OFFSET_DELTA_POSITION)
            size_bytes = batch_length + _LOG_OVERHEAD
            if size_bytes < _BATCH_HEADER_SIZE or position + size_bytes > size:
                break
            next_offset = base_offset + last_offset_delta + 1
            position += size_bytes
    return next_offset


def _remove_segment_files(directory: Path, base_offset: int) -> None:
    for path in (log_file_path(directory, base_offset), index_file_path(directory, base_offset),
                 time_index_file_path(directory, base_offset),
                 txn_index_file_path(directory, base_offset)):
        path.unlink(missing_ok=True)


def recover_swap_files(directory: Path) -> bool:
    """Finish or undo the swaps a crash interrupted in one partition directory.

    Returns:
        Whether any file was removed or renamed (the caller fsyncs the directory later).
    """
    changed = False
    swaps: list[Path] = []
    log_base_offsets: list[int] = []
    for path in directory.iterdir():
        name = path.name
        if name.endswith((CLEANED_FILE_SUFFIX, DELETED_FILE_SUFFIX)):
            path.unlink()
            changed = True
        elif name.endswith(LOG_FILE_SUFFIX + SWAP_FILE_SUFFIX):
            swaps.append(path)
        elif name.endswith(LOG_FILE_SUFFIX):
            log_base_offsets.append(offset_from_file_name(name))
    for swap_path in sorted(swaps):
        changed = True
        base_offset = offset_from_file_name(swap_path.name)
        next_offset = _next_offset(swap_path)
        if next_offset is None:
            # Never written by the cleaner (it keeps a run's last batch): nothing to install.
            swap_path.unlink()
            continue
        for replaced in [b for b in log_base_offsets if base_offset <= b < next_offset]:
            _remove_segment_files(directory, replaced)
            log_base_offsets.remove(replaced)
        # Stale indexes of the first replaced segment would not match the compacted log.
        _remove_segment_files(directory, base_offset)
        txn_swap_path = _txn_swap_file_path(directory, base_offset)
        if txn_swap_path.exists():
            os.replace(txn_swap_path, txn_index_file_path(directory, base_offset))
        os.replace(swap_path, log_file_path(directory, base_offset))
        log_base_offsets.append(base_offset)
    # A transaction index whose segment swap never committed.
    for path in directory.glob("*" + SWAP_FILE_SUFFIX):
        path.unlink()
        changed = True
    if changed:
        _fsync_directory(directory)
    return changed
