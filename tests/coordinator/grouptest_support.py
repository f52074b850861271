"""Test support for the group coordinator: one pure GroupCoordinatorShard with a manual clock.

Named ``grouptest_support`` (not ``helpers``) because test directories have no ``__init__.py``.
``Harness`` lets tests state scenarios as client actions ("c1 joins", "5 s pass") and assert on whole
responses.  Method: every operation's result is applied as the runtime would apply it
(records appended to ``self.log`` first, then replayed if asked, then completions collected),
and ``advance`` steps time to each timer deadline in turn, so timers fire at the instant they
are due rather than late.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

from streambus.coordinator.group.config import GroupConfig
from streambus.coordinator.group.coordinator import GroupCoordinatorShard
from streambus.coordinator.group.offsets import TopicsView
from streambus.coordinator.result import CoordinatorResult
from streambus.protocol.messages.consumer_protocol_subscription import (
    ConsumerProtocolSubscription,
)
from streambus.protocol import codec
from streambus.protocol.messages.join_group import JoinGroupRequest
from streambus.protocol.messages.sync_group import SyncGroupRequest

SESSION_TIMEOUT_MS = 10_000
REBALANCE_TIMEOUT_MS = 30_000


def subscription(*topics: str, version: int = 1) -> bytes:
    """ConsumerProtocol subscription bytes, as Kafka consumers send them."""
    return version.to_bytes(2, "big") + codec.encode(
        ConsumerProtocolSubscription(topics=list(topics)), version)


class FakeTopics(TopicsView):
    """Topics by name -> partition count; ids are derived from the name."""

    def __init__(self, topics: dict[str, int] | None = None) -> None:
        self.counts = dict(topics or {})

    def partition_count(self, topic: str) -> int | None:
        return self.counts.get(topic)

    def topic_id(self, topic: str) -> Any | None:
        return uuid.uuid5(uuid.NAMESPACE_OID, topic) if topic in self.counts else None

    def topic_name(self, topic_id: Any) -> str | None:
        for name in self.counts:
            if uuid.uuid5(uuid.NAMESPACE_OID, name) == topic_id:
                return name
        return None

    def topic_names(self):
        return list(self.counts)


@dataclass
class Harness:
    config: GroupConfig = field(default_factory=lambda: GroupConfig(initial_rebalance_delay_ms=100))
    topics: FakeTopics = field(default_factory=lambda: FakeTopics({"t": 4, "u": 2}))
    now_ms: int = 1_000

    def __post_init__(self) -> None:
        counter = itertools.count(1)
        self.shard = GroupCoordinatorShard(
            self.config, self.topics, member_id_factory=lambda prefix: f"{prefix}-{next(counter)}")
        self.shard.schedule_offsets_cleanup(self.now_ms)
        self._tokens = itertools.count(1)
        self.log: list = []
        self.responses: dict[int, Any] = {}

    # -- applying results like the runtime ----------------------------------------------------

    def apply(self, result: CoordinatorResult, token: int | None = None) -> Any:
        self.log.extend(result.records)
        if result.replay_records:
            for record in result.records:
                self.shard.replay(record, self.now_ms)
        for completion in result.completions:
            assert completion.token not in self.responses, "a token answered twice"
            self.responses[completion.token] = completion.response
        if token is not None and result.response is not None:
            self.responses[token] = result.response
        return result.response

    def advance(self, ms: int) -> None:
        target = self.now_ms + ms
        while True:
            deadline = self.shard.next_deadline_ms()
            if deadline is None or deadline > target:
                break
            self.now_ms = max(self.now_ms, deadline)
            for result in self.shard.poll(self.now_ms):
                self.apply(result)
        self.now_ms = target

    # -- client actions -------------------------------------------------------------------------

    def join(self, member_id: str = "", *, group: str = "g", instance_id: str | None = None,
             protocols: list[tuple[str, bytes]] | None = None, protocol_type: str = "consumer",
             version: int = 5, session_timeout_ms: int = SESSION_TIMEOUT_MS,
             rebalance_timeout_ms: int = REBALANCE_TIMEOUT_MS, client_id: str = "c") -> int:
        """Send a JoinGroup; returns its token (look the answer up with ``response``)."""
        token = next(self._tokens)
        protocols = protocols if protocols is not None else [("range", subscription("t"))]
        request = JoinGroupRequest(
            group_id=group, session_timeout_ms=session_timeout_ms,
            rebalance_timeout_ms=rebalance_timeout_ms, member_id=member_id,
            group_instance_id=instance_id, protocol_type=protocol_type,
            protocols=[JoinGroupRequest.JoinGroupRequestProtocol(name=n, metadata=m)
                       for n, m in protocols])
        self.apply(self.shard.join_group(token, request, api_version=version, client_id=client_id,
                                         client_host="/127.0.0.1", now_ms=self.now_ms), token)
        return token

    def join_new_member(self, **kwargs: Any) -> tuple[str, int]:
        """KIP-394 two-step join; returns (member id, token of the parked second join)."""
        first = self.join("", **kwargs)
        member_id = self.responses[first].member_id
        return member_id, self.join(member_id, **kwargs)

    def sync(self, member_id: str, generation_id: int, assignments: dict[str, bytes] | None = None,
             *, group: str = "g", instance_id: str | None = None,
             protocol_name: str | None = None) -> int:
        token = next(self._tokens)
        request = SyncGroupRequest(
            group_id=group, generation_id=generation_id, member_id=member_id,
            group_instance_id=instance_id, protocol_name=protocol_name,
            assignments=[SyncGroupRequest.SyncGroupRequestAssignment(member_id=m, assignment=a)
                         for m, a in (assignments or {}).items()])
        self.apply(self.shard.sync_group(token, request, now_ms=self.now_ms), token)
        return token

    def response(self, token: int) -> Any:
        return self.responses.get(token)

    def group(self, group_id: str = "g") -> Any:
        return self.shard.groups.get(group_id)
