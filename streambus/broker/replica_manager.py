"""Replica manager: the partitions this node hosts, and the produce/fetch paths into them.

This module owns the mapping from (topic, partition) to :class:`PartitionLog`, keeps it in step
with the metadata image (creating logs for new partitions, deleting logs of removed topics), and
wakes long-polling fetches when data arrives.  It never decodes records: batches travel as
bytes from the request buffer to the log file and back (DESIGN §8, "hot paths").
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Callable

from streambus.log.config import LogConfig
from streambus.log.manager import LogManager
from streambus.log.partition_log import PartitionLog
from streambus.metadata.image import MetadataImage
from streambus.metadata.topic_config import (
    LONG_MAX,
    TOPIC_CONFIGS,
    BrokerConfigLayers,
    effective_topic_configs,
    resolve_topic_config,
)

__all__ = ["ReplicaManager", "Partition"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Partition:
    topic: str
    partition_index: int
    topic_id: uuid.UUID
    leader_epoch: int
    log: PartitionLog
    config: LogConfig
    topic_configs: dict[str, str]
    timestamp_before_max_ms: int
    timestamp_after_max_ms: int
    waiters: list[asyncio.Future] = field(default_factory=list)
    effective_configs: dict[str, str] = field(default_factory=dict)
    """Every topic config's effective value (topic, dynamic broker, static broker, default
    layers): what retention and the log cleaner read."""


class ReplicaManager:
    def __init__(
        self,
        log_manager: LogManager,
        node_id: int,
        broker_properties: dict[str, str],
        clock_ms: Callable[[], int],
        broker_layers: BrokerConfigLayers | None = None,
    ) -> None:
        self._log_manager = log_manager
        self._node_id = node_id
        self._broker_properties = broker_properties
        # Static broker layers; apply_image adds the dynamic broker configs of each image.
        self._static_layers = broker_layers
        self._layers = broker_layers
        self._clock_ms = clock_ms
        self.partitions: dict[tuple[str, int], Partition] = {}
        self.partitions_by_id: dict[uuid.UUID, str] = {}
        self.on_partitions_changed: Callable[[], None] | None = None

    # -- metadata -----------------------------------------------------------------------------

    def effective_configs(self, topic_configs: dict[str, str]) -> dict[str, str]:
        """Every topic config's effective value (explicit, else broker synonym, else default)."""
        if self._layers is not None:
            return effective_topic_configs(topic_configs, self._layers)
        return {
            name: resolve_topic_config(name, topic_configs, self._broker_properties)[0]
            for name in TOPIC_CONFIGS
        }

    def log_config_for(self, topic_configs: dict[str, str]) -> LogConfig:
        return LogConfig.from_topic_configs(self.effective_configs(topic_configs), LogConfig())

    def apply_image(self, old: MetadataImage | None, new: MetadataImage) -> None:
        """Bring hosted partitions in line with ``new``: create, reconfigure or delete logs."""
        if self._static_layers is not None:
            # Dynamic broker configs (cluster-wide "" and this node's) apply without a restart.
            self._layers = self._static_layers.with_dynamic(
                new.broker_configs(""), new.broker_configs(str(self._node_id)))
        live: set[tuple[str, int]] = set()
        for topic in new.topics_by_name.values():
            topic_configs = dict(new.topic_configs(topic.name))
            effective = self.effective_configs(topic_configs)
            config = LogConfig.from_topic_configs(effective, LogConfig())
            self.partitions_by_id[topic.topic_id] = topic.name
            for image in topic.partitions.values():
                if self._node_id not in image.replicas:
                    continue
                key = (topic.name, image.partition_index)
                live.add(key)
                partition = self.partitions.get(key)
                if partition is not None and partition.topic_id != topic.topic_id:
                    # Same name, new topic id: the old topic was deleted and recreated.
                    self._remove(key)
                    partition = None
                if partition is None:
                    log = self._log_manager.get_or_create(
                        topic.name, image.partition_index, config, topic.topic_id
                    )
                    # Single node: everything on disk was acknowledged under this leader, so the
                    # high watermark is the log end offset (replication refines this later).
                    log.high_watermark = log.log_end_offset
                    self.partitions[key] = Partition(
                        topic=topic.name,
                        partition_index=image.partition_index,
                        topic_id=topic.topic_id,
                        leader_epoch=image.leader_epoch,
                        log=log,
                        config=config,
                        topic_configs=topic_configs,
                        effective_configs=effective,
                        **self._timestamp_bounds(topic_configs),
                    )
                else:
                    partition.leader_epoch = image.leader_epoch
                    if (partition.topic_configs != topic_configs
                            or partition.effective_configs != effective):
                        partition.topic_configs = topic_configs
                        partition.effective_configs = effective
                        partition.config = config
                        bounds = self._timestamp_bounds(topic_configs)
                        partition.timestamp_before_max_ms = bounds["timestamp_before_max_ms"]
                        partition.timestamp_after_max_ms = bounds["timestamp_after_max_ms"]
                        self._log_manager.update_config(topic.name, config)
        for key in [k for k in self.partitions if k not in live]:
            self._remove(key)
        live_ids = {t.topic_id for t in new.topics_by_name.values()}
        for topic_id in [t for t in self.partitions_by_id if t not in live_ids]:
            del self.partitions_by_id[topic_id]
        if self.on_partitions_changed is not None:
            self.on_partitions_changed()

    def _timestamp_bounds(self, topic_configs: dict[str, str]) -> dict[str, int]:
        effective = self.effective_configs(topic_configs)
        if effective["message.timestamp.type"] == "LogAppendTime":
            # Kafka checks the bounds only for CreateTime: the broker replaces the timestamps.
            return {"timestamp_before_max_ms": LONG_MAX, "timestamp_after_max_ms": LONG_MAX}
        return {
            "timestamp_before_max_ms": int(effective["message.timestamp.before.max.ms"]),
            "timestamp_after_max_ms": int(effective["message.timestamp.after.max.ms"]),
        }

    def _remove(self, key: tuple[str, int]) -> None:
        partition = self.partitions.pop(key)
        self._wake(partition)
        self._log_manager.delete_partition(*key)
        logger.info("deleted partition %s-%d", *key)

    def load_existing(self, image: MetadataImage) -> None:
        """At startup: open logs for the image and delete directories of unknown partitions."""
        self.apply_image(None, image)
        for log in list(self._log_manager.all_logs()):
            if (log.topic, log.partition) not in self.partitions:
                logger.warning("removing stray partition directory %s-%d", log.topic, log.partition)
                self._log_manager.delete_partition(log.topic, log.partition)

    # -- data path ----------------------------------------------------------------------------

    def get(self, topic: str, partition_index: int) -> Partition | None:
        return self.partitions.get((topic, partition_index))

    def after_append(self, partition: Partition) -> None:
        """Advance the high watermark (single node: every append is fully replicated) and wake
        fetches parked on the partition."""
        log = partition.log
        log.high_watermark = log.log_end_offset
        self._wake(partition)

    @staticmethod
    def _wake(partition: Partition) -> None:
        if partition.waiters:
            waiters, partition.waiters = partition.waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def close(self) -> None:
        for partition in self.partitions.values():
            self._wake(partition)
