"""The group coordinator shard: one per ``__consumer_offsets`` partition, pure.

This module owns the public operations of the group coordinator (Kafka's
``GroupCoordinatorShard``): every API a handler calls, the timers, and ``replay``, which
rebuilds state from the partition's records when it is loaded.  Each operation takes
``now_ms`` and returns a :class:`~streambus.coordinator.result.CoordinatorResult`; the runtime
appends the records before it sends any response (``result.py`` states the contract).  The
classic protocol, offsets and KIP-848 live in mixins (``classic_ops.py``, ``offsets.py``,
``consumer.py``); this file composes them and adds the cross-cutting admin operations
(ListGroups, DescribeGroups, DeleteGroups).

Never: asyncio, sockets, files, clocks.  Member ids come from an injected factory so tests
are deterministic.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from streambus.coordinator.group.classic import ClassicGroup, ClassicMember
from streambus.coordinator.group.classic_ops import ClassicGroupOps, heartbeat_key, join_key, sync_key
from streambus.coordinator.group.config import GroupConfig
from streambus.coordinator.group.consumer import ConsumerGroup, ConsumerGroupOps
from streambus.coordinator.group.offsets import OffsetOps, TopicsView
from streambus.coordinator.group.records import OffsetAndMetadata, offset_commit_tombstone, offset_from_value
from streambus.coordinator.group.state import ClassicGroupState
from streambus.coordinator.group.timer import Timer
from streambus.coordinator.result import Completion, CoordinatorRecord, CoordinatorResult
from streambus.protocol.coordinator_records import GroupMetadataKey, OffsetCommitKey
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.consumer_group_describe import ConsumerGroupDescribeResponse
from streambus.protocol.messages.consumer_group_heartbeat import (
    ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
)
from streambus.protocol.messages.delete_groups import DeleteGroupsResponse
from streambus.protocol.messages.describe_groups import DescribeGroupsResponse
from streambus.protocol.messages.heartbeat import HeartbeatRequest, HeartbeatResponse
from streambus.protocol.messages.join_group import JoinGroupRequest, JoinGroupResponse
from streambus.protocol.messages.leave_group import LeaveGroupRequest, LeaveGroupResponse
from streambus.protocol.messages.list_groups import ListGroupsResponse
from streambus.protocol.messages.sync_group import SyncGroupRequest, SyncGroupResponse

__all__ = ["GroupCoordinatorShard", "TopicsView", "uuid_member_id"]

logger = logging.getLogger(__name__)

_S = ClassicGroupState
#: Bound on timer operations fired by one poll (the rest fire on the next poll).
TIMERS_PER_POLL_MAX = 10_000
_OFFSETS_CLEANUP_KEY = "offsets-cleanup"


def uuid_member_id(prefix: str) -> str:
    """Kafka's member ids: ``<client id or instance id>-<random UUID>``."""
    return f"{prefix}-{uuid.uuid4()}" if prefix else str(uuid.uuid4())


class GroupCoordinatorShard(ClassicGroupOps, OffsetOps, ConsumerGroupOps):
    """State of the groups that hash to one ``__consumer_offsets`` partition.

    Args:
        config: coordinator settings.
        topics: read access to topic metadata (names, ids, partition counts).
        member_id_factory: makes member ids from a prefix; tests pass a counter.
    """

    def __init__(self, config: GroupConfig | None = None, topics: TopicsView | None = None,
                 member_id_factory: Callable[[str], str] = uuid_member_id) -> None:
        self.config = config or GroupConfig()
        self.topics = topics or TopicsView()
        self.groups: dict[str, ClassicGroup | ConsumerGroup] = {}
        self.offsets: dict[str, dict[tuple[str, int], OffsetAndMetadata]] = {}
        #: producer id -> group -> partition -> offset committed in its open transaction.
        self.pending_txn_offsets: dict[int, dict[str, dict[tuple[str, int], OffsetAndMetadata | None]]] = {}
        self.timer = Timer()
        self._member_id_factory = member_id_factory
        self._completions: list[Completion] = []
        self.rebalances_completed_count = 0
        self.offset_commits_count = 0

    # -- plumbing for the mixins ------------------------------------------------------------

    def _answer(self, token: int, response: Any) -> None:
        self._completions.append(Completion(token, response))

    def _complete(self, completion: Completion | None) -> None:
        if completion is not None:
            self._completions.append(completion)

    def _new_member_id(self, prefix: str) -> str:
        return self._member_id_factory(prefix)

    def _classic_group(self, group_id: str) -> ClassicGroup | None:
        group = self.groups.get(group_id)
        return group if isinstance(group, ClassicGroup) else None

    def _delete_consumer_group(self, group: ConsumerGroup) -> list[CoordinatorRecord]:
        self._cancel_group_timers(group)
        del self.groups[group.group_id]
        return group.tombstones()

    def _result(self, records: Sequence[CoordinatorRecord], *, token: int | None = None,
                response: Any = None, replay_records: bool = False) -> CoordinatorResult:
        """Drain this operation's completions; the caller's own becomes ``response``."""
        completions = []
        for completion in self._completions:
            if token is not None and completion.token == token and response is None:
                response = completion.response
            else:
                completions.append(completion)
        self._completions = []
        return CoordinatorResult(tuple(records), response, tuple(completions), replay_records)

    # -- classic protocol -------------------------------------------------------------------

    def join_group(self, token: int, request: JoinGroupRequest, *, api_version: int,
                   client_id: str, client_host: str, now_ms: int) -> CoordinatorResult[JoinGroupResponse]:
        """JoinGroup.  ``response`` is None when the request is parked under ``token``.

        ``request.rebalance_timeout_ms`` must already be set (v0 requests use the session
        timeout, as Kafka does).
        """
        records = self._join_group(token, request, api_version=api_version, client_id=client_id,
                                   client_host=client_host, now_ms=now_ms)
        return self._result(records, token=token)

    def sync_group(self, token: int, request: SyncGroupRequest, *,
                   now_ms: int) -> CoordinatorResult[SyncGroupResponse]:
        """SyncGroup.  ``response`` is None while the follower waits for the leader."""
        records = self._sync_group(token, request, now_ms=now_ms)
        return self._result(records, token=token)

    def heartbeat(self, request: HeartbeatRequest, *, now_ms: int) -> CoordinatorResult[HeartbeatResponse]:
        return self._result((), response=self._heartbeat(request, now_ms=now_ms))

    def leave_group(self, group_id: str, members: list[LeaveGroupRequest.MemberIdentity], *,
                    now_ms: int) -> CoordinatorResult[LeaveGroupResponse]:
        """LeaveGroup in its batched (v3+) form; handlers convert v0-v2 to one identity."""
        response, records = self._leave_group(group_id, members, now_ms=now_ms)
        return self._result(records, response=response)

    # -- KIP-848 ----------------------------------------------------------------------------

    def consumer_group_heartbeat(self, request: ConsumerGroupHeartbeatRequest, *, api_version: int,
                                 client_id: str, client_host: str,
                                 now_ms: int) -> CoordinatorResult[ConsumerGroupHeartbeatResponse]:
        response, records = self._consumer_group_heartbeat(
            request, api_version=api_version, client_id=client_id, client_host=client_host,
            now_ms=now_ms)
        return self._result(records, response=response)

    def consumer_group_describe(self, group_ids: Sequence[str]) -> list[ConsumerGroupDescribeResponse.DescribedGroup]:
        return [self._describe_consumer_group(group_id) for group_id in group_ids]

    # -- admin ------------------------------------------------------------------------------

    def list_groups(self, states_filter: Sequence[str] = (),
                    types_filter: Sequence[str] = ()) -> list[ListGroupsResponse.ListedGroup]:
        """Groups whose state and type match the filters (case-insensitive; empty = all)."""
        states = {s.lower() for s in states_filter}
        types = {t.lower() for t in types_filter}
        listed = []
        for group_id, group in sorted(self.groups.items()):
            state = group.state.value
            if group.state is _S.DEAD or (states and state.lower() not in states):
                continue
            if types and group.type_name not in types:
                continue
            listed.append(ListGroupsResponse.ListedGroup(
                group_id=group_id, protocol_type=group.protocol_type or "",
                group_state=state, group_type=group.type_name))
        return listed

    def describe_groups(self, group_ids: Sequence[str]) -> list[DescribeGroupsResponse.DescribedGroup]:
        """DescribeGroups v0-v5: unknown (and non-classic) groups read as Dead, no error."""
        described = []
        for group_id in group_ids:
            group = self.groups.get(group_id)
            if not isinstance(group, ClassicGroup):
                described.append(DescribeGroupsResponse.DescribedGroup(
                    group_id=group_id, group_state=_S.DEAD.value))
                continue
            stable = group.is_in(_S.STABLE)
            described.append(DescribeGroupsResponse.DescribedGroup(
                group_id=group_id,
                group_state=group.state.value,
                protocol_type=group.protocol_type or "",
                protocol_data=(group.protocol_name or "") if stable else "",
                members=[_described_member(member, group.protocol_name if stable else None)
                         for member in group.members.values()],
            ))
        return described

    def delete_groups(self, group_ids: Sequence[str]) -> CoordinatorResult[list[DeleteGroupsResponse.DeletableGroupResult]]:
        """DeleteGroups: tombstones for each deletable group and its offsets (replayed later)."""
        records: list[CoordinatorRecord] = []
        results = []
        for group_id in group_ids:
            error = self._validate_delete(group_id)
            if error is None:
                group = self.groups[group_id]
                for topic, partition in sorted(self.offsets.get(group_id, {})):
                    records.append(offset_commit_tombstone(group_id, topic, partition))
                records += self._group_tombstones(group)
                self._cancel_group_timers(group)
            results.append(DeleteGroupsResponse.DeletableGroupResult(
                group_id=group_id, error_code=error or ErrorCode.NONE))
        return CoordinatorResult(tuple(records), results, replay_records=True)

    def _validate_delete(self, group_id: str) -> ErrorCode | None:
        if not group_id:
            return ErrorCode.INVALID_GROUP_ID
        group = self.groups.get(group_id)
        if group is None or group.state is _S.DEAD:
            return ErrorCode.GROUP_ID_NOT_FOUND
        if not group.is_empty:
            return ErrorCode.NON_EMPTY_GROUP
        return None

    def _cancel_group_timers(self, group: Any) -> None:
        group_id = group.group_id
        self.timer.cancel(join_key(group_id))
        self.timer.cancel(sync_key(group_id))
        for member_id in list(group.members) + list(getattr(group, "pending_join_members", ())):
            self.timer.cancel(heartbeat_key(group_id, member_id))
            self.timer.cancel(f"consumer-session-{group_id}-{member_id}")
            self.timer.cancel(f"consumer-revoke-{group_id}-{member_id}")

    # -- time -------------------------------------------------------------------------------

    def next_deadline_ms(self) -> int | None:
        return self.timer.next_deadline_ms()

    def poll(self, now_ms: int) -> list[CoordinatorResult]:
        """Fire the timers due at ``now_ms``, each as its own operation, earliest first."""
        results = []
        for _ in range(TIMERS_PER_POLL_MAX):
            operation = self.timer.pop_expired(now_ms)
            if operation is None:
                break
            records = operation(now_ms) or []
            replay = bool(records) and getattr(operation, "replay_records", False)
            result = self._result(records, replay_records=replay)
            if result.records or result.completions:
                results.append(result)
        return results

    def schedule_offsets_cleanup(self, now_ms: int) -> None:
        """Start the periodic offsets-retention pass (``offsets.retention.check.interval.ms``)."""
        interval_ms = self.config.offsets_retention_check_interval_ms

        def cleanup(now: int) -> list[CoordinatorRecord]:
            self.timer.schedule(_OFFSETS_CLEANUP_KEY, now + interval_ms, cleanup)
            return self._expired_offset_records(now)

        cleanup.replay_records = True  # type: ignore[attr-defined]
        self.timer.schedule(_OFFSETS_CLEANUP_KEY, now_ms + interval_ms, cleanup)

    # -- loading ----------------------------------------------------------------------------

    def replay(self, record: CoordinatorRecord, now_ms: int = 0) -> None:
        """Apply one stored record (loading, or after an operation with ``replay_records``)."""
        key, value = record.key, record.value
        if isinstance(key, OffsetCommitKey):
            offset = None if value is None else offset_from_value(value)
            self.replay_offset(key.group, key.topic, key.partition, offset, now_ms)
        elif isinstance(key, GroupMetadataKey):
            if value is None:
                group = self.groups.get(key.group)
                if isinstance(group, ClassicGroup):
                    self._cancel_group_timers(group)
                    del self.groups[key.group]
            else:
                self.groups[key.group] = _classic_group_from_value(key.group, value)
        else:
            self._replay_consumer_record(record)

    def replay_transactional(self, producer_id: int, record: CoordinatorRecord) -> None:
        """Apply a record of a transactional batch: offsets stay pending until the marker."""
        key, value = record.key, record.value
        if isinstance(key, OffsetCommitKey):
            self.replay_pending_offset(producer_id, key.group, key.topic, key.partition,
                                       None if value is None else offset_from_value(value))

    def on_loaded(self, now_ms: int) -> None:
        """After a load: members' session timers start now (Kafka's onLoaded)."""
        for group in self.groups.values():
            for member in group.members.values():
                if isinstance(group, ClassicGroup):
                    self._reschedule_heartbeat(group, member, now_ms + member.session_timeout_ms)
                else:
                    self._cg_schedule_member_timers(group, member, now_ms)
        self.schedule_offsets_cleanup(now_ms)

    def on_unloaded(self) -> list[Completion]:
        """Answer every parked request with NOT_COORDINATOR (the client finds us again)."""
        completions = []
        for group in self.groups.values():
            if not isinstance(group, ClassicGroup):
                continue
            for member in group.members.values():
                if member.join_token is not None:
                    completions.append(Completion(member.join_token, JoinGroupResponse(
                        error_code=ErrorCode.NOT_COORDINATOR, member_id=member.member_id,
                        protocol_name=None)))
                    member.join_token = None
                if member.sync_token is not None:
                    completions.append(Completion(member.sync_token, SyncGroupResponse(
                        error_code=ErrorCode.NOT_COORDINATOR)))
                    member.sync_token = None
            group.awaiting_join_count = 0
        completions += self._completions
        self._completions = []
        return completions

    # -- introspection (metrics, CLI) -------------------------------------------------------

    def group_states(self) -> Counter:
        """(group type, state name) -> number of groups."""
        return Counter((g.type_name, g.state.value) for g in self.groups.values())

    def committed_offsets(self) -> dict[str, dict[tuple[str, int], OffsetAndMetadata]]:
        return self.offsets


def _described_member(member: ClassicMember, protocol_name: str | None) -> DescribeGroupsResponse.DescribedGroupMember:
    return DescribeGroupsResponse.DescribedGroupMember(
        member_id=member.member_id,
        group_instance_id=member.group_instance_id,
        client_id=member.client_id,
        client_host=member.client_host,
        member_metadata=(member.metadata(protocol_name) or b"") if protocol_name else b"",
        member_assignment=member.assignment if protocol_name else b"",
    )


def _classic_group_from_value(group_id: str, value: Any) -> ClassicGroup:
    """Kafka's replay of GroupMetadataValue: Stable with members, else Empty."""
    group = ClassicGroup(
        group_id,
        state=_S.STABLE if value.members else _S.EMPTY,
        state_timestamp_ms=value.current_state_timestamp,
        generation_id=value.generation,
        protocol_type=value.protocol_type or None,
        protocol_name=value.protocol,
    )
    for stored in value.members:
        member = ClassicMember(
            member_id=stored.member_id,
            group_instance_id=stored.group_instance_id,
            client_id=stored.client_id,
            client_host=stored.client_host,
            rebalance_timeout_ms=(stored.session_timeout if stored.rebalance_timeout == -1
                                  else stored.rebalance_timeout),
            session_timeout_ms=stored.session_timeout,
            protocol_type=value.protocol_type,
            protocols=[(value.protocol or "", bytes(stored.subscription))],
            assignment=bytes(stored.assignment),
        )
        group.add(member)
    group.leader_id = value.leader if value.leader in group.members else group.leader_id
    group.subscribed_topics = group.compute_subscribed_topics()
    return group

