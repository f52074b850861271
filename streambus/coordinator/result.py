"""What one coordinator operation produces: records to persist and responses to send.

This module owns the contract between a pure coordinator shard and its runtime, copied from
Kafka's ``CoordinatorResult`` (coordinator-common): an operation validates, changes in-memory
state, and returns the records that make the change durable plus the response.  The runtime
appends ``records`` to the shard's partition and only then (1) replays them into the shard when
``replay_records`` is set and (2) sends ``response`` and every ``completion``.  Nothing here does
I/O.

Delayed responses: a JoinGroup or SyncGroup may not be answerable yet.  The caller passes a
token; the operation then returns ``response=None`` (parked) and a later operation or timer
answers it with a :class:`Completion` carrying the same token.  Tokens are opaque integers chosen
by the runtime, so the shard never holds an asyncio future.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["Completion", "CoordinatorRecord", "CoordinatorResult"]

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class CoordinatorRecord:
    """One record of a coordinator topic: a generated key, and a value or None (tombstone)."""

    key: Any
    """A generated ``*Key`` class instance (its record type is the key's version prefix)."""
    value: Any | None
    """A generated ``*Value`` instance, or None to delete the key (compaction tombstone)."""
    value_version: int = 0
    """The version the value is written at (Kafka picks it per record, e.g. OffsetCommitValue
    v1 when an expire timestamp is present, v3 otherwise)."""


@dataclass(frozen=True, slots=True)
class Completion:
    """The response to a request parked earlier under ``token``."""

    token: int
    response: Any


@dataclass(frozen=True, slots=True)
class CoordinatorResult(Generic[R]):
    """Records to append, then the response to the caller and to parked requests.

    Ordering duty of the runtime: append ``records`` (one batch) first; if that fails, answer
    the caller and every completion with an error instead.  Only after a successful append are
    the records replayed (when ``replay_records``) and the responses sent.
    """

    records: tuple[CoordinatorRecord, ...] = ()
    response: R | None = None
    """The caller's response; None when it is parked under the caller's token."""
    completions: tuple[Completion, ...] = ()
    replay_records: bool = True
    """True when the operation did not apply its records itself (offset commits and deletes
    are applied by replay); group membership operations mutate state directly, as Kafka's
    classic group operations do, and their records only matter when a partition is loaded."""
