"""Incremental fetch sessions (KIP-227): the broker remembers what a consumer fetches.

This module owns the session cache.  A session records, per partition, the fetch position and
limits the client last sent and the high watermark / log start offset / last stable offset the
broker last returned, so an incremental request can omit unchanged partitions and an
incremental response can omit partitions with nothing new.  Pure bookkeeping, no I/O; the
cache is bounded (``max.incremental.fetch.session.cache.slots``) and evicts the least recently
used session.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

__all__ = [
    "FetchSessionCache",
    "FetchSession",
    "CachedPartition",
    "INITIAL_EPOCH",
    "FINAL_EPOCH",
    "SESSIONS_MAX_DEFAULT",
]

INITIAL_EPOCH = 0
FINAL_EPOCH = -1
#: Kafka's max.incremental.fetch.session.cache.slots default.
SESSIONS_MAX_DEFAULT = 1000


@dataclass(slots=True)
class CachedPartition:
    topic: str
    topic_id: uuid.UUID
    partition: int
    fetch_offset: int
    partition_max_bytes: int
    current_leader_epoch: int = -1
    high_watermark: int = -1
    log_start_offset: int = -1
    last_stable_offset: int = -1


@dataclass(slots=True)
class FetchSession:
    session_id: int
    epoch: int
    """The epoch the next incremental request must carry."""
    uses_topic_ids: bool
    partitions: "OrderedDict[tuple[object, int], CachedPartition]" = field(
        default_factory=OrderedDict
    )
    last_used_ms: int = 0


class FetchSessionCache:
    def __init__(self, clock_ms: Callable[[], int], sessions_max: int = SESSIONS_MAX_DEFAULT,
                 rng: random.Random | None = None) -> None:
        self._clock_ms = clock_ms
        self._sessions_max = sessions_max
        self._sessions: "OrderedDict[int, FetchSession]" = OrderedDict()
        self._rng = rng or random.Random()
        self._fallback_ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, uses_topic_ids: bool) -> FetchSession | None:
        """A new session with epoch 1 expected next, evicting the least recently used one
        when full.  Returns None only if ``sessions_max`` is 0 (sessions disabled)."""
        if self._sessions_max <= 0:
            return None
        while len(self._sessions) >= self._sessions_max:
            self._sessions.popitem(last=False)
        session_id = self._new_id()
        session = FetchSession(session_id=session_id, epoch=1, uses_topic_ids=uses_topic_ids,
                               last_used_ms=self._clock_ms())
        self._sessions[session_id] = session
        return session

    def get(self, session_id: int) -> FetchSession | None:
        session = self._sessions.get(session_id)
        if session is not None:
            self._sessions.move_to_end(session_id)
            session.last_used_ms = self._clock_ms()
        return session

    def remove(self, session_id: int) -> None:
        self._sessions.pop(session_id, None)

    def _new_id(self) -> int:
        for _ in range(16):
            candidate = self._rng.randint(1, 2**31 - 1)
            if candidate not in self._sessions:
                return candidate
        while True:  # vanishingly unlikely: fall back to a counter
            candidate = next(self._fallback_ids)
            if candidate not in self._sessions:
                return candidate
