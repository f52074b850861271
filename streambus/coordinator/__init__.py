"""Coordinators: pure state machines plus the asyncio runtime that persists their records.

Layering (DESIGN §3 "Coordinators", §8): ``result.py`` defines what an operation returns;
``group/`` holds the group coordinator's pure shard (no asyncio, no I/O, time passed in as
``now_ms``); ``runtime.py`` is the only module here that touches asyncio and the partition
logs of ``__consumer_offsets``.  Nothing in this package imports ``streambus.broker``.
"""

from __future__ import annotations

from streambus.coordinator.result import Completion as Completion
from streambus.coordinator.result import CoordinatorRecord as CoordinatorRecord
from streambus.coordinator.result import CoordinatorResult as CoordinatorResult

__all__ = ["Completion", "CoordinatorRecord", "CoordinatorResult"]
