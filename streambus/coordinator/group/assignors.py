"""Server-side partition assignors for KIP-848 consumer groups: ``uniform`` and ``range``.

An assignor maps (members and their subscribed topics, topic partition counts, the previous
target assignment) to a new target assignment.  Both are deterministic: the same input always
gives the same output, so a replayed coordinator computes what the live one did.

* ``uniform`` (Kafka's default ``UniformAssignor``): balanced and sticky.  Every member keeps
  the partitions it had while it still subscribes to them and is not above its fair share;
  the rest go to the least loaded eligible member; then partitions move from members with two
  or more above an eligible member until no such pair remains.
* ``range`` (Kafka's ``RangeAssignor``): per topic, members sorted by id take contiguous
  ranges, the first ``partitions % members`` one partition more, so co-partitioned topics line
  up member by member.

Pure functions; nothing here knows records or requests.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

__all__ = ["ASSIGNORS", "MemberSubscription", "uniform_assign", "range_assign", "Assignment"]

#: member id -> topic id -> partitions
Assignment = dict[str, dict[uuid.UUID, set[int]]]
#: member id -> subscribed topic ids
MemberSubscription = Mapping[str, frozenset[uuid.UUID]]
#: topic id -> (topic name, partition count)
TopicInfo = Mapping[uuid.UUID, tuple[str, int]]


def _empty(members: MemberSubscription) -> Assignment:
    return {member_id: {} for member_id in members}


def _add(assignment: Assignment, member_id: str, topic_id: uuid.UUID, partition: int) -> None:
    assignment[member_id].setdefault(topic_id, set()).add(partition)


def _discard(assignment: Assignment, member_id: str, topic_id: uuid.UUID, partition: int) -> None:
    partitions = assignment[member_id].get(topic_id)
    if partitions is not None:
        partitions.discard(partition)
        if not partitions:
            del assignment[member_id][topic_id]


def range_assign(members: MemberSubscription, topics: TopicInfo,
                 previous: Mapping[str, Mapping[uuid.UUID, set[int]]] | None = None) -> Assignment:
    del previous  # range is not sticky by design: contiguity is its point
    assignment = _empty(members)
    for topic_id, (_, count) in sorted(topics.items(), key=lambda item: item[1][0]):
        subscribers = sorted(m for m, subscribed in members.items() if topic_id in subscribed)
        if not subscribers or count <= 0:
            continue
        base, extra = divmod(count, len(subscribers))
        start = 0
        for index, member_id in enumerate(subscribers):
            size = base + (1 if index < extra else 0)
            for partition in range(start, start + size):
                _add(assignment, member_id, topic_id, partition)
            start += size
    return assignment


def uniform_assign(members: MemberSubscription, topics: TopicInfo,
                   previous: Mapping[str, Mapping[uuid.UUID, set[int]]] | None = None) -> Assignment:
    assignment = _empty(members)
    if not members:
        return assignment
    previous = previous or {}
    partitions = [
        (topic_id, partition)
        for topic_id, (_, count) in sorted(topics.items(), key=lambda item: item[1][0])
        for partition in range(count)
    ]
    eligible = {
        topic_id: sorted(m for m, subscribed in members.items() if topic_id in subscribed)
        for topic_id in topics
    }
    counts = {member_id: 0 for member_id in members}
    # Fair share if every member could take every partition; a member keeps at most this many
    # of its previous partitions, so an oversized member sheds load before the balancing pass.
    subscribed_total = sum(1 for topic_id, _ in partitions if eligible[topic_id])
    share_max = -(-subscribed_total // len(members))
    owner_of: dict[tuple[uuid.UUID, int], str] = {}
    for member_id in sorted(previous):
        if member_id not in members:
            continue
        for topic_id, owned in sorted(previous[member_id].items(), key=lambda i: str(i[0])):
            if topic_id not in topics or topic_id not in members[member_id]:
                continue
            for partition in sorted(owned):
                key = (topic_id, partition)
                if partition < topics[topic_id][1] and key not in owner_of and (
                        counts[member_id] < share_max):
                    owner_of[key] = member_id
                    counts[member_id] += 1
                    _add(assignment, member_id, topic_id, partition)
    for topic_id, partition in partitions:
        if (topic_id, partition) in owner_of or not eligible[topic_id]:
            continue
        member_id = min(eligible[topic_id], key=lambda m: (counts[m], m))
        owner_of[(topic_id, partition)] = member_id
        counts[member_id] += 1
        _add(assignment, member_id, topic_id, partition)
    _balance(assignment, owner_of, counts, eligible, len(partitions))
    return assignment


def _balance(assignment: Assignment, owner_of: dict[tuple[uuid.UUID, int], str],
             counts: dict[str, int], eligible: Mapping[uuid.UUID, list[str]],
             partition_count: int) -> None:
    """Move partitions from a member to an eligible one with at least two fewer, until none can
    move.  Each move lowers the sum of squared counts, so this ends; the bound is a guard."""
    moves_max = partition_count * max(len(counts), 1) + 1
    for _ in range(moves_max):
        moved = False
        for (topic_id, partition), owner in sorted(owner_of.items(),
                                                   key=lambda i: (-counts[i[1]], str(i[0][0]), i[0][1])):
            target = min(eligible[topic_id], key=lambda m: (counts[m], m))
            if counts[target] + 1 < counts[owner]:
                _discard(assignment, owner, topic_id, partition)
                _add(assignment, target, topic_id, partition)
                owner_of[(topic_id, partition)] = target
                counts[owner] -= 1
                counts[target] += 1
                moved = True
                break
        if not moved:
            return


ASSIGNORS = {"uniform": uniform_assign, "range": range_assign}
