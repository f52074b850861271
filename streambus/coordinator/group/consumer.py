"""KIP-848 consumer groups: ConsumerGroupHeartbeat, server-side assignment and reconciliation.

This module owns the "new consumer group protocol" as Kafka's ``GroupMetadataManager`` and
``CurrentAssignmentBuilder`` define it.  One heartbeat (1) creates or updates the member and
bumps the *group epoch* when any subscription changes; (2) when the group epoch is ahead of the
*assignment epoch*, recomputes the target assignment with a server-side assignor; (3) moves the
member toward its target: partitions it must give up are first *revoked* (the member keeps its
epoch, state UNREVOKED_PARTITIONS, until it reports them gone), then it moves to the target
epoch and receives the partitions that are free; partitions still owned by another member are
*unreleased* and come on a later heartbeat.  A partition is therefore never owned by two members.

Every change is written as ConsumerGroup* records; operations apply their changes directly and
``replay_consumer_record`` rebuilds the same state from the records when a partition loads.
Simplifications (documented gaps): a static member leaving with epoch -2 is treated as a full
leave, and classic members cannot join a non-empty consumer group (no online migration).
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streambus.coordinator.group.assignors import ASSIGNORS
from streambus.coordinator.group.classic import ClassicGroup
from streambus.coordinator.group.records import (
    assignment_from_topic_partitions,
    consumer_group_current_assignment_record,
    consumer_group_current_assignment_tombstone,
    consumer_group_epoch_record,
    consumer_group_epoch_tombstone,
    consumer_group_member_record,
    consumer_group_member_tombstone,
    consumer_group_subscription_metadata_record,
    consumer_group_subscription_metadata_tombstone,
    consumer_group_target_assignment_epoch_record,
    consumer_group_target_assignment_epoch_tombstone,
    consumer_group_target_assignment_record,
    consumer_group_target_assignment_tombstone,
    group_metadata_tombstone,
)
from streambus.coordinator.group.state import ConsumerGroupState, MemberState, consumer_group_state
from streambus.coordinator.result import CoordinatorRecord
from streambus.protocol.coordinator_records import (
    ConsumerGroupCurrentMemberAssignmentKey,
    ConsumerGroupMemberMetadataKey,
    ConsumerGroupMetadataKey,
    ConsumerGroupPartitionMetadataKey,
    ConsumerGroupTargetAssignmentMemberKey,
    ConsumerGroupTargetAssignmentMetadataKey,
)
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.consumer_group_describe import ConsumerGroupDescribeResponse
from streambus.protocol.messages.consumer_group_heartbeat import (
    ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
)

if TYPE_CHECKING:
    from streambus.coordinator.group.config import GroupConfig
    from streambus.coordinator.group.offsets import TopicsView
    from streambus.coordinator.group.timer import Timer

__all__ = ["ConsumerGroup", "ConsumerMember", "ConsumerGroupOps", "LEAVE_GROUP_MEMBER_EPOCH",
           "LEAVE_GROUP_STATIC_MEMBER_EPOCH"]

LEAVE_GROUP_MEMBER_EPOCH = -1
LEAVE_GROUP_STATIC_MEMBER_EPOCH = -2

TopicPartitions = dict[uuid.UUID, set[int]]
Records = list[CoordinatorRecord]


@dataclass(slots=True, eq=False)
class ConsumerMember:
    member_id: str
    instance_id: str | None = None
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    subscribed_topic_names: frozenset[str] = frozenset()
    subscribed_topic_regex: str | None = None
    rebalance_timeout_ms: int = -1
    server_assignor: str | None = None
    member_epoch: int = 0
    previous_member_epoch: int = 0
    state: MemberState = MemberState.STABLE
    assigned: TopicPartitions = field(default_factory=dict)
    pending_revocation: TopicPartitions = field(default_factory=dict)

    def metadata_key(self) -> tuple:
        return (self.instance_id, self.rack_id, self.client_id, self.client_host,
                self.subscribed_topic_names, self.subscribed_topic_regex,
                self.rebalance_timeout_ms, self.server_assignor)

    def assignment_key(self) -> tuple:
        return (self.member_epoch, self.previous_member_epoch, self.state,
                _frozen(self.assigned), _frozen(self.pending_revocation))


def _frozen(partitions: TopicPartitions) -> frozenset:
    return frozenset((t, frozenset(p)) for t, p in partitions.items() if p)


@dataclass(slots=True, eq=False)
class ConsumerGroup:
    group_id: str
    group_epoch: int = 0
    assignment_epoch: int = 0
    members: dict[str, ConsumerMember] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)
    target: dict[str, TopicPartitions] = field(default_factory=dict)
    subscription_metadata: dict[str, tuple[uuid.UUID, int]] = field(default_factory=dict)
    """Subscribed topics that exist: name -> (topic id, partition count)."""
    partition_owner: dict[tuple[uuid.UUID, int], str] = field(default_factory=dict)
    """Partitions assigned to or pending revocation from a member (Kafka's partition epochs)."""

    type_name = "consumer"
    protocol_type = "consumer"

    @property
    def is_empty(self) -> bool:
        return not self.members

    @property
    def state(self) -> ConsumerGroupState:
        return consumer_group_state(
            member_count=len(self.members), group_epoch=self.group_epoch,
            assignment_epoch=self.assignment_epoch,
            all_members_reconciled=all(
                m.member_epoch == self.assignment_epoch and m.state is MemberState.STABLE
                for m in self.members.values()))

    def set_assignment(self, member: ConsumerMember, assigned: TopicPartitions,
                       pending: TopicPartitions) -> None:
        for key in _pairs(member.assigned) + _pairs(member.pending_revocation):
            if self.partition_owner.get(key) == member.member_id:
                del self.partition_owner[key]
        member.assigned = {t: set(p) for t, p in assigned.items() if p}
        member.pending_revocation = {t: set(p) for t, p in pending.items() if p}
        for key in _pairs(member.assigned) + _pairs(member.pending_revocation):
            self.partition_owner[key] = member.member_id

    def add_member(self, member: ConsumerMember) -> None:
        self.members[member.member_id] = member
        if member.instance_id is not None:
            self.static_members[member.instance_id] = member.member_id

    def remove_member(self, member_id: str) -> ConsumerMember | None:
        member = self.members.pop(member_id, None)
        if member is None:
            return None
        self.set_assignment(member, {}, {})
        if member.instance_id is not None and self.static_members.get(member.instance_id) == member_id:
            del self.static_members[member.instance_id]
        self.target.pop(member_id, None)
        return member

    def subscribed_topic_names(self) -> frozenset[str]:
        return frozenset(self.subscription_metadata)

    def is_subscribed_to_topic(self, topic: str) -> bool:
        return topic in self.subscription_metadata

    def validate_offset_commit(self, member_id: str, instance_id: str | None, member_epoch: int,
                               api_version: int) -> ErrorCode | None:
        """Kafka's ConsumerGroup.validateOffsetCommit (non-transactional)."""
        del instance_id
        if member_epoch < 0 and not self.members:
            return None
        member = self.members.get(member_id)
        if member is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if api_version < 9:
            return ErrorCode.UNSUPPORTED_VERSION  # KIP-848 members commit with v9+
        if member_epoch != member.member_epoch:
            return ErrorCode.STALE_MEMBER_EPOCH
        return None

    def validate_offset_fetch(self, member_id: str | None, member_epoch: int) -> ErrorCode | None:
        if member_epoch < 0 and member_id is None:
            return None  # an admin client
        member = self.members.get(member_id or "")
        if member is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if member_epoch != member.member_epoch:
            return ErrorCode.STALE_MEMBER_EPOCH
        return None

    def tombstones(self) -> Records:
        """Records that delete the group (members first, the epoch record last)."""
        records: Records = []
        for member_id in list(self.members):
            records += [consumer_group_current_assignment_tombstone(self.group_id, member_id),
                        consumer_group_target_assignment_tombstone(self.group_id, member_id),
                        consumer_group_member_tombstone(self.group_id, member_id)]
        records += [consumer_group_target_assignment_epoch_tombstone(self.group_id),
                    consumer_group_subscription_metadata_tombstone(self.group_id),
                    consumer_group_epoch_tombstone(self.group_id)]
        return records


def _pairs(partitions: TopicPartitions) -> list[tuple[uuid.UUID, int]]:
    return [(t, p) for t, ps in partitions.items() for p in ps]


def _is_subset(owned: TopicPartitions | None, assigned: TopicPartitions) -> bool:
    if owned is None:
        return False
    return all(ps <= assigned.get(t, set()) for t, ps in owned.items())


def _owns_any(owned: TopicPartitions | None, partitions: TopicPartitions) -> bool:
    """Kafka's ownsRevokedPartitions: without a report we must assume it still owns them."""
    if owned is None:
        return True
    return any(owned.get(t, set()) & ps for t, ps in partitions.items())


class _HeartbeatError(Exception):
    def __init__(self, error: ErrorCode, message: str | None = None) -> None:
        super().__init__(message or error.message)
        self.error = error
        self.message = message


class ConsumerGroupOps:
    """Mixin: KIP-848.  Attributes come from the shard."""

    groups: dict[str, Any]
    timer: "Timer"
    config: "GroupConfig"
    topics: "TopicsView"
    rebalances_completed_count: int

    def _new_member_id(self, prefix: str) -> str: ...  # pragma: no cover

    # -- heartbeat --------------------------------------------------------------------------

    def _consumer_group_heartbeat(self, request: ConsumerGroupHeartbeatRequest, *,
                                  api_version: int, client_id: str, client_host: str,
                                  now_ms: int) -> tuple[ConsumerGroupHeartbeatResponse, Records]:
        try:
            self._cg_validate_heartbeat(request, api_version)
            if request.member_epoch in (LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH):
                return self._cg_consumer_group_leave(request)
            return self._cg_consumer_group_join_or_heartbeat(request, client_id, client_host, now_ms)
        except _HeartbeatError as exc:
            return ConsumerGroupHeartbeatResponse(error_code=exc.error,
                                                  error_message=exc.message), []

    def _cg_validate_heartbeat(self, request: ConsumerGroupHeartbeatRequest, api_version: int) -> None:
        invalid = ErrorCode.INVALID_REQUEST
        if not request.group_id:
            raise _HeartbeatError(invalid, "GroupId can't be empty.")
        if request.instance_id == "":
            raise _HeartbeatError(invalid, "InstanceId can't be empty.")
        if request.rack_id == "":
            raise _HeartbeatError(invalid, "RackId can't be empty.")
        epoch = request.member_epoch
        if (api_version >= 1 or epoch != 0) and not request.member_id:
            raise _HeartbeatError(invalid, "MemberId can't be empty.")
        if epoch == 0:
            if request.rebalance_timeout_ms == -1:
                raise _HeartbeatError(invalid, "RebalanceTimeoutMs must be provided in first request.")
            if request.topic_partitions is None or request.topic_partitions:
                raise _HeartbeatError(invalid, "TopicPartitions must be empty when (re-)joining.")
            if not request.subscribed_topic_names and not request.subscribed_topic_regex:
                raise _HeartbeatError(
                    invalid, "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.")
        elif epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH and request.instance_id is None:
            raise _HeartbeatError(invalid, "InstanceId can't be null.")
        elif epoch < LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            raise _HeartbeatError(invalid, "MemberEpoch is invalid.")
        if request.subscribed_topic_regex:
            try:
                re.compile(request.subscribed_topic_regex)
            except re.error as exc:
                raise _HeartbeatError(ErrorCode.INVALID_REGULAR_EXPRESSION,
                                      f"SubscribedTopicRegex `{request.subscribed_topic_regex}` "
                                      f"is not a valid regular expression: {exc}.") from None
        if request.server_assignor is not None and request.server_assignor not in self.config.consumer_assignors:
            raise _HeartbeatError(
                ErrorCode.UNSUPPORTED_ASSIGNOR,
                f"ServerAssignor {request.server_assignor} is not supported. Supported assignors: "
                f"{', '.join(self.config.consumer_assignors)}.")

    def _cg_consumer_group_join_or_heartbeat(self, request: ConsumerGroupHeartbeatRequest,
                                          client_id: str, client_host: str, now_ms: int
                                          ) -> tuple[ConsumerGroupHeartbeatResponse, Records]:
        records: Records = []
        group = self._cg_consumer_group_for_heartbeat(request, records)
        member_id = request.member_id or self._new_member_id("")
        member, is_new = self._cg_heartbeat_member(group, request, member_id)
        before_assigned = _frozen(member.assigned)
        before_assignment_key = member.assignment_key()
        subscription_changed = self._cg_update_member(group, member, request, client_id,
                                                   client_host, is_new, records)
        self._cg_refresh_group(group, subscription_changed or is_new, records)
        owned = (None if request.topic_partitions is None
                 else assignment_from_topic_partitions(request.topic_partitions))
        self._cg_reconcile(group, member, owned, subscription_changed)
        if member.assignment_key() != before_assignment_key or is_new:
            records.append(consumer_group_current_assignment_record(group.group_id, member))
        self._cg_schedule_member_timers(group, member, now_ms)
        response = ConsumerGroupHeartbeatResponse(
            member_id=member.member_id, member_epoch=member.member_epoch,
            heartbeat_interval_ms=self.config.consumer_heartbeat_interval_ms)
        full_request = (request.rebalance_timeout_ms != -1
                        and (request.subscribed_topic_names is not None
                             or request.subscribed_topic_regex is not None)
                        and request.topic_partitions is not None)
        if request.member_epoch == 0 or full_request or _frozen(member.assigned) != before_assigned:
            response.assignment = ConsumerGroupHeartbeatResponse.Assignment(topic_partitions=[
                ConsumerGroupHeartbeatResponse.TopicPartitions(topic_id=t, partitions=sorted(p))
                for t, p in sorted(member.assigned.items(), key=lambda i: str(i[0]))])
        return response, records

    def _cg_consumer_group_for_heartbeat(self, request: ConsumerGroupHeartbeatRequest,
                                      records: Records) -> ConsumerGroup:
        group_id = request.group_id
        group = self.groups.get(group_id)
        if group is None:
            if request.member_epoch != 0:
                raise _HeartbeatError(ErrorCode.GROUP_ID_NOT_FOUND,
                                      f"Consumer group {group_id} not found.")
            group = self.groups[group_id] = ConsumerGroup(group_id)
            return group
        if isinstance(group, ClassicGroup):
            if request.member_epoch == 0 and group.is_empty and not group.pending_join_members:
                # An empty classic group (e.g. one that only holds offsets) becomes a consumer
                # group; its offsets are kept.
                records.append(group_metadata_tombstone(group_id))
                group = self.groups[group_id] = ConsumerGroup(group_id)
                return group
            # Kafka with online upgrades disabled answers the same.
            raise _HeartbeatError(ErrorCode.GROUP_ID_NOT_FOUND,
                                  f"Group {group_id} is not a consumer group.")
        return group

    def _cg_heartbeat_member(self, group: ConsumerGroup, request: ConsumerGroupHeartbeatRequest,
                          member_id: str) -> tuple[ConsumerMember, bool]:
        epoch = request.member_epoch
        instance_id = request.instance_id
        if instance_id is not None:
            existing_id = group.static_members.get(instance_id)
            if epoch != 0:
                if existing_id is None:
                    raise _HeartbeatError(ErrorCode.UNKNOWN_MEMBER_ID,
                                          f"Instance id {instance_id} is unknown.")
                if existing_id != member_id:
                    raise _HeartbeatError(ErrorCode.FENCED_INSTANCE_ID)
            elif existing_id is not None and existing_id != member_id:
                raise _HeartbeatError(ErrorCode.UNRELEASED_INSTANCE_ID,
                                      f"Static member {existing_id} with instance id "
                                      f"{instance_id} is still in the group.")
        member = group.members.get(member_id)
        if member is None:
            if epoch != 0:
                raise _HeartbeatError(ErrorCode.UNKNOWN_MEMBER_ID,
                                      f"Member {member_id} is not a member of group {group.group_id}.")
            if len(group.members) >= self.config.consumer_max_size:
                raise _HeartbeatError(ErrorCode.GROUP_MAX_SIZE_REACHED)
            member = ConsumerMember(member_id=member_id)
            group.add_member(member)
            return member, True
        if epoch != 0:
            owned = (None if request.topic_partitions is None
                     else assignment_from_topic_partitions(request.topic_partitions))
            if epoch > member.member_epoch or (epoch < member.member_epoch and (
                    epoch != member.previous_member_epoch or not _is_subset(owned, member.assigned))):
                raise _HeartbeatError(
                    ErrorCode.FENCED_MEMBER_EPOCH,
                    f"The consumer group member has a {'greater' if epoch > member.member_epoch else 'smaller'} "
                    f"member epoch ({epoch}) than the one known by the group coordinator "
                    f"({member.member_epoch}). The member must abandon all its partitions and rejoin.")
        return member, False

    def _cg_update_member(self, group: ConsumerGroup, member: ConsumerMember,
                       request: ConsumerGroupHeartbeatRequest, client_id: str, client_host: str,
                       is_new: bool, records: Records) -> bool:
        """Apply the request's member fields; True when the subscription changed."""
        before_subscription = (member.subscribed_topic_names, member.subscribed_topic_regex)
        before = member.metadata_key()
        if request.instance_id is not None and member.instance_id is None:
            member.instance_id = request.instance_id
            group.static_members[request.instance_id] = member.member_id
        if request.rack_id is not None:
            member.rack_id = request.rack_id
        if request.rebalance_timeout_ms != -1:
            member.rebalance_timeout_ms = request.rebalance_timeout_ms
        if request.server_assignor is not None:
            member.server_assignor = request.server_assignor
        if request.subscribed_topic_names is not None:
            member.subscribed_topic_names = frozenset(request.subscribed_topic_names)
        if request.subscribed_topic_regex is not None:
            member.subscribed_topic_regex = request.subscribed_topic_regex or None
        member.client_id = client_id
        member.client_host = client_host
        if is_new or member.metadata_key() != before:
            records.append(consumer_group_member_record(group.group_id, member))
        return (member.subscribed_topic_names, member.subscribed_topic_regex) != before_subscription

    def _cg_refresh_group(self, group: ConsumerGroup, bump: bool, records: Records) -> None:
        """Recompute the subscribed topics (topics come and go, partitions are added), bump
        the group epoch if anything changed, and recompute the target when it lags."""
        metadata = self._cg_subscription_metadata(group)
        if metadata != group.subscription_metadata:
            group.subscription_metadata = metadata
            records.append(consumer_group_subscription_metadata_record(group.group_id, metadata))
            bump = True
        if bump or group.group_epoch == 0:
            group.group_epoch += 1
            self.rebalances_completed_count += 1
            records.append(consumer_group_epoch_record(group.group_id, group.group_epoch))
        if group.group_epoch > group.assignment_epoch:
            self._cg_update_target_assignment(group, records)

    def _cg_member_topics(self, member: ConsumerMember) -> set[str]:
        topics = set(member.subscribed_topic_names)
        if member.subscribed_topic_regex:
            pattern = re.compile(member.subscribed_topic_regex)
            topics.update(name for name in self.topics.topic_names()
                          if not name.startswith("__") and pattern.fullmatch(name))
        return topics

    def _cg_subscription_metadata(self, group: ConsumerGroup) -> dict[str, tuple[uuid.UUID, int]]:
        names: set[str] = set()
        for member in group.members.values():
            names |= self._cg_member_topics(member)
        metadata = {}
        for name in sorted(names):
            count = self.topics.partition_count(name)
            topic_id = self.topics.topic_id(name)
            if count is not None and topic_id is not None:
                metadata[name] = (topic_id, count)
        return metadata

    def _cg_member_topic_ids(self, group: ConsumerGroup, member: ConsumerMember) -> frozenset[uuid.UUID]:
        return frozenset(group.subscription_metadata[name][0] for name in self._cg_member_topics(member)
                         if name in group.subscription_metadata)

    def _cg_assignor_name(self, group: ConsumerGroup) -> str:
        preferred = Counter(m.server_assignor for m in group.members.values() if m.server_assignor)
        if preferred:
            return sorted(preferred.items(), key=lambda item: (-item[1], item[0]))[0][0]
        return self.config.consumer_assignors[0]

    def _cg_update_target_assignment(self, group: ConsumerGroup, records: Records) -> None:
        subscriptions = {member_id: self._cg_member_topic_ids(group, member)
                         for member_id, member in group.members.items()}
        topics = {topic_id: (name, count)
                  for name, (topic_id, count) in group.subscription_metadata.items()}
        target = ASSIGNORS[self._cg_assignor_name(group)](subscriptions, topics, group.target)
        for member_id in sorted(group.members):
            new = target.get(member_id, {})
            if _frozen(new) != _frozen(group.target.get(member_id, {})) or member_id not in group.target:
                records.append(consumer_group_target_assignment_record(group.group_id, member_id, new))
        group.target = {member_id: target.get(member_id, {}) for member_id in group.members}
        group.assignment_epoch = group.group_epoch
        records.append(consumer_group_target_assignment_epoch_record(group.group_id,
                                                                     group.assignment_epoch))

    # -- reconciliation (Kafka's CurrentAssignmentBuilder) -------------------------------------

    def _cg_reconcile(self, group: ConsumerGroup, member: ConsumerMember,
                   owned: TopicPartitions | None, enforce_consistency: bool) -> None:
        subscribed = self._cg_member_topic_ids(group, member)
        if member.state is MemberState.STABLE:
            if member.member_epoch != group.assignment_epoch:
                self._cg_compute_next_assignment(group, member, subscribed, owned)
            elif enforce_consistency:
                self._cg_drop_unsubscribed(group, member, subscribed, owned)
        elif member.state is MemberState.UNREVOKED_PARTITIONS:
            if _owns_any(owned, member.pending_revocation):
                if enforce_consistency:
                    self._cg_drop_unsubscribed(group, member, subscribed, owned)
                return
            self._cg_compute_next_assignment(group, member, subscribed, owned)
        else:
            self._cg_compute_next_assignment(group, member, subscribed, owned)

    def _cg_set_member(self, group: ConsumerGroup, member: ConsumerMember, *, epoch: int,
                    state: MemberState, assigned: TopicPartitions, pending: TopicPartitions) -> None:
        member.previous_member_epoch = member.member_epoch
        member.member_epoch = epoch
        member.state = state
        group.set_assignment(member, assigned, pending)

    def _cg_compute_next_assignment(self, group: ConsumerGroup, member: ConsumerMember,
                                 subscribed: frozenset[uuid.UUID], owned: TopicPartitions | None) -> None:
        target_epoch = group.assignment_epoch
        target = group.target.get(member.member_id, {})
        has_unreleased = False
        new_assigned: TopicPartitions = {}
        new_pending: TopicPartitions = {}
        to_assign: TopicPartitions = {}
        for topic_id in set(target) | set(member.assigned):
            wanted = set(target.get(topic_id, set())) if topic_id in subscribed else set()
            current = member.assigned.get(topic_id, set())
            keep = current & wanted
            revoke = current - keep
            add = wanted - keep
            unreleased = {p for p in add
                          if group.partition_owner.get((topic_id, p)) not in (None, member.member_id)}
            add -= unreleased
            has_unreleased = has_unreleased or bool(unreleased)
            if keep:
                new_assigned[topic_id] = keep
            if revoke:
                new_pending[topic_id] = revoke
            if add:
                to_assign[topic_id] = add
        if new_pending and _owns_any(owned, new_pending):
            # Revoke first; the member keeps its epoch until it confirms.
            self._cg_set_member(group, member, epoch=member.member_epoch,
                             state=MemberState.UNREVOKED_PARTITIONS, assigned=new_assigned,
                             pending=new_pending)
            return
        for topic_id, partitions in to_assign.items():
            new_assigned.setdefault(topic_id, set()).update(partitions)
        state = MemberState.UNRELEASED_PARTITIONS if has_unreleased else MemberState.STABLE
        self._cg_set_member(group, member, epoch=target_epoch, state=state, assigned=new_assigned,
                         pending={})

    def _cg_drop_unsubscribed(self, group: ConsumerGroup, member: ConsumerMember,
                           subscribed: frozenset[uuid.UUID], owned: TopicPartitions | None) -> None:
        dropped = {t: set(p) for t, p in member.assigned.items() if t not in subscribed}
        if not dropped:
            return
        assigned = {t: set(p) for t, p in member.assigned.items() if t in subscribed}
        pending = {t: set(p) for t, p in member.pending_revocation.items()}
        for topic_id, partitions in dropped.items():
            pending.setdefault(topic_id, set()).update(partitions)
        if _owns_any(owned, pending):
            self._cg_set_member(group, member, epoch=member.member_epoch,
                             state=MemberState.UNREVOKED_PARTITIONS, assigned=assigned,
                             pending=pending)
        else:
            self._cg_set_member(group, member, epoch=member.member_epoch, state=member.state,
                             assigned=assigned, pending=member.pending_revocation)

    # -- timers and leaving -----------------------------------------------------------------

    def _cg_schedule_member_timers(self, group: ConsumerGroup, member: ConsumerMember,
                                now_ms: int) -> None:
        group_id, member_id = group.group_id, member.member_id
        self.timer.schedule(
            f"consumer-session-{group_id}-{member_id}",
            now_ms + self.config.consumer_session_timeout_ms,
            lambda now: self._cg_fence_consumer_member(group_id, member_id, None))
        revoke_key = f"consumer-revoke-{group_id}-{member_id}"
        if member.state is MemberState.UNREVOKED_PARTITIONS:
            if not self.timer.is_scheduled(revoke_key):
                epoch = member.member_epoch
                timeout_ms = max(member.rebalance_timeout_ms, 0)
                self.timer.schedule(revoke_key, now_ms + timeout_ms,
                                    lambda now: self._cg_fence_consumer_member(group_id, member_id, epoch))
        else:
            self.timer.cancel(revoke_key)

    def _cg_fence_consumer_member(self, group_id: str, member_id: str,
                               epoch: int | None) -> Records:
        """Session or revocation timeout: remove the member (if still at ``epoch``)."""
        group = self.groups.get(group_id)
        if not isinstance(group, ConsumerGroup):
            return []
        member = group.members.get(member_id)
        if member is None or (epoch is not None and (
                member.member_epoch != epoch or member.state is not MemberState.UNREVOKED_PARTITIONS)):
            return []
        return self._cg_remove_consumer_member(group, member_id)

    def _cg_remove_consumer_member(self, group: ConsumerGroup, member_id: str) -> Records:
        group_id = group.group_id
        group.remove_member(member_id)
        self.timer.cancel(f"consumer-session-{group_id}-{member_id}")
        self.timer.cancel(f"consumer-revoke-{group_id}-{member_id}")
        records = [consumer_group_current_assignment_tombstone(group_id, member_id),
                   consumer_group_target_assignment_tombstone(group_id, member_id),
                   consumer_group_member_tombstone(group_id, member_id)]
        metadata = self._cg_subscription_metadata(group)
        if metadata != group.subscription_metadata:
            group.subscription_metadata = metadata
            records.append(consumer_group_subscription_metadata_record(group_id, metadata))
        group.group_epoch += 1
        self.rebalances_completed_count += 1
        records.append(consumer_group_epoch_record(group_id, group.group_epoch))
        return records

    def _cg_consumer_group_leave(self, request: ConsumerGroupHeartbeatRequest
                              ) -> tuple[ConsumerGroupHeartbeatResponse, Records]:
        group = self.groups.get(request.group_id)
        if not isinstance(group, ConsumerGroup):
            raise _HeartbeatError(ErrorCode.GROUP_ID_NOT_FOUND,
                                  f"Consumer group {request.group_id} not found.")
        member_id = request.member_id
        if request.instance_id is not None:
            existing = group.static_members.get(request.instance_id)
            if existing is None:
                raise _HeartbeatError(ErrorCode.UNKNOWN_MEMBER_ID)
            if existing != member_id:
                raise _HeartbeatError(ErrorCode.FENCED_INSTANCE_ID)
        if member_id not in group.members:
            raise _HeartbeatError(ErrorCode.UNKNOWN_MEMBER_ID)
        records = self._cg_remove_consumer_member(group, member_id)
        return ConsumerGroupHeartbeatResponse(member_id=member_id,
                                              member_epoch=request.member_epoch), records

    # -- describe ---------------------------------------------------------------------------

    def _describe_consumer_group(self, group_id: str) -> ConsumerGroupDescribeResponse.DescribedGroup:
        described = ConsumerGroupDescribeResponse.DescribedGroup
        group = self.groups.get(group_id)
        if not isinstance(group, ConsumerGroup):
            message = (f"Group {group_id} not found." if group is None
                       else f"Group {group_id} is not a consumer group.")
            return described(group_id=group_id, error_code=ErrorCode.GROUP_ID_NOT_FOUND,
                             error_message=message)
        members = []
        for member in group.members.values():
            members.append(ConsumerGroupDescribeResponse.Member(
                member_id=member.member_id, instance_id=member.instance_id,
                rack_id=member.rack_id, member_epoch=member.member_epoch,
                client_id=member.client_id, client_host=member.client_host,
                subscribed_topic_names=sorted(member.subscribed_topic_names),
                subscribed_topic_regex=member.subscribed_topic_regex,
                assignment=self._cg_described_assignment(member.assigned),
                target_assignment=self._cg_described_assignment(group.target.get(member.member_id, {}))))
        return described(
            group_id=group_id, group_state=group.state.value, group_epoch=group.group_epoch,
            assignment_epoch=group.assignment_epoch, assignor_name=self._cg_assignor_name(group),
            members=members)

    def _cg_described_assignment(self, partitions: TopicPartitions) -> ConsumerGroupDescribeResponse.Assignment:
        return ConsumerGroupDescribeResponse.Assignment(topic_partitions=[
            ConsumerGroupDescribeResponse.TopicPartitions(
                topic_id=topic_id, topic_name=self.topics.topic_name(topic_id) or "",
                partitions=sorted(ps))
            for topic_id, ps in sorted(partitions.items(), key=lambda i: str(i[0])) if ps])

    # -- replay -----------------------------------------------------------------------------

    def _replay_consumer_record(self, record: CoordinatorRecord) -> None:
        key, value = record.key, record.value
        group_id = key.group_id
        group = self.groups.get(group_id)
        if not isinstance(group, ConsumerGroup):
            if value is None:
                return
            group = self.groups[group_id] = ConsumerGroup(group_id)
        if isinstance(key, ConsumerGroupMetadataKey):
            if value is None:
                del self.groups[group_id]
            else:
                group.group_epoch = value.epoch
        elif isinstance(key, ConsumerGroupPartitionMetadataKey):
            group.subscription_metadata = {} if value is None else {
                t.topic_name: (t.topic_id, t.num_partitions) for t in value.topics}
        elif isinstance(key, ConsumerGroupMemberMetadataKey):
            if value is None:
                group.remove_member(key.member_id)
                return
            member = group.members.get(key.member_id) or ConsumerMember(member_id=key.member_id)
            member.instance_id = value.instance_id
            member.rack_id = value.rack_id
            member.client_id = value.client_id
            member.client_host = value.client_host
            member.subscribed_topic_names = frozenset(value.subscribed_topic_names)
            member.subscribed_topic_regex = value.subscribed_topic_regex or None
            member.rebalance_timeout_ms = value.rebalance_timeout_ms
            member.server_assignor = value.server_assignor or None
            group.add_member(member)
        elif isinstance(key, ConsumerGroupTargetAssignmentMemberKey):
            if value is None:
                group.target.pop(key.member_id, None)
            else:
                group.target[key.member_id] = assignment_from_topic_partitions(value.topic_partitions)
        elif isinstance(key, ConsumerGroupTargetAssignmentMetadataKey):
            group.assignment_epoch = 0 if value is None else value.assignment_epoch
        elif isinstance(key, ConsumerGroupCurrentMemberAssignmentKey):
            member = group.members.get(key.member_id)
            if member is None:
                if value is None:
                    return
                member = ConsumerMember(member_id=key.member_id)
                group.add_member(member)
            if value is None:
                group.set_assignment(member, {}, {})
                return
            member.member_epoch = value.member_epoch
            member.previous_member_epoch = value.previous_member_epoch
            member.state = MemberState(value.state) if value.state in MemberState._value2member_map_ else MemberState.UNKNOWN
            group.set_assignment(member, assignment_from_topic_partitions(value.assigned_partitions),
                                 assignment_from_topic_partitions(value.partitions_pending_revocation))
