"""Names of the files and directories that hold partition data.

This module owns naming only; it never opens a file.  Every file of a segment is named by its
base offset, zero-padded to 20 digits so that ``ls`` order is offset order (Kafka's
``LogFileUtils``)::

    <data_dir>/<topic>-<partition>/00000000000000000000.log
                                   00000000000000000000.index
                                   00000000000000000000.timeindex
                                   00000000000000000000.snapshot
                                   partition.metadata

A partition being deleted is first renamed to ``<topic>-<partition>.<uuid hex>-delete`` so a
crash half-way through removal never resurrects it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "LOG_FILE_SUFFIX",
    "INDEX_FILE_SUFFIX",
    "TIME_INDEX_FILE_SUFFIX",
    "TXN_INDEX_FILE_SUFFIX",
    "PRODUCER_SNAPSHOT_FILE_SUFFIX",
    "DELETED_FILE_SUFFIX",
    "CLEANED_FILE_SUFFIX",
    "SWAP_FILE_SUFFIX",
    "DELETE_DIR_SUFFIX",
    "PARTITION_METADATA_FILE_NAME",
    "OFFSET_DIGITS",
    "file_name_prefix",
    "log_file_path",
    "index_file_path",
    "time_index_file_path",
    "producer_snapshot_file_path",
    "offset_from_file_name",
    "partition_dir_name",
    "parse_partition_dir_name",
    "delete_dir_name",
]

LOG_FILE_SUFFIX = ".log"
INDEX_FILE_SUFFIX = ".index"
TIME_INDEX_FILE_SUFFIX = ".timeindex"
TXN_INDEX_FILE_SUFFIX = ".txnindex"
PRODUCER_SNAPSHOT_FILE_SUFFIX = ".snapshot"
#: A segment file scheduled for removal (renamed first so a crash never re-reads it).
DELETED_FILE_SUFFIX = ".deleted"
#: Output of an unfinished compaction; safe to delete on startup.
CLEANED_FILE_SUFFIX = ".cleaned"
#: A compacted segment waiting to replace the original.
SWAP_FILE_SUFFIX = ".swap"
DELETE_DIR_SUFFIX = "-delete"
PARTITION_METADATA_FILE_NAME = "partition.metadata"

#: Enough digits for any non-negative int64 offset.
OFFSET_DIGITS = 20


def file_name_prefix(offset: int) -> str:
    """``offset`` zero-padded to 20 digits: ``file_name_prefix(42) == "00000000000000000042"``."""
    if offset < 0:
        raise ValueError(f"file offset {offset} is negative")
    return f"{offset:0{OFFSET_DIGITS}d}"


def log_file_path(directory: Path, base_offset: int) -> Path:
    return directory / (file_name_prefix(base_offset) + LOG_FILE_SUFFIX)


def index_file_path(directory: Path, base_offset: int) -> Path:
    return directory / (file_name_prefix(base_offset) + INDEX_FILE_SUFFIX)


def time_index_file_path(directory: Path, base_offset: int) -> Path:
    return directory / (file_name_prefix(base_offset) + TIME_INDEX_FILE_SUFFIX)


def producer_snapshot_file_path(directory: Path, offset: int) -> Path:
    return directory / (file_name_prefix(offset) + PRODUCER_SNAPSHOT_FILE_SUFFIX)


def offset_from_file_name(name: str) -> int:
    """The offset a segment, index or snapshot file is named after.

    Raises:
        ValueError: the name does not start with 20 digits followed by a suffix.
    """
    prefix, dot, _ = name.partition(".")
    if not dot or len(prefix) != OFFSET_DIGITS or not prefix.isdigit():
        raise ValueError(f"{name!r} is not an offset-named file")
    return int(prefix)


def partition_dir_name(topic: str, partition: int) -> str:
    """``<topic>-<partition>``, the directory of one partition's log."""
    if partition < 0:
        raise ValueError(f"partition {partition} is negative")
    return f"{topic}-{partition}"


def parse_partition_dir_name(name: str) -> tuple[str, int]:
    """Split ``<topic>-<partition>`` back into (topic, partition).

    Topic names may themselves contain ``-`` and ``.``, so the partition is what follows the
    *last* ``-``.

    Raises:
        ValueError: no ``-``, an empty topic, or a partition that is not a decimal number
            (which includes ``...-delete`` directories).
    """
    topic, dash, partition_text = name.rpartition("-")
    if not dash or not topic or not partition_text.isdigit():
        raise ValueError(f"{name!r} is not a <topic>-<partition> directory")
    return topic, int(partition_text)


def delete_dir_name(topic: str, partition: int, unique_hex: str) -> str:
    """``<topic>-<partition>.<unique_hex>-delete``: a partition directory awaiting removal."""
    return f"{partition_dir_name(topic, partition)}.{unique_hex}{DELETE_DIR_SUFFIX}"
