"""Classic group operations: JoinGroup, SyncGroup, Heartbeat, LeaveGroup and their timers.

This module owns *when* a classic group rebalances, following Kafka's ``GroupMetadataManager``
(classic part) step by step: member ids of KIP-394 (MEMBER_ID_REQUIRED), static membership of
KIP-345, the protocol vote, leader election, generation checks, the delayed initial rebalance,
rebalance / session / pending-sync timeouts.  It is a mixin of
:class:`~streambus.coordinator.group.coordinator.GroupCoordinatorShard` and uses the shard's
``groups``, ``timer``, ``config`` and completion list; it does no I/O.

Parked requests: JoinGroup and SyncGroup take the runtime's ``token``.  Every answer, including
the immediate one, is produced as a completion of that token; the shard turns the caller's own
completion into the result's ``response``, so "answer now" and "answer later" share one path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streambus.coordinator.group.classic import ClassicGroup, ClassicMember, Protocols
from streambus.coordinator.group.records import empty_group_metadata_record, group_metadata_record
from streambus.coordinator.group.state import ClassicGroupState
from streambus.coordinator.result import Completion, CoordinatorRecord
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.heartbeat import HeartbeatRequest, HeartbeatResponse
from streambus.protocol.messages.join_group import JoinGroupRequest, JoinGroupResponse
from streambus.protocol.messages.leave_group import LeaveGroupRequest, LeaveGroupResponse
from streambus.protocol.messages.sync_group import SyncGroupRequest, SyncGroupResponse

if TYPE_CHECKING:
    from streambus.coordinator.group.config import GroupConfig
    from streambus.coordinator.group.timer import Timer

__all__ = ["ClassicGroupOps", "JOIN_REQUIRES_MEMBER_ID_VERSION", "SKIP_ASSIGNMENT_VERSION"]

_S = ClassicGroupState
Records = list[CoordinatorRecord]

#: KIP-394: from JoinGroup v4 a first join with an empty member id gets MEMBER_ID_REQUIRED.
JOIN_REQUIRES_MEMBER_ID_VERSION = 4
#: KIP-814: from JoinGroup v9 a rejoining static leader is told to skip the assignment.
SKIP_ASSIGNMENT_VERSION = 9


def join_key(group_id: str) -> str:
    return f"join-{group_id}"


def sync_key(group_id: str) -> str:
    return f"sync-{group_id}"


def heartbeat_key(group_id: str, member_id: str) -> str:
    return f"heartbeat-{group_id}-{member_id}"


def _join_error(error: ErrorCode, member_id: str = "") -> JoinGroupResponse:
    return JoinGroupResponse(error_code=error, member_id=member_id, protocol_type=None,
                             protocol_name=None)


def _protocols(request: JoinGroupRequest) -> Protocols:
    return [(p.name, bytes(p.metadata)) for p in request.protocols]


class ClassicGroupOps:
    """Mixin: the classic protocol.  Attributes come from the shard."""

    groups: dict[str, Any]
    timer: "Timer"
    config: "GroupConfig"
    _completions: list[Completion]
    rebalances_completed_count: int

    # Provided by the shard.
    def _answer(self, token: int, response: Any) -> None: ...  # pragma: no cover
    def _complete(self, completion: Completion | None) -> None: ...  # pragma: no cover
    def _new_member_id(self, prefix: str) -> str: ...  # pragma: no cover
    def _classic_group(self, group_id: str) -> ClassicGroup | None: ...  # pragma: no cover
    def _delete_consumer_group(self, group: Any) -> Records: ...  # pragma: no cover

    # -- JoinGroup --------------------------------------------------------------------------

    def _join_group(self, token: int, request: JoinGroupRequest, *, api_version: int,
                    client_id: str, client_host: str, now_ms: int) -> Records:
        group_id = request.group_id
        member_id = request.member_id
        if not group_id:
            self._answer(token, _join_error(ErrorCode.INVALID_GROUP_ID, member_id))
            return []
        if not (self.config.min_session_timeout_ms <= request.session_timeout_ms
                <= self.config.max_session_timeout_ms):
            self._answer(token, _join_error(ErrorCode.INVALID_SESSION_TIMEOUT, member_id))
            return []
        records: Records = []
        group = self.groups.get(group_id)
        if group is not None and not isinstance(group, ClassicGroup):
            if not group.is_empty:
                # A non-empty KIP-848 group does not take classic members here (Kafka's mixed
                # groups are not implemented); the member learns the protocols clash.
                self._answer(token, _join_error(ErrorCode.INCONSISTENT_GROUP_PROTOCOL))
                return []
            records += self._delete_consumer_group(group)
            group = None
        is_unknown_member = member_id == ""
        is_new_group = group is None
        if group is None:
            if not is_unknown_member:
                self._answer(token, _join_error(ErrorCode.UNKNOWN_MEMBER_ID, member_id))
                return records
            group = ClassicGroup(group_id, state_timestamp_ms=now_ms)
            self.groups[group_id] = group
        context = (api_version, client_id, client_host)
        if not self._accept_joining_member(group, member_id):
            group.remove(member_id)
            self._answer(token, _join_error(ErrorCode.GROUP_MAX_SIZE_REACHED))
            result: Records = []
        elif is_unknown_member:
            result = self._join_new_member(token, request, group, context, now_ms)
        else:
            result = self._join_existing_member(token, request, group, context, now_ms)
        records += result
        if is_new_group and not result:
            # Persist the new group so its existence survives a restart (Kafka writes an
            # empty GroupMetadata record for the same reason).
            records.append(empty_group_metadata_record(group))
        return records

    def _accept_joining_member(self, group: ClassicGroup, member_id: str) -> bool:
        if group.state in (_S.EMPTY, _S.DEAD):
            return True
        if group.is_in(_S.PREPARING_REBALANCE):
            member = group.members.get(member_id)
            return (member is not None and member.is_awaiting_join) or (
                group.awaiting_join_count < self.config.max_size)
        return group.has_member(member_id) or len(group.members) < self.config.max_size

    def _join_new_member(self, token: int, request: JoinGroupRequest, group: ClassicGroup,
                         context: tuple[int, str, str], now_ms: int) -> Records:
        if group.is_in(_S.DEAD):
            self._answer(token, _join_error(ErrorCode.COORDINATOR_NOT_AVAILABLE))
            return []
        if not group.supports_protocols(request.protocol_type, [p.name for p in request.protocols]):
            self._answer(token, _join_error(ErrorCode.INCONSISTENT_GROUP_PROTOCOL))
            return []
        api_version, client_id, _ = context
        instance_id = request.group_instance_id
        new_member_id = self._new_member_id(instance_id if instance_id is not None else client_id)
        if instance_id is not None:
            existing = group.static_members.get(instance_id)
            if existing is not None:
                return self._update_static_member(token, request, group, existing, new_member_id,
                                                  api_version, now_ms)
            return self._add_member(token, request, group, new_member_id, context, now_ms)
        if api_version >= JOIN_REQUIRES_MEMBER_ID_VERSION:
            # KIP-394: remember the id we hand out; the member must come back with it within
            # its session timeout or it is forgotten.
            group.pending_join_members.add(new_member_id)
            self.timer.schedule(
                heartbeat_key(group.group_id, new_member_id), now_ms + request.session_timeout_ms,
                lambda now, g=group.group_id, m=new_member_id: self._expire_heartbeat(g, m, now))
            self._answer(token, _join_error(ErrorCode.MEMBER_ID_REQUIRED, new_member_id))
            return []
        return self._add_member(token, request, group, new_member_id, context, now_ms)

    def _join_existing_member(self, token: int, request: JoinGroupRequest, group: ClassicGroup,
                              context: tuple[int, str, str], now_ms: int) -> Records:
        member_id = request.member_id
        if group.is_in(_S.DEAD):
            self._answer(token, _join_error(ErrorCode.COORDINATOR_NOT_AVAILABLE, member_id))
            return []
        if not group.supports_protocols(request.protocol_type, [p.name for p in request.protocols]):
            self._answer(token, _join_error(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, member_id))
            return []
        if member_id in group.pending_join_members:
            if request.group_instance_id is not None:
                # Pending ids are only handed to dynamic members (Kafka treats this as a bug).
                self._answer(token, _join_error(ErrorCode.UNKNOWN_MEMBER_ID, member_id))
                return []
            return self._add_member(token, request, group, member_id, context, now_ms)
        error = group.validate_member(member_id, request.group_instance_id)
        if error is not None:
            self._answer(token, _join_error(error, member_id))
            return []
        member = group.members[member_id]
        protocols = _protocols(request)
        if group.is_in(_S.PREPARING_REBALANCE):
            return self._update_member(token, request, group, member, now_ms)
        if group.is_in(_S.COMPLETING_REBALANCE):
            if member.matches(protocols):
                # The member lost our JoinGroup answer: repeat this generation's.
                self._answer(token, self._current_generation_response(
                    group, member_id, with_members=group.is_leader(member_id)))
                return []
            return self._update_member(token, request, group, member, now_ms)
        if group.is_in(_S.STABLE):
            if group.is_leader(member_id) or not member.matches(protocols):
                # A leader's JoinGroup forces a rebalance (e.g. topic metadata changed).
                return self._update_member(token, request, group, member, now_ms)
            self._answer(token, self._current_generation_response(group, member_id,
                                                                  with_members=False))
            return []
        self._answer(token, _join_error(ErrorCode.UNKNOWN_MEMBER_ID, member_id))
        return []

    @staticmethod
    def _current_generation_response(group: ClassicGroup, member_id: str, *,
                                      with_members: bool) -> JoinGroupResponse:
        return JoinGroupResponse(
            members=group.join_response_members() if with_members else [],
            member_id=member_id,
            generation_id=group.generation_id,
            protocol_name=group.protocol_name,
            protocol_type=group.protocol_type,
            leader=group.leader_id or "",
            skip_assignment=False,
        )

    def _add_member(self, token: int, request: JoinGroupRequest, group: ClassicGroup,
                    member_id: str, context: tuple[int, str, str], now_ms: int) -> Records:
        _, client_id, client_host = context
        member = ClassicMember(
            member_id=member_id,
            group_instance_id=request.group_instance_id,
            client_id=client_id,
            client_host=client_host,
            rebalance_timeout_ms=request.rebalance_timeout_ms,
            session_timeout_ms=request.session_timeout_ms,
            protocol_type=request.protocol_type,
            protocols=_protocols(request),
            is_new=True,
        )
        if group.is_in(_S.PREPARING_REBALANCE) and group.previous_state is _S.EMPTY:
            group.new_member_added = True  # extends the initial rebalance delay
        group.add(member, token)
        # A new member cannot heartbeat (it has no id yet) and a parked request hides a
        # disconnect, so it gets the long new-member timeout instead of its session timeout.
        self._reschedule_heartbeat(group, member, now_ms + self.config.new_member_join_timeout_ms)
        return self._maybe_prepare_rebalance_or_complete_join(group, now_ms)

    def _update_member(self, token: int, request: JoinGroupRequest, group: ClassicGroup,
                       member: ClassicMember, now_ms: int) -> Records:
        group.update_member(member, _protocols(request), request.rebalance_timeout_ms,
                            request.session_timeout_ms, token)
        return self._maybe_prepare_rebalance_or_complete_join(group, now_ms)

    def _update_static_member(self, token: int, request: JoinGroupRequest, group: ClassicGroup,
                              old_member_id: str, new_member_id: str, api_version: int,
                              now_ms: int) -> Records:
        """KIP-345: a known static member rejoins with a new member id."""
        current_leader = group.leader_id
        member, fenced = group.replace_static_member(request.group_instance_id or "",
                                                     old_member_id, new_member_id)
        for completion in fenced:
            self._complete(completion)
        self.timer.cancel(heartbeat_key(group.group_id, old_member_id))
        self._reschedule_heartbeat(group, member, now_ms + member.session_timeout_ms)
        group.update_member(member, _protocols(request), request.rebalance_timeout_ms,
                            request.session_timeout_ms, token)
        if group.is_in(_S.STABLE):
            if (group.protocol_name or "") != group.select_protocol():
                return self._maybe_prepare_rebalance_or_complete_join(group, now_ms)
            # Same protocol: no rebalance.  Persist the new member id, then hand back this
            # generation; a static leader on v9+ is told to skip the assignment (KIP-814),
            # older versions keep the old leader id so the member does not reassign.
            records = [group_metadata_record(group, group.group_assignment())]
            is_leader = group.is_leader(new_member_id)
            if api_version >= SKIP_ASSIGNMENT_VERSION:
                response = JoinGroupResponse(
                    members=group.join_response_members() if is_leader else [],
                    member_id=new_member_id, generation_id=group.generation_id,
                    protocol_name=group.protocol_name, protocol_type=group.protocol_type,
                    leader=group.leader_id or "", skip_assignment=is_leader)
            else:
                response = JoinGroupResponse(
                    member_id=new_member_id, generation_id=group.generation_id,
                    protocol_name=group.protocol_name, protocol_type=group.protocol_type,
                    leader=current_leader or "", skip_assignment=False)
            self._complete(group.complete_join(member, response))
            return records
        if group.is_in(_S.COMPLETING_REBALANCE):
            # The old id may already be in the leader's hands: rebalance so the new id gets
            # an assignment.
            return self._prepare_rebalance(group, now_ms)
        assert group.is_in(_S.PREPARING_REBALANCE), group.state
        return self._maybe_complete_join_phase(group, now_ms)

    # -- rebalance machinery ----------------------------------------------------------------

    def _maybe_prepare_rebalance_or_complete_join(self, group: ClassicGroup, now_ms: int) -> Records:
        if group.can_rebalance():
            return self._prepare_rebalance(group, now_ms)
        return self._maybe_complete_join_phase(group, now_ms)

    def _prepare_rebalance(self, group: ClassicGroup, now_ms: int) -> Records:
        if group.is_in(_S.COMPLETING_REBALANCE):
            self._reset_and_propagate_assignment_error(group, ErrorCode.REBALANCE_IN_PROGRESS,
                                                       now_ms)
        self._remove_sync_expiration(group)
        is_initial_rebalance = group.is_in(_S.EMPTY)
        if is_initial_rebalance:
            delay_ms = self.config.initial_rebalance_delay_ms
            remaining_ms = max(group.rebalance_timeout_ms() - delay_ms, 0)
            group_id = group.group_id
            self.timer.schedule(
                join_key(group_id), now_ms + delay_ms,
                lambda now: self._try_complete_initial_rebalance(group_id, delay_ms,
                                                                 remaining_ms, now))
        group.transition_to(_S.PREPARING_REBALANCE, now_ms)
        if is_initial_rebalance:
            return []
        return self._maybe_complete_join_else_schedule(group, now_ms)

    def _maybe_complete_join_else_schedule(self, group: ClassicGroup, now_ms: int) -> Records:
        if group.has_all_members_joined():
            return self._complete_join(group, now_ms)
        group_id = group.group_id
        self.timer.schedule(join_key(group_id), now_ms + group.rebalance_timeout_ms(),
                            lambda now: self._complete_join_by_id(group_id, now))
        return []

    def _try_complete_initial_rebalance(self, group_id: str, delay_ms: int, remaining_ms: int,
                                        now_ms: int) -> Records:
        group = self._classic_group(group_id)
        if group is None:
            return []
        if group.new_member_added and remaining_ms != 0:
            group.new_member_added = False
            next_delay_ms = min(self.config.initial_rebalance_delay_ms, remaining_ms)
            next_remaining_ms = max(remaining_ms - delay_ms, 0)
            self.timer.schedule(
                join_key(group_id), now_ms + next_delay_ms,
                lambda now: self._try_complete_initial_rebalance(group_id, next_delay_ms,
                                                                 next_remaining_ms, now))
            return []
        return self._complete_join(group, now_ms)

    def _maybe_complete_join_phase(self, group: ClassicGroup, now_ms: int) -> Records:
        if not group.is_in(_S.PREPARING_REBALANCE):
            return []
        if group.previous_state is _S.EMPTY:
            return []  # the initial rebalance completes on its timer only
        if not group.has_all_members_joined():
            return []
        return self._complete_join(group, now_ms)

    def _complete_join_by_id(self, group_id: str, now_ms: int) -> Records:
        group = self._classic_group(group_id)
        return [] if group is None else self._complete_join(group, now_ms)

    def _complete_join(self, group: ClassicGroup, now_ms: int) -> Records:
        """End the join phase: evict dynamic members that did not rejoin, start the next
        generation and answer every parked JoinGroup (the leader gets the member list)."""
        group_id = group.group_id
        self.timer.cancel(join_key(group_id))
        for member in group.not_yet_rejoined():
            if not member.is_static:
                self._complete(group.complete_sync(member, SyncGroupResponse(
                    error_code=ErrorCode.UNKNOWN_MEMBER_ID)))
                group.remove(member.member_id)
                self.timer.cancel(heartbeat_key(group_id, member.member_id))
        if group.is_in(_S.DEAD):
            return []
        if not group.maybe_elect_new_joined_leader() and group.members:
            # Only static members that have not rejoined are left: wait another rebalance
            # timeout for them (or for their session timeouts to remove them).
            self.timer.schedule(join_key(group_id), now_ms + group.rebalance_timeout_ms(),
                                lambda now: self._complete_join_by_id(group_id, now))
            return []
        group.init_next_generation(now_ms)
        if group.is_in(_S.EMPTY):
            return [group_metadata_record(group, {})]
        for member in group.members.values():
            response = self._current_generation_response(
                group, member.member_id, with_members=group.is_leader(member.member_id))
            self._complete(group.complete_join(member, response))
            self._reschedule_heartbeat(group, member, now_ms + member.session_timeout_ms)
            member.is_new = False
            group.pending_sync_members.add(member.member_id)
        generation_id = group.generation_id
        self.timer.schedule(sync_key(group_id), now_ms + group.rebalance_timeout_ms(),
                            lambda now: self._expire_pending_sync(group_id, generation_id, now))
        return []

    def _expire_pending_sync(self, group_id: str, generation_id: int, now_ms: int) -> Records:
        group = self._classic_group(group_id)
        if group is None or generation_id != group.generation_id:
            return []
        if group.state in (_S.COMPLETING_REBALANCE, _S.STABLE) and group.pending_sync_members:
            for member_id in sorted(group.pending_sync_members):
                group.remove(member_id)
                self.timer.cancel(heartbeat_key(group_id, member_id))
            return self._prepare_rebalance(group, now_ms)
        return []

    def _remove_sync_expiration(self, group: ClassicGroup) -> None:
        group.pending_sync_members.clear()
        self.timer.cancel(sync_key(group.group_id))

    def _remove_pending_sync_member(self, group: ClassicGroup, member_id: str) -> None:
        group.pending_sync_members.discard(member_id)
        if group.state in (_S.DEAD, _S.EMPTY, _S.PREPARING_REBALANCE) or (
                not group.pending_sync_members):
            self.timer.cancel(sync_key(group.group_id))

    def _reset_and_propagate_assignment_error(self, group: ClassicGroup, error: ErrorCode,
                                              now_ms: int) -> None:
        assert group.is_in(_S.COMPLETING_REBALANCE), group.state
        for member in group.members.values():
            member.assignment = b""
        self._propagate_assignment(group, error, now_ms)

    def _propagate_assignment(self, group: ClassicGroup, error: ErrorCode, now_ms: int) -> None:
        ok = error == ErrorCode.NONE
        for member in group.members.values():
            completion = group.complete_sync(member, SyncGroupResponse(
                error_code=error,
                protocol_type=group.protocol_type if ok else None,
                protocol_name=group.protocol_name if ok else None,
                assignment=member.assignment))
            if completion is not None:
                self._complete(completion)
                # The session clock restarts once a member has its answer.
                self._reschedule_heartbeat(group, member, now_ms + member.session_timeout_ms)

    def _reschedule_heartbeat(self, group: ClassicGroup, member: ClassicMember,
                              deadline_ms: int) -> None:
        group_id, member_id = group.group_id, member.member_id
        self.timer.schedule(heartbeat_key(group_id, member_id), deadline_ms,
                            lambda now: self._expire_heartbeat(group_id, member_id, now))

    def _expire_heartbeat(self, group_id: str, member_id: str, now_ms: int) -> Records:
        group = self._classic_group(group_id)
        if group is None or group.is_in(_S.DEAD):
            return []
        if member_id in group.pending_join_members:
            group.remove(member_id)
            if group.is_in(_S.PREPARING_REBALANCE) and group.has_all_members_joined():
                return self._complete_join(group, now_ms)
            return []
        member = group.members.get(member_id)
        if member is None or member.has_satisfied_heartbeat():
            return []
        return self._remove_member_and_update(group, member, now_ms)

    def _remove_member_and_update(self, group: ClassicGroup, member: ClassicMember,
                                  now_ms: int) -> Records:
        self._complete(group.complete_join(member, _join_error(ErrorCode.UNKNOWN_MEMBER_ID)))
        self._complete(group.complete_sync(member, SyncGroupResponse(
            error_code=ErrorCode.UNKNOWN_MEMBER_ID)))
        group.remove(member.member_id)
        if group.state in (_S.STABLE, _S.COMPLETING_REBALANCE):
            return self._maybe_prepare_rebalance_or_complete_join(group, now_ms)
        if group.is_in(_S.PREPARING_REBALANCE) and group.has_all_members_joined():
            return self._complete_join(group, now_ms)
        return []

    # -- SyncGroup --------------------------------------------------------------------------

    def _sync_group(self, token: int, request: SyncGroupRequest, *, now_ms: int) -> Records:
        if not request.group_id:
            self._answer(token, SyncGroupResponse(error_code=ErrorCode.INVALID_GROUP_ID))
            return []
        group = self.groups.get(request.group_id)
        if group is None or group.is_empty or not isinstance(group, ClassicGroup):
            self._answer(token, SyncGroupResponse(error_code=ErrorCode.UNKNOWN_MEMBER_ID))
            return []
        error = self._validate_sync(group, request)
        if error is not None:
            self._answer(token, SyncGroupResponse(error_code=error))
            return []
        member_id = request.member_id
        if group.is_in(_S.PREPARING_REBALANCE):
            self._answer(token, SyncGroupResponse(error_code=ErrorCode.REBALANCE_IN_PROGRESS))
            return []
        if group.is_in(_S.STABLE):
            self._remove_pending_sync_member(group, member_id)
            self._answer(token, SyncGroupResponse(
                protocol_type=group.protocol_type, protocol_name=group.protocol_name,
                assignment=group.members[member_id].assignment))
            return []
        assert group.is_in(_S.COMPLETING_REBALANCE), group.state
        group.members[member_id].sync_token = token
        self._remove_pending_sync_member(group, member_id)
        if not group.is_leader(member_id):
            return []  # parked until the leader's assignment is persisted
        assignment = {a.member_id: bytes(a.assignment) for a in request.assignments}
        for other_id in group.members:
            assignment.setdefault(other_id, b"")
        # The record is appended before any of the answers below leave (runtime contract),
        # which is Kafka's "propagate once the append completes".
        records = [group_metadata_record(group, assignment)]
        for other_id, other in group.members.items():
            other.assignment = assignment[other_id]
        self._propagate_assignment(group, ErrorCode.NONE, now_ms)
        group.transition_to(_S.STABLE, now_ms)
        self.rebalances_completed_count += 1
        return records

    @staticmethod
    def _validate_sync(group: ClassicGroup, request: SyncGroupRequest) -> ErrorCode | None:
        if group.is_in(_S.DEAD):
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        error = group.validate_member(request.member_id, request.group_instance_id)
        if error is not None:
            return error
        if request.generation_id != group.generation_id:
            return ErrorCode.ILLEGAL_GENERATION
        if _inconsistent(request.protocol_type, group.protocol_type) or _inconsistent(
                request.protocol_name, group.protocol_name):
            return ErrorCode.INCONSISTENT_GROUP_PROTOCOL
        return None

    # -- Heartbeat --------------------------------------------------------------------------

    def _heartbeat(self, request: HeartbeatRequest, *, now_ms: int) -> HeartbeatResponse:
        if not request.group_id:
            return HeartbeatResponse(error_code=ErrorCode.INVALID_GROUP_ID)
        group = self.groups.get(request.group_id)
        if not isinstance(group, ClassicGroup):
            return HeartbeatResponse(error_code=ErrorCode.UNKNOWN_MEMBER_ID)
        if group.is_in(_S.DEAD):
            return HeartbeatResponse(error_code=ErrorCode.COORDINATOR_NOT_AVAILABLE)
        error = group.validate_member(request.member_id, request.group_instance_id)
        if error is not None:
            return HeartbeatResponse(error_code=error)
        if request.generation_id != group.generation_id:
            return HeartbeatResponse(error_code=ErrorCode.ILLEGAL_GENERATION)
        if group.is_in(_S.EMPTY):
            return HeartbeatResponse(error_code=ErrorCode.UNKNOWN_MEMBER_ID)
        member = group.members[request.member_id]
        self._reschedule_heartbeat(group, member, now_ms + member.session_timeout_ms)
        if group.is_in(_S.PREPARING_REBALANCE):
            return HeartbeatResponse(error_code=ErrorCode.REBALANCE_IN_PROGRESS)
        return HeartbeatResponse(error_code=ErrorCode.NONE)

    # -- LeaveGroup -------------------------------------------------------------------------

    def _leave_group(self, group_id: str, members: list[LeaveGroupRequest.MemberIdentity], *,
                     now_ms: int) -> tuple[LeaveGroupResponse, Records]:
        group = self.groups.get(group_id)
        if not isinstance(group, ClassicGroup):
            return LeaveGroupResponse(error_code=ErrorCode.UNKNOWN_MEMBER_ID), []
        if group.is_in(_S.DEAD):
            return LeaveGroupResponse(error_code=ErrorCode.COORDINATOR_NOT_AVAILABLE), []
        responses = []
        left = 0
        for identity in members:
            member_id, instance_id = identity.member_id, identity.group_instance_id
            error: ErrorCode | None = None
            if member_id == "":
                # KIP-345: an admin may remove a static member by instance id alone.
                if instance_id is not None and instance_id in group.static_members:
                    self._remove_current_member(group, group.static_members[instance_id])
                else:
                    error = ErrorCode.UNKNOWN_MEMBER_ID
            elif member_id in group.pending_join_members:
                group.remove(member_id)
                self.timer.cancel(heartbeat_key(group_id, member_id))
            else:
                error = group.validate_member(member_id, instance_id)
                if error is None:
                    self._remove_current_member(group, member_id)
            if error is None:
                left += 1
            responses.append(LeaveGroupResponse.MemberResponse(
                member_id=member_id, group_instance_id=instance_id,
                error_code=error or ErrorCode.NONE))
        records: Records = []
        if left:
            if group.state in (_S.STABLE, _S.COMPLETING_REBALANCE):
                records = self._maybe_prepare_rebalance_or_complete_join(group, now_ms)
            elif group.is_in(_S.PREPARING_REBALANCE):
                records = self._maybe_complete_join_phase(group, now_ms)
        return LeaveGroupResponse(members=responses), records

    def _remove_current_member(self, group: ClassicGroup, member_id: str) -> None:
        member = group.members[member_id]
        self.timer.cancel(heartbeat_key(group.group_id, member_id))
        self._complete(group.complete_join(member, _join_error(ErrorCode.UNKNOWN_MEMBER_ID)))
        self._complete(group.complete_sync(member, SyncGroupResponse(
            error_code=ErrorCode.UNKNOWN_MEMBER_ID)))
        group.remove(member_id)


def _inconsistent(requested: str | None, current: str | None) -> bool:
    return requested is not None and current is not None and requested != current
