"""The set of partition logs in one data directory.

This module is the only one that walks or mutates the data directory itself: it finds the
``<topic>-<partition>`` directories, creates and deletes them, and keeps the broker-wide
checkpoint files.  What happens inside a partition directory belongs to ``partition_log.py``.

Files in the data directory::

    <data_dir>/
        <topic>-<partition>/                      one PartitionLog each
        <topic>-<partition>.<uuid hex>-delete/    being deleted (removed at startup if left)
        recovery-point-offset-checkpoint          per-partition recovery_point
        log-start-offset-checkpoint               per-partition log_start_offset
        .kafka_cleanshutdown                      present only after a clean close()

Checkpoint files use Kafka's text format, written atomically (temporary file, fsync, rename,
fsync of the directory)::

    0                      version
    2                      number of entries
    orders 0 1234          topic partition offset
    orders 1 988

The clean-shutdown marker is deleted once every log is open, so a crash during this run is
seen as unclean by the next one.  Not thread-safe.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path
from typing import Callable, Iterator

from streambus.log.config import LogConfig
from streambus.log.file_names import (
    DELETE_DIR_SUFFIX,
    delete_dir_name,
    parse_partition_dir_name,
    partition_dir_name,
)
from streambus.log.partition_log import PartitionLog, fsync_directory, write_file_atomically

__all__ = [
    "LogManager",
    "RECOVERY_POINT_CHECKPOINT_FILE_NAME",
    "LOG_START_OFFSET_CHECKPOINT_FILE_NAME",
    "CLEAN_SHUTDOWN_FILE_NAME",
    "read_offset_checkpoint",
    "write_offset_checkpoint",
]

logger = logging.getLogger(__name__)

RECOVERY_POINT_CHECKPOINT_FILE_NAME = "recovery-point-offset-checkpoint"
LOG_START_OFFSET_CHECKPOINT_FILE_NAME = "log-start-offset-checkpoint"
CLEAN_SHUTDOWN_FILE_NAME = ".kafka_cleanshutdown"
_CHECKPOINT_VERSION = 0

TopicPartition = tuple[str, int]


class LogManager:
    """Opens, creates, checkpoints and deletes the partition logs under ``data_dir``."""

    def __init__(
        self, data_dir: Path, default_config: LogConfig, clock_ms: Callable[[], int]
    ) -> None:
        self.data_dir = Path(data_dir)
        self.default_config = default_config
        self._clock_ms = clock_ms
        self._logs: dict[TopicPartition, PartitionLog] = {}
        self._topic_configs: dict[str, LogConfig] = {}

    def open(self) -> bool:
        """Open every partition log in the data directory.

        Returns:
            Whether the previous run shut down cleanly (the marker file was present).
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        marker = self.data_dir / CLEAN_SHUTDOWN_FILE_NAME
        clean_shutdown = marker.exists()
        recovery_points = read_offset_checkpoint(
            self.data_dir / RECOVERY_POINT_CHECKPOINT_FILE_NAME
        )
        log_start_offsets = read_offset_checkpoint(
            self.data_dir / LOG_START_OFFSET_CHECKPOINT_FILE_NAME
        )
        for path in sorted(self.data_dir.iterdir()):
            if not path.is_dir():
                continue
            if path.name.endswith(DELETE_DIR_SUFFIX):
                # A deletion interrupted by a crash: finish it.
                shutil.rmtree(path)
                continue
            try:
                key = parse_partition_dir_name(path.name)
            except ValueError:
                continue  # not a partition (for example the metadata log's directory)
            self._logs[key] = PartitionLog.open(
                path,
                self._topic_configs.get(key[0], self.default_config),
                clock_ms=self._clock_ms,
                recovery_point=recovery_points.get(key, 0),
                clean_shutdown=clean_shutdown,
                log_start_offset=log_start_offsets.get(key, 0),
            )
        if clean_shutdown:
            marker.unlink()
            fsync_directory(self.data_dir)
        self.checkpoint()
        return clean_shutdown

    def get(self, topic: str, partition: int) -> PartitionLog | None:
        return self._logs.get((topic, partition))

    def get_or_create(
        self,
        topic: str,
        partition: int,
        config: LogConfig | None = None,
        topic_id: uuid.UUID | None = None,
    ) -> PartitionLog:
        """The log of (topic, partition), created empty if it does not exist.

        An existing log gets ``config``; its ``topic_id`` must match (see
        :class:`~streambus.log.errors.InconsistentTopicIdError`).
        """
        if config is not None:
            self._topic_configs[topic] = config
        key = (topic, partition)
        log = self._logs.get(key)
        if log is not None:
            if config is not None:
                log.update_config(config)
            if topic_id is not None and log.topic_id is None:
                log.topic_id = topic_id
            return log
        directory = self.data_dir / partition_dir_name(topic, partition)
        existed = directory.exists()
        log = PartitionLog.open(
            directory,
            config or self._topic_configs.get(topic, self.default_config),
            clock_ms=self._clock_ms,
            clean_shutdown=True,
            topic_id=topic_id,
        )
        if not existed:
            fsync_directory(self.data_dir)
        self._logs[key] = log
        return log

    def delete_partition(self, topic: str, partition: int) -> None:
        """Close and remove a partition's log.

        The directory is renamed to ``...-delete`` first (one atomic step), so a crash during
        the removal cannot bring the partition back.
        """
        key = (topic, partition)
        log = self._logs.pop(key, None)
        directory = self.data_dir / partition_dir_name(topic, partition)
        if log is not None:
            log.close(clean=False)
        if not directory.exists():
            return
        doomed = self.data_dir / delete_dir_name(topic, partition, uuid.uuid4().hex)
        directory.rename(doomed)
        fsync_directory(self.data_dir)
        shutil.rmtree(doomed)
        self.checkpoint()

    def all_logs(self) -> Iterator[PartitionLog]:
        return iter(list(self._logs.values()))

    def update_config(self, topic: str, config: LogConfig) -> None:
        """Give every partition of ``topic`` new settings."""
        self._topic_configs[topic] = config
        for (log_topic, _), log in self._logs.items():
            if log_topic == topic:
                log.update_config(config)

    def flush_dirty_logs(self) -> None:
        """Flush logs whose ``flush_interval_ms`` has elapsed; call periodically."""
        for log in self._logs.values():
            log.maybe_flush()

    def checkpoint(self) -> None:
        """Write both checkpoint files from the open logs."""
        write_offset_checkpoint(
            self.data_dir / RECOVERY_POINT_CHECKPOINT_FILE_NAME,
            {key: log.recovery_point for key, log in self._logs.items()},
        )
        write_offset_checkpoint(
            self.data_dir / LOG_START_OFFSET_CHECKPOINT_FILE_NAME,
            {key: log.log_start_offset for key, log in self._logs.items()},
        )

    def close(self) -> None:
        """Close every log cleanly, checkpoint, and leave the clean-shutdown marker."""
        for log in self._logs.values():
            log.close(clean=True)
        self.checkpoint()
        marker = self.data_dir / CLEAN_SHUTDOWN_FILE_NAME
        write_file_atomically(marker, b"")
        self._logs.clear()


def read_offset_checkpoint(path: Path) -> dict[TopicPartition, int]:
    """Parse a Kafka offset checkpoint file; a missing file is empty.

    Raises:
        ValueError: an unknown version, a count that does not match, or a malformed line.
    """
    if not path.exists():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) < 2 or lines[0].strip() != str(_CHECKPOINT_VERSION):
        raise ValueError(f"{path}: unsupported checkpoint version")
    expected_count = int(lines[1])
    offsets: dict[TopicPartition, int] = {}
    for line in lines[2:]:
        if not line.strip():
            continue
        # Topic names cannot contain spaces, so a plain split is unambiguous.
        topic, partition, offset = line.split(" ")
        offsets[(topic, int(partition))] = int(offset)
    if len(offsets) != expected_count:
        raise ValueError(f"{path}: expected {expected_count} entries, found {len(offsets)}")
    return offsets


def write_offset_checkpoint(path: Path, offsets: dict[TopicPartition, int]) -> None:
    """Write ``offsets`` in Kafka's checkpoint format, atomically."""
    lines = [str(_CHECKPOINT_VERSION), str(len(offsets))]
    lines += [
        f"{topic} {partition} {offset}" for (topic, partition), offset in sorted(offsets.items())
    ]
    write_file_atomically(path, ("\n".join(lines) + "\n").encode("utf-8"))
