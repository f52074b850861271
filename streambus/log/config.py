"""Per-topic log settings.

This module owns :class:`LogConfig` and the mapping from Kafka's dotted topic-config names
(``segment.bytes``, ``retention.ms``, ...) to its fields.  It never reads files or the
environment: the broker's settings supply the defaults, CreateTopics/AlterConfigs the overrides.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Mapping

__all__ = ["LogConfig", "TOPIC_CONFIG_NAMES", "MAX_INT32", "MAX_INT64"]

MAX_INT32 = 2**31 - 1
MAX_INT64 = 2**63 - 1

_TIMESTAMP_TYPES = ("CreateTime", "LogAppendTime")
_CLEANUP_POLICIES = frozenset({"delete", "compact"})


@dataclass(frozen=True, slots=True, kw_only=True)
class LogConfig:
    """Settings of one partition log; every field has Kafka's default."""

    segment_bytes: int = 1024 * 1024 * 1024
    """Roll to a new segment before an append would take the active one past this size."""
    segment_ms: int = 7 * 24 * 60 * 60 * 1000
    """Roll once the active segment's first batch is this much older than the incoming one."""
    index_interval_bytes: int = 4096
    """Bytes of batches between two offset-index entries (how sparse the index is)."""
    segment_index_bytes: int = 10 * 1024 * 1024
    """Largest size of an offset or time index file; a full index forces a roll."""
    max_message_bytes: int = 1024 * 1024 + 12
    """Largest batch (including its 12-byte log overhead) a producer may append."""
    message_timestamp_type: str = "CreateTime"
    """``CreateTime`` keeps the producer's timestamps; ``LogAppendTime`` stamps the broker's."""
    retention_ms: int = 7 * 24 * 60 * 60 * 1000
    """Delete segments whose newest timestamp is older than this; -1 keeps them forever."""
    retention_bytes: int = -1
    """Delete oldest segments while the log is larger than this; -1 means no size limit."""
    cleanup_policy: frozenset[str] = frozenset({"delete"})
    """``delete`` and/or ``compact`` (compaction is not implemented yet)."""
    flush_interval_messages: int = MAX_INT64
    """fsync after this many appended offsets since the last flush; the default never does."""
    flush_interval_ms: int | None = None
    """fsync when the last flush is this old; None leaves flushing to the OS and replication."""

    def __post_init__(self) -> None:
        # Positions in the offset index are u32 and Kafka keeps them in an int, so a segment
        # can never exceed 2**31 - 1 bytes.
        _require(14 <= self.segment_bytes <= MAX_INT32, "segment.bytes", self.segment_bytes)
        _require(self.segment_ms >= 1, "segment.ms", self.segment_ms)
        _require(self.index_interval_bytes >= 0, "index.interval.bytes", self.index_interval_bytes)
        _require(
            12 <= self.segment_index_bytes <= MAX_INT32,
            "segment.index.bytes",
            self.segment_index_bytes,
        )
        _require(self.max_message_bytes >= 0, "max.message.bytes", self.max_message_bytes)
        _require(
            self.message_timestamp_type in _TIMESTAMP_TYPES,
            "message.timestamp.type",
            self.message_timestamp_type,
        )
        _require(self.retention_ms >= -1, "retention.ms", self.retention_ms)
        _require(self.retention_bytes >= -1, "retention.bytes", self.retention_bytes)
        _require(
            bool(self.cleanup_policy) and self.cleanup_policy <= _CLEANUP_POLICIES,
            "cleanup.policy",
            self.cleanup_policy,
        )
        _require(self.flush_interval_messages >= 1, "flush.messages", self.flush_interval_messages)
        _require(
            self.flush_interval_ms is None or self.flush_interval_ms >= 0,
            "flush.ms",
            self.flush_interval_ms,
        )

    @property
    def is_log_append_time(self) -> bool:
        return self.message_timestamp_type == "LogAppendTime"

    @classmethod
    def from_topic_configs(
        cls, configs: Mapping[str, str], defaults: LogConfig | None = None
    ) -> LogConfig:
        """Apply Kafka topic configs (``{"segment.bytes": "1048576"}``) on top of ``defaults``
        (Kafka's defaults when None).

        Names this log does not use (``compression.type``, ``min.insync.replicas``...) are
        ignored: they belong to other layers.

        Raises:
            ValueError: a value does not parse or is out of range.
        """
        changes: dict[str, object] = {}
        for name, value in configs.items():
            entry = TOPIC_CONFIG_NAMES.get(name)
            if entry is None:
                continue
            field_name, parse = entry
            try:
                changes[field_name] = parse(value)
            except ValueError as exc:
                raise ValueError(f"invalid value {value!r} for {name}") from exc
        return dataclasses.replace(defaults or cls(), **changes)  # type: ignore[arg-type]


def _require(condition: bool, name: str, value: object) -> None:
    if not condition:
        raise ValueError(f"invalid value {value!r} for {name}")


def _parse_cleanup_policy(text: str) -> frozenset[str]:
    return frozenset(part.strip() for part in text.split(",") if part.strip())


def _parse_flush_ms(text: str) -> int | None:
    # Kafka's default flush.ms is Long.MAX_VALUE, which means "never".
    value = int(text)
    return None if value >= MAX_INT64 else value


#: Kafka topic-config name -> (LogConfig field, parser of its string value).
TOPIC_CONFIG_NAMES: dict[str, tuple[str, Callable[[str], object]]] = {
    "segment.bytes": ("segment_bytes", int),
    "segment.ms": ("segment_ms", int),
    "index.interval.bytes": ("index_interval_bytes", int),
    "segment.index.bytes": ("segment_index_bytes", int),
    "max.message.bytes": ("max_message_bytes", int),
    "message.timestamp.type": ("message_timestamp_type", str),
    "retention.ms": ("retention_ms", int),
    "retention.bytes": ("retention_bytes", int),
    "cleanup.policy": ("cleanup_policy", _parse_cleanup_policy),
    "flush.messages": ("flush_interval_messages", int),
    "flush.ms": ("flush_interval_ms", _parse_flush_ms),
}
