"""Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete, expiry and their replay.

This module owns the offsets a shard keeps per group, as Kafka's ``OffsetMetadataManager``
does.  Commits and deletes return records with ``replay_records=True``: the offsets change
only when the runtime replays the records after the append, so an offset is never visible
before it is durable.  It is a mixin of the shard; it does no I/O.

Retention (``offsets.retention.minutes``): an offset expires once the retention has passed
since the group became Empty (or since the commit, for groups without a protocol, and for
topics a Stable consumer group no longer subscribes to); a legacy commit with an explicit
expire timestamp (OffsetCommit v2-v4 ``retention_time_ms``) expires then.  Empty groups left
without offsets are deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streambus.coordinator.group.classic import ClassicGroup
from streambus.coordinator.group.records import (
    OffsetAndMetadata,
    group_metadata_tombstone,
    offset_commit_record,
    offset_commit_tombstone,
)
from streambus.coordinator.group.state import ClassicGroupState
from streambus.coordinator.result import CoordinatorRecord, CoordinatorResult
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.offset_commit import OffsetCommitRequest, OffsetCommitResponse
from streambus.protocol.messages.offset_delete import OffsetDeleteRequest, OffsetDeleteResponse
from streambus.protocol.messages.txn_offset_commit import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
)

if TYPE_CHECKING:
    from streambus.coordinator.group.config import GroupConfig

__all__ = ["OffsetOps", "FetchedOffset", "TopicsView", "NO_OFFSET"]

_S = ClassicGroupState
#: The offset OffsetFetch reports when nothing is committed.
NO_OFFSET = -1


class TopicsView:
    """What the coordinator may ask about topics (the runtime passes the metadata image's view).

    A plain class with the default answers for "no topics"; tests subclass or replace it.
    """

    def partition_count(self, topic: str) -> int | None:
        """Partitions of ``topic``, or None when it does not exist."""
        return None

    def topic_id(self, topic: str) -> Any | None:
        return None

    def topic_name(self, topic_id: Any) -> str | None:
        return None

    def topic_names(self) -> Sequence[str]:
        return ()


@dataclass(frozen=True, slots=True)
class FetchedOffset:
    partition_index: int
    committed_offset: int
    committed_leader_epoch: int
    metadata: str | None
    error_code: int = 0


class OffsetOps:
    """Mixin: offsets.  Attributes come from the shard."""

    groups: dict[str, Any]
    offsets: dict[str, dict[tuple[str, int], OffsetAndMetadata]]
    pending_txn_offsets: dict[int, dict[str, dict[tuple[str, int], OffsetAndMetadata | None]]]
    config: "GroupConfig"
    topics: TopicsView
    offset_commits_count: int

    # -- OffsetCommit -----------------------------------------------------------------------

    def offset_commit(self, request: OffsetCommitRequest, *, api_version: int,
                      now_ms: int) -> CoordinatorResult[OffsetCommitResponse]:
        """Validate the committer, then one record per accepted partition (replayed later)."""
        error = self._validate_offset_commit(request, api_version, now_ms)
        expire_ms = None
        if 2 <= api_version <= 4 and request.retention_time_ms != -1:
            expire_ms = now_ms + request.retention_time_ms
        records: list[CoordinatorRecord] = []
        topics = []
        for topic in request.topics:
            partitions = []
            known = self.topics.partition_count(topic.name) is not None
            for partition in topic.partitions:
                code = error
                metadata = partition.committed_metadata or ""
                if code is None and not known:
                    code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                elif code is None and len(metadata.encode()) > self.config.offset_metadata_max_bytes:
                    code = ErrorCode.OFFSET_METADATA_TOO_LARGE
                elif code is None:
                    records.append(offset_commit_record(
                        request.group_id, topic.name, partition.partition_index,
                        OffsetAndMetadata(
                            committed_offset=partition.committed_offset,
                            leader_epoch=partition.committed_leader_epoch,
                            metadata=metadata,
                            commit_timestamp_ms=now_ms,
                            expire_timestamp_ms=expire_ms)))
                partitions.append(OffsetCommitResponse.OffsetCommitResponsePartition(
                    partition_index=partition.partition_index, error_code=code or ErrorCode.NONE))
            topics.append(OffsetCommitResponse.OffsetCommitResponseTopic(
                name=topic.name, partitions=partitions))
        self.offset_commits_count += len(records)
        return CoordinatorResult(tuple(records), OffsetCommitResponse(topics=topics),
                                 replay_records=True)

    def _validate_offset_commit(self, request: OffsetCommitRequest, api_version: int,
                                now_ms: int) -> ErrorCode | None:
        if not request.group_id:
            return ErrorCode.INVALID_GROUP_ID
        group = self.groups.get(request.group_id)
        generation = request.generation_id_or_member_epoch
        if group is None:
            if generation >= 0:
                # v9+ (KIP-848 clients) say the group is gone; older clients expect
                # ILLEGAL_GENERATION and rejoin.
                return ErrorCode.GROUP_ID_NOT_FOUND if api_version >= 9 else ErrorCode.ILLEGAL_GENERATION
            # A "simple" group: offsets stored for a consumer that manages partitions itself.
            group = ClassicGroup(request.group_id, state_timestamp_ms=now_ms)
            self.groups[request.group_id] = group
        if isinstance(group, ClassicGroup):
            return _validate_classic_commit(group, request.member_id, request.group_instance_id,
                                            generation)
        return group.validate_offset_commit(request.member_id, request.group_instance_id,
                                            generation, api_version)

    # -- TxnOffsetCommit (KIP-98, KIP-447) --------------------------------------------------

    def txn_offset_commit(self, request: TxnOffsetCommitRequest, *,
                          now_ms: int) -> CoordinatorResult[TxnOffsetCommitResponse]:
        """Offsets committed inside a transaction: the runtime appends the records as the
        producer's transactional batch and replays them as *pending*
        (:meth:`replay_pending_offset`); the transaction's marker on this partition commits
        or drops them (:meth:`complete_transaction`)."""
        error = self._validate_txn_offset_commit(request, now_ms)
        records: list[CoordinatorRecord] = []
        topics = []
        for topic in request.topics:
            known = self.topics.partition_count(topic.name) is not None
            partitions = []
            for partition in topic.partitions:
                code = error
                metadata = partition.committed_metadata or ""
                if code is None and not known:
                    code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                elif code is None and len(metadata.encode()) > self.config.offset_metadata_max_bytes:
                    code = ErrorCode.OFFSET_METADATA_TOO_LARGE
                elif code is None:
                    records.append(offset_commit_record(
                        request.group_id, topic.name, partition.partition_index,
                        OffsetAndMetadata(committed_offset=partition.committed_offset,
                                          leader_epoch=partition.committed_leader_epoch,
                                          metadata=metadata, commit_timestamp_ms=now_ms)))
                partitions.append(TxnOffsetCommitResponse.TxnOffsetCommitResponsePartition(
                    partition_index=partition.partition_index, error_code=code or ErrorCode.NONE))
            topics.append(TxnOffsetCommitResponse.TxnOffsetCommitResponseTopic(
                name=topic.name, partitions=partitions))
        return CoordinatorResult(tuple(records), TxnOffsetCommitResponse(topics=topics),
                                 replay_records=False)

    def _validate_txn_offset_commit(self, request: TxnOffsetCommitRequest,
                                    now_ms: int) -> ErrorCode | None:
        """Kafka's validateTransactionalOffsetCommit: member checks only when the request
        names a member or generation (TxnOffsetCommit v3+, KIP-447)."""
        if not request.group_id:
            return ErrorCode.INVALID_GROUP_ID
        group = self.groups.get(request.group_id)
        generation = request.generation_id
        if group is None:
            if generation >= 0:
                return ErrorCode.ILLEGAL_GENERATION
            group = ClassicGroup(request.group_id, state_timestamp_ms=now_ms)
            self.groups[request.group_id] = group
        named = generation >= 0 or bool(request.member_id) or request.group_instance_id is not None
        if isinstance(group, ClassicGroup):
            if group.is_in(_S.DEAD):
                return ErrorCode.COORDINATOR_NOT_AVAILABLE
            if not named:
                return None
            error = group.validate_member(request.member_id, request.group_instance_id)
            if error is not None:
                return error
            return None if generation == group.generation_id else ErrorCode.ILLEGAL_GENERATION
        if not named:
            return None
        return group.validate_offset_commit(request.member_id, request.group_instance_id,
                                            generation, 9)

    def replay_pending_offset(self, producer_id: int, group_id: str, topic: str, partition: int,
                              offset: OffsetAndMetadata | None) -> None:
        """A transactional offset record (loading, or after a TxnOffsetCommit append)."""
        pending = self.pending_txn_offsets.setdefault(producer_id, {})
        pending.setdefault(group_id, {})[(topic, partition)] = offset

    def complete_transaction(self, producer_id: int, commit: bool, now_ms: int) -> None:
        """The transaction's marker reached this partition: its offsets become committed
        (COMMIT) or are forgotten (ABORT)."""
        pending = self.pending_txn_offsets.pop(producer_id, None)
        if not pending or not commit:
            return
        for group_id, offsets in pending.items():
            for (topic, partition), offset in offsets.items():
                self.replay_offset(group_id, topic, partition, offset, now_ms)
                self.offset_commits_count += offset is not None

    def has_pending_offsets(self, group_id: str) -> bool:
        return any(group_id in groups for groups in self.pending_txn_offsets.values())

    # -- OffsetFetch ------------------------------------------------------------------------

    def offset_fetch(self, group_id: str, topics: Sequence[tuple[str, Sequence[int]]] | None, *,
                     member_id: str | None = None, member_epoch: int = -1,
                     require_stable: bool = False,
                     ) -> tuple[int, list[tuple[str, list[FetchedOffset]]]]:
        """(group error, [(topic, offsets)]); ``topics`` None asks for every committed offset.

        A group that does not exist is not an error: every partition reads as NO_OFFSET.
        With ``require_stable`` (KIP-447, OffsetFetch v7+), a partition whose offset a still
        open transaction has written reads UNSTABLE_OFFSET_COMMIT, so a consumer does not
        start from an offset that may yet be aborted.
        """
        if require_stable:
            unstable = {tp for groups in self.pending_txn_offsets.values()
                        for tp in groups.get(group_id, {})}
            if unstable:
                error, fetched = self.offset_fetch(group_id, topics, member_id=member_id,
                                                   member_epoch=member_epoch)
                return error, [
                    (topic, [FetchedOffset(o.partition_index, NO_OFFSET, -1, "",
                                           ErrorCode.UNSTABLE_OFFSET_COMMIT)
                             if (topic, o.partition_index) in unstable else o
                             for o in offsets])
                    for topic, offsets in fetched]
        group = self.groups.get(group_id)
        if group is not None:
            if isinstance(group, ClassicGroup):
                if group.is_in(_S.DEAD):
                    return ErrorCode.GROUP_ID_NOT_FOUND, []
            else:
                error = group.validate_offset_fetch(member_id, member_epoch)
                if error is not None:
                    return error, []
        stored = self.offsets.get(group_id, {})
        out: list[tuple[str, list[FetchedOffset]]] = []
        if topics is None:
            by_topic: dict[str, list[FetchedOffset]] = {}
            for (topic, partition), offset in sorted(stored.items()):
                by_topic.setdefault(topic, []).append(_fetched(partition, offset))
            return ErrorCode.NONE, list(by_topic.items())
        for topic, partitions in topics:
            fetched = []
            for partition in partitions:
                offset = stored.get((topic, partition))
                fetched.append(_fetched(partition, offset))
            out.append((topic, fetched))
        return ErrorCode.NONE, out

    # -- OffsetDelete -----------------------------------------------------------------------

    def offset_delete(self, request: OffsetDeleteRequest) -> CoordinatorResult[OffsetDeleteResponse]:
        group = self.groups.get(request.group_id)
        if group is None or (isinstance(group, ClassicGroup) and group.is_in(_S.DEAD)):
            return CoordinatorResult((), OffsetDeleteResponse(
                error_code=ErrorCode.GROUP_ID_NOT_FOUND))
        if isinstance(group, ClassicGroup) and not group.is_empty and not group.uses_consumer_protocol:
            return CoordinatorResult((), OffsetDeleteResponse(error_code=ErrorCode.NON_EMPTY_GROUP))
        stored = self.offsets.get(request.group_id, {})
        records = []
        topics = []
        for topic in request.topics:
            subscribed = not group.is_empty and group.is_subscribed_to_topic(topic.name)
            partitions = []
            for partition in topic.partitions:
                code = ErrorCode.NONE
                if subscribed:
                    code = ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC
                elif (topic.name, partition.partition_index) in stored:
                    records.append(offset_commit_tombstone(request.group_id, topic.name,
                                                           partition.partition_index))
                partitions.append(OffsetDeleteResponse.OffsetDeleteResponsePartition(
                    partition_index=partition.partition_index, error_code=code))
            topics.append(OffsetDeleteResponse.OffsetDeleteResponseTopic(
                name=topic.name, partitions=partitions))
        return CoordinatorResult(tuple(records), OffsetDeleteResponse(topics=topics),
                                 replay_records=True)

    # -- expiry -----------------------------------------------------------------------------

    def _expired_offset_records(self, now_ms: int) -> list[CoordinatorRecord]:
        """Tombstones for expired offsets, and for Empty groups they leave without offsets."""
        records: list[CoordinatorRecord] = []
        for group_id, group in list(self.groups.items()):
            stored = self.offsets.get(group_id, {})
            base = _expiration_base(group)
            expired = 0
            if base is not None:
                for (topic, partition), offset in sorted(stored.items()):
                    if _is_expired(offset, base, topic, now_ms, self.config.offsets_retention_ms):
                        records.append(offset_commit_tombstone(group_id, topic, partition))
                        expired += 1
            if expired == len(stored) and group.is_empty and _deletable_when_empty(group):
                records += self._group_tombstones(group)
        return records

    def _group_tombstones(self, group: Any) -> list[CoordinatorRecord]:
        if isinstance(group, ClassicGroup):
            return [group_metadata_tombstone(group.group_id)]
        return group.tombstones()

    def replay_offset(self, group_id: str, topic: str, partition: int,
                      offset: OffsetAndMetadata | None, now_ms: int) -> None:
        stored = self.offsets.setdefault(group_id, {})
        if offset is None:
            stored.pop((topic, partition), None)
            if not stored:
                del self.offsets[group_id]
            return
        stored[(topic, partition)] = offset
        if group_id not in self.groups:
            # Offsets without a group record belong to a simple group (Kafka re-creates it).
            self.groups[group_id] = ClassicGroup(group_id, state_timestamp_ms=now_ms)


def _fetched(partition: int, offset: OffsetAndMetadata | None) -> FetchedOffset:
    if offset is None:
        return FetchedOffset(partition, NO_OFFSET, -1, "")
    return FetchedOffset(partition, offset.committed_offset, offset.leader_epoch, offset.metadata)


def _validate_classic_commit(group: ClassicGroup, member_id: str, instance_id: str | None,
                             generation: int) -> ErrorCode | None:
    """Kafka's ClassicGroup.validateOffsetCommit (non-transactional)."""
    if group.is_in(_S.DEAD):
        return ErrorCode.COORDINATOR_NOT_AVAILABLE
    if generation < 0 and group.is_empty:
        return None  # admin tools and standalone consumers may commit to an empty group
    if generation >= 0 or member_id or instance_id is not None:
        error = group.validate_member(member_id, instance_id)
        if error is not None:
            return error
        if generation != group.generation_id:
            return ErrorCode.ILLEGAL_GENERATION
    elif not group.is_empty:
        return ErrorCode.UNKNOWN_MEMBER_ID
    if group.is_in(_S.COMPLETING_REBALANCE):
        # The member has its new generation but not its assignment yet.
        return ErrorCode.REBALANCE_IN_PROGRESS
    return None


def _expiration_base(group: Any) -> Callable[[OffsetAndMetadata, str], int | None] | None:
    """Per-offset "retention counts from" timestamp, or None when nothing may expire."""
    if isinstance(group, ClassicGroup):
        if not group.protocol_type:
            return lambda offset, topic: offset.commit_timestamp_ms
        if group.is_empty:
            state_ms = group.state_timestamp_ms
            return lambda offset, topic: state_ms if state_ms >= 0 else offset.commit_timestamp_ms
        if group.uses_consumer_protocol and group.subscribed_topics is not None and group.is_in(_S.STABLE):
            subscribed = group.subscribed_topics
            return lambda offset, topic: None if topic in subscribed else offset.commit_timestamp_ms
        return None
    subscribed_names = group.subscribed_topic_names()
    return lambda offset, topic: None if topic in subscribed_names else offset.commit_timestamp_ms


def _is_expired(offset: OffsetAndMetadata, base: Callable[[OffsetAndMetadata, str], int | None],
                topic: str, now_ms: int, retention_ms: int) -> bool:
    if offset.expire_timestamp_ms is not None:
        return now_ms >= offset.expire_timestamp_ms
    base_ms = base(offset, topic)
    return base_ms is not None and now_ms - base_ms >= retention_ms


def _deletable_when_empty(group: Any) -> bool:
    return not isinstance(group, ClassicGroup) or group.is_in(_S.EMPTY)
