"""Consumer-group administration: ListGroups, DescribeGroups, ConsumerGroupDescribe,
DeleteGroups, OffsetFetch, OffsetCommit and ListOffsets, as version-independent calls.

This module owns building version-correct group requests (which fields exist in which
version is decided here, nowhere else) and flattening their responses.  It is a mixin of
:class:`streambus.client.admin.AdminClient` (it only needs ``self.transport``), never formats
output, and leaves per-item errors in the results; a whole-request error raises
:class:`~streambus.client.errors.KafkaApiError`.

Single broker assumption: requests go to the connected broker, which on a one-node cluster is
every group's coordinator (FindCoordinator would name the same node).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from streambus.client.errors import KafkaApiError
from streambus.protocol.api_keys import ApiKey
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.consumer_group_describe import (
    ConsumerGroupDescribeRequest,
    ConsumerGroupDescribeResponse,
)
from streambus.protocol.messages.delete_groups import DeleteGroupsRequest, DeleteGroupsResponse
from streambus.protocol.messages.describe_groups import DescribeGroupsRequest, DescribeGroupsResponse
from streambus.protocol.messages.list_groups import ListGroupsRequest, ListGroupsResponse
from streambus.protocol.messages.list_offsets import ListOffsetsRequest
from streambus.protocol.messages.offset_commit import OffsetCommitRequest
from streambus.protocol.messages.offset_fetch import OffsetFetchRequest

__all__ = ["GroupAdminMixin", "CommittedOffset", "EARLIEST_TIMESTAMP", "LATEST_TIMESTAMP"]

#: ListOffsets timestamps meaning "log end offset" and "log start offset".
LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2
_STATES_FILTER_VERSION = 4
_TYPES_FILTER_VERSION = 5
_MULTI_GROUP_FETCH_VERSION = 8
#: OffsetFetch v2 made a null topic list mean "every committed offset".
_ALL_TOPICS_FETCH_VERSION = 2

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    offset: int
    """-1 when the group has no commit for the partition."""
    metadata: str | None
    leader_epoch: int = -1


def _check(error_code: int, resource: str, message: str | None = None) -> None:
    if error_code != ErrorCode.NONE:
        raise KafkaApiError(error_code, message, resource)


class GroupAdminMixin:
    """Group admin calls; the host class provides ``transport``."""

    __slots__ = ()
    transport: Any

    def list_groups(self, states: Sequence[str] = (),
                    types: Sequence[str] = ()) -> list[ListGroupsResponse.ListedGroup]:
        """Every group of the broker, filtered by state/type on the broker when it can (v4/v5)
        and here otherwise."""
        version = self.transport.version_for(ApiKey.LIST_GROUPS)
        request = ListGroupsRequest()
        if version >= _STATES_FILTER_VERSION:
            request.states_filter = list(states)
        if version >= _TYPES_FILTER_VERSION:
            request.types_filter = list(types)
        response = self.transport.send(request, version)
        _check(response.error_code, "ListGroups")
        wanted_states = {s.lower() for s in states}
        wanted_types = {t.lower() for t in types}
        return [g for g in response.groups
                if (not wanted_states or version < _STATES_FILTER_VERSION
                    or g.group_state.lower() in wanted_states or not g.group_state)
                and (not wanted_types or g.group_type.lower() in wanted_types or not g.group_type)]

    def describe_groups(self, group_ids: Sequence[str]) -> list[DescribeGroupsResponse.DescribedGroup]:
        """Classic groups; an unknown group comes back with state ``Dead``."""
        if not group_ids:
            return []
        version = self.transport.version_for(ApiKey.DESCRIBE_GROUPS)
        response = self.transport.send(DescribeGroupsRequest(groups=list(group_ids)), version)
        return list(response.groups)

    def describe_consumer_groups(self, group_ids: Sequence[str]
                                 ) -> list[ConsumerGroupDescribeResponse.DescribedGroup]:
        """KIP-848 groups (ConsumerGroupDescribe); others come back GROUP_ID_NOT_FOUND."""
        if not group_ids:
            return []
        version = self.transport.version_for(ApiKey.CONSUMER_GROUP_DESCRIBE)
        response = self.transport.send(ConsumerGroupDescribeRequest(group_ids=list(group_ids)),
                                       version)
        return list(response.groups)

    def delete_groups(self, group_ids: Sequence[str]) -> list[DeleteGroupsResponse.DeletableGroupResult]:
        version = self.transport.version_for(ApiKey.DELETE_GROUPS)
        response = self.transport.send(DeleteGroupsRequest(groups_names=list(group_ids)), version)
        return list(response.results)

    def fetch_committed_offsets(self, group_id: str,
                                partitions: Sequence[TopicPartition] | None = None
                                ) -> dict[TopicPartition, CommittedOffset]:
        """The group's committed offsets (all of them when ``partitions`` is None).

        Raises:
            KafkaApiError: the group-level error (e.g. COORDINATOR_LOAD_IN_PROGRESS).
        """
        version = self.transport.version_for(ApiKey.OFFSET_FETCH)
        by_topic: dict[str, list[int]] = {}
        for topic, partition in partitions or ():
            by_topic.setdefault(topic, []).append(partition)
        if version >= _MULTI_GROUP_FETCH_VERSION:
            topics = None if partitions is None else [
                OffsetFetchRequest.OffsetFetchRequestTopics(name=t, partition_indexes=p)
                for t, p in by_topic.items()]
            request = OffsetFetchRequest(groups=[OffsetFetchRequest.OffsetFetchRequestGroup(
                group_id=group_id, topics=topics)])
            response = self.transport.send(request, version)
            [group] = response.groups
            _check(group.error_code, group_id)
            items = [(t.name, p) for t in group.topics for p in t.partitions]
        else:
            if partitions is None and version < _ALL_TOPICS_FETCH_VERSION:
                raise ValueError(f"OffsetFetch v{version} cannot ask for every offset; "
                                 "name the partitions")
            topics = None if partitions is None else [
                OffsetFetchRequest.OffsetFetchRequestTopic(name=t, partition_indexes=p)
                for t, p in by_topic.items()]
            response = self.transport.send(OffsetFetchRequest(group_id=group_id, topics=topics),
                                           version)
            _check(response.error_code, group_id)
            items = [(t.name, p) for t in response.topics for p in t.partitions]
        out = {}
        for topic, partition in items:
            _check(partition.error_code, f"{topic}-{partition.partition_index}")
            out[(topic, partition.partition_index)] = CommittedOffset(
                partition.committed_offset, partition.metadata, partition.committed_leader_epoch)
        return out

    def commit_offsets(self, group_id: str, offsets: Mapping[TopicPartition, int],
                       metadata: str = "") -> dict[TopicPartition, int]:
        """Commit as an admin (no member, generation -1): the group must be empty.

        Returns:
            error code per partition.
        """
        version = self.transport.version_for(ApiKey.OFFSET_COMMIT)
        by_topic: dict[str, list[OffsetCommitRequest.OffsetCommitRequestPartition]] = {}
        for (topic, partition), offset in sorted(offsets.items()):
            by_topic.setdefault(topic, []).append(OffsetCommitRequest.OffsetCommitRequestPartition(
                partition_index=partition, committed_offset=offset, committed_metadata=metadata))
        request = OffsetCommitRequest(group_id=group_id, topics=[
            OffsetCommitRequest.OffsetCommitRequestTopic(name=t, partitions=p)
            for t, p in by_topic.items()])
        response = self.transport.send(request, version)
        return {(t.name, p.partition_index): p.error_code
                for t in response.topics for p in t.partitions}

    def list_offsets(self, partitions: Sequence[TopicPartition],
                     timestamp: int = LATEST_TIMESTAMP) -> dict[TopicPartition, int]:
        """Log end (``LATEST_TIMESTAMP``) or start (``EARLIEST_TIMESTAMP``) offsets.

        Raises:
            KafkaApiError: a partition's error (e.g. UNKNOWN_TOPIC_OR_PARTITION).
        """
        if not partitions:
            return {}
        version = self.transport.version_for(ApiKey.LIST_OFFSETS)
        by_topic: dict[str, list[ListOffsetsRequest.ListOffsetsPartition]] = {}
        for topic, partition in partitions:
            by_topic.setdefault(topic, []).append(ListOffsetsRequest.ListOffsetsPartition(
                partition_index=partition, timestamp=timestamp))
        request = ListOffsetsRequest(replica_id=-1, topics=[
            ListOffsetsRequest.ListOffsetsTopic(name=t, partitions=p) for t, p in by_topic.items()])
        response = self.transport.send(request, version)
        out = {}
        for topic in response.topics:
            for partition in topic.partitions:
                _check(partition.error_code, f"{topic.name}-{partition.partition_index}")
                out[(topic.name, partition.partition_index)] = partition.offset
        return out
