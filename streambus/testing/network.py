"""A simulated network for Raft cores: per-link drop, delay, duplication and partitions.

This module owns deciding, from a seeded ``random.Random``, whether and when a message sent on
a link arrives (Kafka's ``RaftEventSimulationTest`` ``NetworkFilter``s, TigerBeetle's VOPR
packet simulator).  It never delivers anything itself: the simulator schedules deliveries.
Links are directed, so a one-way partition (A hears B, B never hears A) is one blocked link.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["LinkFaults", "SimNetwork"]


@dataclass(frozen=True, slots=True)
class LinkFaults:
    """Fault rates that apply to every link.

    Attributes:
        drop_rate: chance a message is lost.
        duplicate_rate: chance a message arrives twice.
        delay_ms_min, delay_ms_max: the usual one-way delay range.
        slow_rate: chance of a long delay (which reorders messages).
        slow_delay_ms_max: the longest such delay.
    """

    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    delay_ms_min: int = 1
    delay_ms_max: int = 5
    slow_rate: float = 0.0
    slow_delay_ms_max: int = 500

    def __post_init__(self) -> None:
        assert 0.0 <= self.drop_rate < 1.0 and 0.0 <= self.duplicate_rate < 1.0
        assert 0.0 <= self.slow_rate <= 1.0
        assert 0 <= self.delay_ms_min <= self.delay_ms_max <= self.slow_delay_ms_max


class SimNetwork:
    """Decides the fate of each message; blocked links drop everything.

    Args:
        rng: the simulation's seeded generator.
        faults: rates for every link.
    """

    def __init__(self, rng: random.Random, faults: LinkFaults = LinkFaults()) -> None:
        self._rng = rng
        self.faults = faults
        self._blocked: set[tuple[int, int]] = set()
        self.sent_count = 0
        self.dropped_count = 0

    # -- partitions -----------------------------------------------------------------------

    def block(self, source: int, destination: int) -> None:
        """Drop every message from ``source`` to ``destination`` (one direction)."""
        self._blocked.add((source, destination))

    def isolate(self, node: int, others: list[int]) -> None:
        """Cut ``node`` off from ``others`` in both directions."""
        for other in others:
            if other != node:
                self._blocked.add((node, other))
                self._blocked.add((other, node))

    def split(self, side_a: list[int], side_b: list[int]) -> None:
        """Partition the nodes into two sides that cannot talk to each other."""
        for a in side_a:
            for b in side_b:
                self._blocked.add((a, b))
                self._blocked.add((b, a))

    def heal(self) -> None:
        self._blocked.clear()

    def is_blocked(self, source: int, destination: int) -> bool:
        return (source, destination) in self._blocked

    @property
    def blocked_links(self) -> frozenset[tuple[int, int]]:
        return frozenset(self._blocked)

    # -- delivery -------------------------------------------------------------------------

    def delays_ms(self, source: int, destination: int) -> list[int]:
        """When (ms from now) copies of one message arrive: [] if lost, two if duplicated."""
        self.sent_count += 1
        faults = self.faults
        rng = self._rng
        if (source, destination) in self._blocked or (
                faults.drop_rate and rng.random() < faults.drop_rate):
            self.dropped_count += 1
            return []
        copies = 2 if faults.duplicate_rate and rng.random() < faults.duplicate_rate else 1
        delays = []
        for _ in range(copies):
            if faults.slow_rate and rng.random() < faults.slow_rate:
                delays.append(rng.randint(faults.delay_ms_max, faults.slow_delay_ms_max))
            else:
                delays.append(rng.randint(faults.delay_ms_min, faults.delay_ms_max))
        return delays
