"""The group coordinator's settings, with Kafka's names and defaults.

Pure cores get only the fields they use (DESIGN §9): the runtime builds one
:class:`GroupConfig` from the broker config; tests build their own.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GroupConfig", "INT32_MAX"]

INT32_MAX = 2**31 - 1


@dataclass(frozen=True, slots=True)
class GroupConfig:
    initial_rebalance_delay_ms: int = 3000
    """``group.initial.rebalance.delay.ms``: how long the first rebalance of an empty group
    waits for more members (extended by each new member, up to the rebalance timeout)."""
    min_session_timeout_ms: int = 6000
    """``group.min.session.timeout.ms``."""
    max_session_timeout_ms: int = 1800000
    """``group.max.session.timeout.ms``."""
    max_size: int = INT32_MAX
    """``group.max.size``: members per classic group."""
    new_member_join_timeout_ms: int = 5 * 60 * 1000
    """Kafka's ``classicGroupNewMemberJoinTimeoutMs``: a new member parked in JoinGroup is
    dropped after this long (it cannot heartbeat without an id)."""
    offset_metadata_max_bytes: int = 4096
    """``offset.metadata.max.bytes``."""
    offsets_retention_ms: int = 7 * 24 * 60 * 60 * 1000
    """``offsets.retention.minutes`` (7 days) in ms."""
    offsets_retention_check_interval_ms: int = 600000
    """``offsets.retention.check.interval.ms``."""
    consumer_session_timeout_ms: int = 45000
    """``group.consumer.session.timeout.ms`` (KIP-848)."""
    consumer_heartbeat_interval_ms: int = 5000
    """``group.consumer.heartbeat.interval.ms`` (KIP-848)."""
    consumer_max_size: int = INT32_MAX
    """``group.consumer.max.size``."""
    consumer_assignors: tuple[str, ...] = ("uniform", "range")
    """``group.consumer.assignors``: server-side assignors; the first is the default."""
