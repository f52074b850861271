"""Background log lifecycle: the retention task and the log cleaner, run on the event loop.

This module owns scheduling: retention every ``log.retention.check.interval.ms`` (Kafka's
``LogManager`` scheduler), and the cleaner loop with ``log.cleaner.backoff.ms`` between idle
checks.  What retention deletes is ``retention.py``'s decision, what compaction keeps
``cleaner.py``'s.  It reads the broker's partitions and configs through callables, so it never
imports the broker, and it reads time only through the injected clock (tests call
:meth:`LogLifecycle.run_retention_once` with a manual one).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Callable, Iterable, Mapping

from streambus.log.cleaner import CleanerConfig, CompactionConfig, LogCleaner
from streambus.log.errors import LogError
from streambus.log.partition_log import PartitionLog
from streambus.log.retention import RetentionResult, apply_retention

__all__ = ["LogLifecycle"]

logger = logging.getLogger(__name__)

#: (log, its effective topic configs by Kafka name) for every hosted partition.
Partitions = Callable[[], Iterable[tuple[PartitionLog, Mapping[str, str]]]]


class LogLifecycle:
    """Retention and compaction for the partitions a broker hosts.

    Args:
        data_dir: where the cleaner keeps ``cleaner-offset-checkpoint``.
        clock_ms: wall clock in ms.
        partitions: the hosted partitions with their effective topic configs.
        broker_properties: effective broker properties by Kafka name (static and dynamic),
            re-read before every cleaner pass so ``log.cleaner.*`` changes apply at once.
        retention_check_interval_ms: ``log.retention.check.interval.ms``.
        checkpoint: persists log start offsets after retention moved them.
    """

    def __init__(
        self,
        *,
        data_dir: Path,
        clock_ms: Callable[[], int],
        partitions: Partitions,
        broker_properties: Callable[[], Mapping[str, str]],
        retention_check_interval_ms: int,
        checkpoint: Callable[[], None],
    ) -> None:
        self._clock_ms = clock_ms
        self._partitions = partitions
        self._broker_properties = broker_properties
        self._retention_interval_s = retention_check_interval_ms / 1000
        self._checkpoint = checkpoint
        self.cleaner = LogCleaner(data_dir, clock_ms, self.cleaner_config())
        self._tasks: list[asyncio.Task] = []

    def cleaner_config(self) -> CleanerConfig:
        return CleanerConfig.from_broker_properties(self._broker_properties())

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._run_retention(), name="log-retention"),
            loop.create_task(self.cleaner.run(self._compaction_candidates, self.cleaner_config),
                             name="log-cleaner"),
        ]

    async def stop(self) -> None:
        """Cancel both tasks (a pass in progress leaves only a ``.cleaned`` file, which is
        removed) and write the cleaner checkpoint."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                logger.exception("log lifecycle task failed")
        self._tasks = []
        try:
            self.cleaner.checkpoint()
        except OSError:
            logger.exception("could not write the cleaner checkpoint")

    def _compaction_candidates(self) -> list[tuple[PartitionLog, CompactionConfig]]:
        return [(log, CompactionConfig.from_topic_configs(configs))
                for log, configs in self._partitions()]

    def run_retention_once(self) -> list[RetentionResult]:
        """One retention pass over every hosted partition; returns what was deleted."""
        now_ms = self._clock_ms()
        results = []
        for log, _ in list(self._partitions()):
            if log.is_closed:
                continue
            try:
                result = apply_retention(log, now_ms)
            except LogError:
                logger.exception("retention of %s-%d failed", log.topic, log.partition)
                continue
            if result.deleted_segment_count:
                results.append(result)
        if results:
            # A crash must not resurrect deleted offsets: persist the new log starts now.
            self._checkpoint()
        return results

    async def _run_retention(self) -> None:
        while True:
            await asyncio.sleep(self._retention_interval_s)
            try:
                self.run_retention_once()
            except Exception:  # housekeeping must never take the node down
                logger.exception("retention pass failed")
