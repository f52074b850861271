"""Explicit timers for a pure shard: keyed deadlines that the runtime fires by calling poll.

Kafka's coordinator runtime gives each shard a ``CoordinatorTimer``: schedule(key, delay, op)
replaces any timer with the same key, cancel(key) removes it, and an expired operation runs
like any other operation (its result is appended and answered).  Here time is an argument:
:meth:`Timer.pop_expired` hands back, one by one, the operations whose deadline is at or before
``now_ms``, earliest first (ties in scheduling order), so tests advance time by passing a larger number.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Timer"]


@dataclass(slots=True)
class _Entry:
    key: str
    deadline_ms: int
    sequence: int
    operation: Callable[[int], Any]


class Timer:
    """Keyed one-shot timers.  Not thread-safe (one shard, one event loop)."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[int, int, str]] = []
        self._sequence = itertools.count()

    def schedule(self, key: str, deadline_ms: int, operation: Callable[[int], Any]) -> None:
        """Run ``operation(now_ms)`` once ``now_ms >= deadline_ms``; replaces a timer of ``key``."""
        entry = _Entry(key, deadline_ms, next(self._sequence), operation)
        self._entries[key] = entry
        heapq.heappush(self._heap, (deadline_ms, entry.sequence, key))

    def cancel(self, key: str) -> None:
        """Remove the timer of ``key``; unknown keys are ignored."""
        self._entries.pop(key, None)

    def is_scheduled(self, key: str) -> bool:
        return key in self._entries

    def deadline_ms(self, key: str) -> int | None:
        entry = self._entries.get(key)
        return None if entry is None else entry.deadline_ms

    def __len__(self) -> int:
        return len(self._entries)

    def next_deadline_ms(self) -> int | None:
        """The earliest live deadline, or None when nothing is scheduled."""
        self._drop_stale_head()
        return self._heap[0][0] if self._heap else None

    def pop_expired(self, now_ms: int) -> Callable[[int], Any] | None:
        """Remove and return the earliest operation due at ``now_ms``, or None.

        One at a time on purpose: an operation may cancel or reschedule other timers, and
        those must not fire from a list taken before it ran.
        """
        self._drop_stale_head()
        if not self._heap or self._heap[0][0] > now_ms:
            return None
        _, _, key = heapq.heappop(self._heap)
        return self._entries.pop(key).operation

    def _drop_stale_head(self) -> None:
        # Cancelled or rescheduled timers leave their old heap item behind; skip those.
        while self._heap:
            deadline_ms, sequence, key = self._heap[0]
            entry = self._entries.get(key)
            if entry is not None and entry.sequence == sequence:
                return
            heapq.heappop(self._heap)
