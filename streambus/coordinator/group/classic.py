"""A classic group and its members: the data the JoinGroup/SyncGroup protocol works on.

This module owns membership bookkeeping of one classic group, as Kafka's ``ClassicGroup`` and
``ClassicGroupMember`` do: who is a member, which members are static (KIP-345), pending
(KIP-394: given an id, not yet joined) or awaiting a JoinGroup/SyncGroup answer, the protocol
vote, leader election and generations.  Every state change goes through
:meth:`ClassicGroup.transition_to` and so through ``state.CLASSIC_TRANSITIONS``.  It never
decides *when* to rebalance (``classic_ops.py`` does) and does no I/O.

A member that is awaiting an answer holds the runtime's token of the parked request
(``join_token`` / ``sync_token``); answering it yields a :class:`Completion`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from streambus.coordinator.group.consumer_protocol import subscribed_topics
from streambus.coordinator.group.state import ClassicGroupState, check_transition
from streambus.coordinator.result import Completion
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.join_group import JoinGroupResponse
from streambus.protocol.messages.sync_group import SyncGroupResponse

__all__ = ["ClassicGroup", "ClassicMember", "Protocols", "CONSUMER_PROTOCOL_TYPE"]

#: The embedded protocol type of Kafka consumers (``ConsumerProtocol.PROTOCOL_TYPE``).
CONSUMER_PROTOCOL_TYPE = "consumer"

#: A member's supported protocols in preference order: (name, metadata).
Protocols = list[tuple[str, bytes]]


@dataclass(slots=True, eq=False)
class ClassicMember:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    protocols: Protocols
    assignment: bytes = b""
    join_token: int | None = None
    """Token of this member's parked JoinGroup, if any."""
    sync_token: int | None = None
    """Token of this member's parked SyncGroup, if any."""
    is_new: bool = False
    """Joined in the current rebalance and not yet answered: its session timeout does not
    apply (it cannot heartbeat without an id), the new-member join timeout does."""

    @property
    def is_awaiting_join(self) -> bool:
        return self.join_token is not None

    @property
    def is_awaiting_sync(self) -> bool:
        return self.sync_token is not None

    @property
    def is_static(self) -> bool:
        return self.group_instance_id is not None

    def metadata(self, protocol_name: str | None) -> bytes | None:
        for name, metadata in self.protocols:
            if name == protocol_name:
                return metadata
        return None

    def matches(self, protocols: Protocols) -> bool:
        """Same protocols, same metadata, same order (Kafka compares the collections)."""
        return self.protocols == protocols

    def vote(self, candidates: set[str]) -> str:
        """The member's most preferred protocol among ``candidates``."""
        for name, _ in self.protocols:
            if name in candidates:
                return name
        raise AssertionError(f"member {self.member_id} supports none of {sorted(candidates)}")

    def has_satisfied_heartbeat(self) -> bool:
        """Kafka's rule when the heartbeat timer fires: a new member has not; a member parked in
        JoinGroup or SyncGroup has (the rebalance timeout governs it); otherwise it has not."""
        if self.is_new:
            return False
        return self.is_awaiting_join or self.is_awaiting_sync


@dataclass(slots=True, eq=False)
class ClassicGroup:
    group_id: str
    state: ClassicGroupState = ClassicGroupState.EMPTY
    previous_state: ClassicGroupState = ClassicGroupState.EMPTY
    state_timestamp_ms: int = -1
    generation_id: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str | None = None
    members: dict[str, ClassicMember] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)
    """group instance id -> member id."""
    pending_join_members: set[str] = field(default_factory=set)
    pending_sync_members: set[str] = field(default_factory=set)
    supported_protocols: Counter = field(default_factory=Counter)
    awaiting_join_count: int = 0
    new_member_added: bool = False
    subscribed_topics: frozenset[str] | None = None

    type_name = "classic"

    # -- state ------------------------------------------------------------------------------

    def transition_to(self, target: ClassicGroupState, now_ms: int) -> None:
        check_transition(self.state, target)
        self.previous_state = self.state
        self.state = target
        self.state_timestamp_ms = now_ms

    def is_in(self, state: ClassicGroupState) -> bool:
        return self.state is state

    def can_rebalance(self) -> bool:
        return self.state in (ClassicGroupState.STABLE, ClassicGroupState.COMPLETING_REBALANCE,
                              ClassicGroupState.EMPTY)

    @property
    def is_empty(self) -> bool:
        return self.state is ClassicGroupState.EMPTY

    @property
    def uses_consumer_protocol(self) -> bool:
        return self.protocol_type == CONSUMER_PROTOCOL_TYPE

    # -- membership -------------------------------------------------------------------------

    def has_member(self, member_id: str) -> bool:
        return member_id in self.members

    def is_leader(self, member_id: str) -> bool:
        return self.leader_id == member_id

    def add(self, member: ClassicMember, join_token: int | None = None) -> None:
        assert member.member_id not in self.members, member.member_id
        if member.group_instance_id is not None:
            assert member.group_instance_id not in self.static_members, member.group_instance_id
            self.static_members[member.group_instance_id] = member.member_id
        if not self.members:
            self.protocol_type = member.protocol_type
        assert self.protocol_type == member.protocol_type
        if self.leader_id is None:
            self.leader_id = member.member_id
        self.members[member.member_id] = member
        self.supported_protocols.update(name for name, _ in member.protocols)
        member.join_token = join_token
        if join_token is not None:
            self.awaiting_join_count += 1
        self.pending_join_members.discard(member.member_id)

    def remove(self, member_id: str) -> ClassicMember | None:
        """Remove a member (or a pending member); a removed leader is replaced by the oldest
        remaining member.  The caller answers its parked requests first."""
        member = self.members.pop(member_id, None)
        if member is not None:
            self.supported_protocols.subtract(name for name, _ in member.protocols)
            if member.is_awaiting_join:
                self.awaiting_join_count -= 1
            if member.group_instance_id is not None:
                self.static_members.pop(member.group_instance_id, None)
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        self.pending_join_members.discard(member_id)
        self.pending_sync_members.discard(member_id)
        return member

    def update_member(self, member: ClassicMember, protocols: Protocols,
                      rebalance_timeout_ms: int, session_timeout_ms: int,
                      join_token: int | None) -> None:
        self.supported_protocols.subtract(name for name, _ in member.protocols)
        member.protocols = protocols
        self.supported_protocols.update(name for name, _ in protocols)
        member.rebalance_timeout_ms = rebalance_timeout_ms
        member.session_timeout_ms = session_timeout_ms
        if join_token is not None and not member.is_awaiting_join:
            self.awaiting_join_count += 1
        elif join_token is None and member.is_awaiting_join:
            self.awaiting_join_count -= 1
        member.join_token = join_token

    def complete_join(self, member: ClassicMember, response: JoinGroupResponse) -> Completion | None:
        if member.join_token is None:
            return None
        completion = Completion(member.join_token, response)
        member.join_token = None
        self.awaiting_join_count -= 1
        return completion

    def complete_sync(self, member: ClassicMember, response: SyncGroupResponse) -> Completion | None:
        if member.sync_token is None:
            return None
        completion = Completion(member.sync_token, response)
        member.sync_token = None
        return completion

    def has_all_members_joined(self) -> bool:
        return len(self.members) == self.awaiting_join_count and not self.pending_join_members

    def not_yet_rejoined(self) -> list[ClassicMember]:
        return [m for m in self.members.values() if not m.is_awaiting_join]

    def maybe_elect_new_joined_leader(self) -> bool:
        """Keep a leader that rejoined, else pick any member that did; False when none did."""
        if self.leader_id is None:
            return False
        leader = self.members[self.leader_id]
        if leader.is_awaiting_join:
            return True
        for member in self.members.values():
            if member.is_awaiting_join:
                self.leader_id = member.member_id
                return True
        return False

    def replace_static_member(self, instance_id: str, old_member_id: str,
                              new_member_id: str) -> tuple[ClassicMember, list[Completion]]:
        """KIP-345: hand a static member's place to a new member id, fencing the old one's
        parked requests with FENCED_INSTANCE_ID.  Assignment and leadership carry over."""
        old = self.members.pop(old_member_id)
        fenced = []
        if old.join_token is not None:
            fenced.append(Completion(old.join_token, JoinGroupResponse(
                error_code=ErrorCode.FENCED_INSTANCE_ID, member_id=old_member_id,
                protocol_name=None, protocol_type=None, leader="")))
            old.join_token = None
            self.awaiting_join_count -= 1
        if old.sync_token is not None:
            fenced.append(Completion(old.sync_token, SyncGroupResponse(
                error_code=ErrorCode.FENCED_INSTANCE_ID)))
            old.sync_token = None
        new = ClassicMember(
            member_id=new_member_id, group_instance_id=old.group_instance_id,
            client_id=old.client_id, client_host=old.client_host,
            rebalance_timeout_ms=old.rebalance_timeout_ms,
            session_timeout_ms=old.session_timeout_ms, protocol_type=old.protocol_type,
            protocols=old.protocols, assignment=old.assignment)
        self.members[new_member_id] = new
        if self.leader_id == old_member_id:
            self.leader_id = new_member_id
        self.static_members[instance_id] = new_member_id
        self.pending_sync_members.discard(old_member_id)
        return new, fenced

    def validate_member(self, member_id: str, group_instance_id: str | None) -> ErrorCode | None:
        """Kafka's validateMember: UNKNOWN_MEMBER_ID or FENCED_INSTANCE_ID, else None."""
        if group_instance_id is not None:
            existing = self.static_members.get(group_instance_id)
            if existing is None:
                return ErrorCode.UNKNOWN_MEMBER_ID
            if existing != member_id:
                return ErrorCode.FENCED_INSTANCE_ID
        if member_id not in self.members:
            return ErrorCode.UNKNOWN_MEMBER_ID
        return None

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    # -- protocols --------------------------------------------------------------------------

    def _candidate_protocols(self) -> set[str]:
        size = len(self.members)
        return {name for name, count in self.supported_protocols.items() if count == size}

    def select_protocol(self) -> str:
        """Each member votes for its favourite protocol that every member supports; most votes
        win (ties go to the protocol voted first)."""
        assert self.members, "cannot select a protocol for an empty group"
        candidates = self._candidate_protocols()
        votes = Counter(member.vote(candidates) for member in self.members.values())
        return votes.most_common(1)[0][0]

    def supports_protocols(self, protocol_type: str, names: Sequence[str]) -> bool:
        if self.is_empty:
            return bool(protocol_type) and bool(names)
        return self.protocol_type == protocol_type and any(
            self.supported_protocols.get(name, 0) == len(self.members) for name in names)

    def compute_subscribed_topics(self) -> frozenset[str] | None:
        """Topics the members subscribe to, parsed from ConsumerProtocol metadata; None when
        the group does not speak the consumer protocol or the metadata does not parse."""
        if self.protocol_type != CONSUMER_PROTOCOL_TYPE:
            return None
        if not self.members:
            return frozenset()
        if self.protocol_name is None:
            return None
        topics: set[str] = set()
        for member in self.members.values():
            parsed = subscribed_topics(member.metadata(self.protocol_name) or b"")
            if parsed is None:
                return None
            topics.update(parsed)
        return frozenset(topics)

    def is_subscribed_to_topic(self, topic: str) -> bool:
        if self.subscribed_topics is None:
            return self.uses_consumer_protocol
        return topic in self.subscribed_topics

    # -- generations ------------------------------------------------------------------------

    def init_next_generation(self, now_ms: int) -> None:
        self.generation_id += 1
        if self.members:
            self.protocol_name = self.select_protocol()
            self.subscribed_topics = self.compute_subscribed_topics()
            self.transition_to(ClassicGroupState.COMPLETING_REBALANCE, now_ms)
        else:
            self.protocol_name = None
            self.subscribed_topics = self.compute_subscribed_topics()
            self.transition_to(ClassicGroupState.EMPTY, now_ms)
        self.pending_sync_members.clear()

    def join_response_members(self) -> list[JoinGroupResponse.JoinGroupResponseMember]:
        assert self.state not in (ClassicGroupState.DEAD, ClassicGroupState.PREPARING_REBALANCE)
        return [
            JoinGroupResponse.JoinGroupResponseMember(
                member_id=member.member_id, group_instance_id=member.group_instance_id,
                metadata=member.metadata(self.protocol_name) or b"")
            for member in self.members.values()
        ]

    def group_assignment(self) -> dict[str, bytes]:
        return {member_id: member.assignment for member_id, member in self.members.items()}
