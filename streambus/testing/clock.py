"""A clock that moves only when a test says so (trio's ``MockClock``, TigerBeetle's ``TimeSim``).

This module owns :class:`ManualClock`, the injectable stand-in for the system clock in driver
and broker tests.  It never sleeps and never reads real time.
"""

from __future__ import annotations

__all__ = ["ManualClock"]


class ManualClock:
    """Monotonic and wall time in milliseconds, both advanced explicitly.

    Args:
        start_ms: the initial monotonic time.
        wall_offset_ms: wall time minus monotonic time (a test may ``jump_wall`` it).
    """

    def __init__(self, start_ms: int = 0, wall_offset_ms: int = 1_700_000_000_000) -> None:
        assert start_ms >= 0
        self._monotonic_ms = start_ms
        self._wall_offset_ms = wall_offset_ms

    def monotonic_ms(self) -> int:
        return self._monotonic_ms

    def wall_ms(self) -> int:
        return self._monotonic_ms + self._wall_offset_ms

    def advance(self, ms: int) -> None:
        """Move both clocks forward by ``ms`` (never backwards)."""
        assert ms >= 0, ms
        self._monotonic_ms += ms

    def jump_wall(self, ms: int) -> None:
        """Step the wall clock (NTP correction, operator error) without moving monotonic time;
        timers must not notice (scenario Q13)."""
        self._wall_offset_ms += ms
