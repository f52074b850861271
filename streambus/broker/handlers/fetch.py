"""Fetch (key 1): read whole batches as bytes, long-poll for data, incremental sessions.

Reads are bounded by the high watermark (read_uncommitted) or the last stable offset
(read_committed, which also gets the aborted transactions overlapping the returned batches), by ``partition_max_bytes`` per partition and ``max_bytes`` per response, and
the first partition with data always returns at least one whole batch (KIP-74).  When less
than ``min_bytes`` is available the request parks until an append wakes it or ``max_wait_ms``
passes.  Sessions follow KIP-227 (see ``broker/fetch_session.py``).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from streambus.broker.context import RequestContext
from streambus.broker.fetch_session import CachedPartition, FetchSession
from streambus.log.errors import OffsetOutOfRangeError
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.fetch import FetchRequest, FetchResponse
from streambus.protocol.records.batch import iter_batch_headers
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize

_PartitionData = FetchResponse.PartitionData
_AbortedTransaction = FetchResponse.AbortedTransaction
_READ_COMMITTED = 1
_NO_ABORTED: list = []


@dataclass(slots=True)
class _Wanted:
    topic: str | None
    topic_id: uuid.UUID
    partition: int
    fetch_offset: int
    partition_max_bytes: int
    current_leader_epoch: int
    cached: CachedPartition | None = None


def _topic_key(topic: str | None, topic_id: uuid.UUID, uses_ids: bool) -> object:
    return topic_id if uses_ids else topic


def _resolve(ctx: RequestContext, request: FetchRequest, uses_ids: bool) -> list[_Wanted]:
    image = ctx.node.image
    wanted = []
    for topic in request.topics:
        if uses_ids:
            known = image.topics_by_id.get(topic.topic_id)
            name = known.name if known is not None else None
            topic_id = topic.topic_id
        else:
            name = topic.topic
            known = image.topics_by_name.get(name)
            topic_id = known.topic_id if known is not None else uuid.UUID(int=0)
        for p in topic.partitions:
            wanted.append(_Wanted(name, topic_id, p.partition, p.fetch_offset,
                                  p.partition_max_bytes, p.current_leader_epoch))
    return wanted


def _session_partitions(session: FetchSession) -> list[_Wanted]:
    return [
        _Wanted(c.topic, c.topic_id, c.partition, c.fetch_offset, c.partition_max_bytes,
                c.current_leader_epoch, c)
        for c in session.partitions.values()
    ]


def _update_session(ctx: RequestContext, session: FetchSession, request: FetchRequest,
                    uses_ids: bool) -> None:
    for wanted in _resolve(ctx, request, uses_ids):
        key = (_topic_key(wanted.topic, wanted.topic_id, uses_ids), wanted.partition)
        cached = session.partitions.get(key)
        if cached is None:
            session.partitions[key] = CachedPartition(
                topic=wanted.topic or "", topic_id=wanted.topic_id, partition=wanted.partition,
                fetch_offset=wanted.fetch_offset,
                partition_max_bytes=wanted.partition_max_bytes,
                current_leader_epoch=wanted.current_leader_epoch)
        else:
            cached.fetch_offset = wanted.fetch_offset
            cached.partition_max_bytes = wanted.partition_max_bytes
            cached.current_leader_epoch = wanted.current_leader_epoch
    for forgotten in request.forgotten_topics_data:
        topic_key = forgotten.topic_id if uses_ids else forgotten.topic
        for partition in forgotten.partitions:
            session.partitions.pop((topic_key, partition), None)


def _read_partition(ctx: RequestContext, wanted: _Wanted, max_bytes: int, min_one_batch: bool,
                    isolation_level: int) -> _PartitionData:
    partition = None
    if wanted.topic is not None:
        partition = ctx.node.replica_manager.get(wanted.topic, wanted.partition)
    if partition is None:
        code = (ErrorCode.UNKNOWN_TOPIC_ID if wanted.topic is None
                else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        return _PartitionData(partition_index=wanted.partition, error_code=code,
                              high_watermark=-1, last_stable_offset=-1, log_start_offset=-1,
                              records=None)
    log = partition.log
    high_watermark = log.high_watermark
    last_stable_offset = log.last_stable_offset
    epoch = wanted.current_leader_epoch
    if epoch >= 0 and epoch != partition.leader_epoch:
        code = (ErrorCode.FENCED_LEADER_EPOCH if epoch < partition.leader_epoch
                else ErrorCode.UNKNOWN_LEADER_EPOCH)
        return _PartitionData(partition_index=wanted.partition, error_code=code,
                              high_watermark=high_watermark,
                              last_stable_offset=last_stable_offset,
                              log_start_offset=log.log_start_offset, records=None)
    max_offset = last_stable_offset if isolation_level == _READ_COMMITTED else high_watermark
    try:
        # An offset between the high watermark and the log end offset is in range and reads
        # nothing yet; only offsets outside [log start, log end] are out of range (Kafka's
        # LocalLog.read).
        result = log.read(wanted.fetch_offset, max_bytes, max_offset=max_offset,
                          min_one_batch=min_one_batch)
        records = result.records
        error = 0
    except OffsetOutOfRangeError:
        records = None
        error = ErrorCode.OFFSET_OUT_OF_RANGE
    aborted = None
    if isolation_level == _READ_COMMITTED:
        aborted = _aborted_transactions(log, wanted.fetch_offset, records)
    return _PartitionData(
        partition_index=wanted.partition,
        error_code=error,
        high_watermark=high_watermark,
        last_stable_offset=last_stable_offset,
        log_start_offset=log.log_start_offset,
        aborted_transactions=aborted,
        records=records if records is not None else b"",
    )


def _aborted_transactions(log: Any, fetch_offset: int, records: Any) -> list:
    """The aborted transactions a read_committed consumer needs to filter ``records``: those
    overlapping [fetch offset, end of the last returned batch) (Kafka's
    ``addAbortedTransactions``)."""
    if not records:
        return _NO_ABORTED
    upper_bound_offset = fetch_offset
    for header in iter_batch_headers(records):
        upper_bound_offset = header.next_offset
    aborted = log.collect_aborted_transactions(fetch_offset, upper_bound_offset)
    if not aborted:
        return _NO_ABORTED
    return [_AbortedTransaction(producer_id=entry.producer_id, first_offset=entry.first_offset)
            for entry in aborted]


def _read_all(ctx: RequestContext, request: FetchRequest, wanted: list[_Wanted]
              ) -> tuple[list[tuple[_Wanted, _PartitionData]], int, bool]:
    budget = request.max_bytes if ctx.api_version >= 3 else 2**31 - 1
    results = []
    total = 0
    errors = False
    isolation_level = request.isolation_level if ctx.api_version >= 4 else 0
    denied: set[str] | None = None
    if ctx.node.authorizer is not None:
        # READ once per topic per request (not per partition), as KafkaApis does.
        read, topic = AclOperation.READ, ResourceType.TOPIC
        denied = {t for t in {item.topic for item in wanted if item.topic is not None}
                  if not authorize(ctx, read, topic, t)}
    for item in wanted:
        if denied and item.topic in denied:
            results.append((item, _PartitionData(
                partition_index=item.partition, error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED,
                high_watermark=-1, last_stable_offset=-1, log_start_offset=-1, records=None)))
            errors = True
            continue
        data = _read_partition(ctx, item, min(item.partition_max_bytes, max(budget, 0)),
                               min_one_batch=total == 0, isolation_level=isolation_level)
        size = len(data.records) if data.records else 0
        total += size
        budget -= size
        errors = errors or data.error_code != 0
        results.append((item, data))
    return results, total, errors


def _build(ctx: RequestContext, results: list[tuple[_Wanted, _PartitionData]], uses_ids: bool,
           session_id: int, incremental: bool) -> FetchResponse:
    topics: dict[object, FetchResponse.FetchableTopicResponse] = {}
    for wanted, data in results:
        cached = wanted.cached
        if cached is not None:
            changed = (data.records or data.error_code or data.high_watermark != cached.high_watermark
                       or data.log_start_offset != cached.log_start_offset
                       or data.last_stable_offset != cached.last_stable_offset)
            cached.high_watermark = data.high_watermark
            cached.log_start_offset = data.log_start_offset
            cached.last_stable_offset = data.last_stable_offset
            if incremental and not changed:
                continue
        key = _topic_key(wanted.topic, wanted.topic_id, uses_ids)
        topic = topics.get(key)
        if topic is None:
            topic = topics[key] = FetchResponse.FetchableTopicResponse(
                topic=wanted.topic or "", topic_id=wanted.topic_id, partitions=[])
        topic.partitions.append(data)
    return FetchResponse(throttle_time_ms=0, error_code=0, session_id=session_id,
                         responses=list(topics.values()))


def handle(ctx: RequestContext, request: FetchRequest) -> Any:
    version = ctx.api_version
    uses_ids = version >= 13
    sessions = ctx.node.fetch_sessions
    session: FetchSession | None = None
    incremental = False
    if version >= 7:
        session_id, epoch = request.session_id, request.session_epoch
        if epoch == 0:
            if session_id:
                sessions.remove(session_id)
            session = sessions.create(uses_ids)
            if session is not None:
                _update_session(ctx, session, request, uses_ids)
        elif epoch == -1:
            if session_id:
                sessions.remove(session_id)
        else:
            session = sessions.get(session_id)
            if session is None:
                return FetchResponse(error_code=ErrorCode.FETCH_SESSION_ID_NOT_FOUND,
                                     session_id=0, responses=[])
            if session.epoch != epoch:
                return FetchResponse(error_code=ErrorCode.INVALID_FETCH_SESSION_EPOCH,
                                     session_id=0, responses=[])
            _update_session(ctx, session, request, uses_ids)
            incremental = True
    if session is not None:
        session.epoch = session.epoch + 1 if session.epoch < 2**31 - 1 else 1
        wanted = _session_partitions(session)
        session_id = session.session_id
    else:
        wanted = _resolve(ctx, request, uses_ids)
        session_id = 0
    results, total, errors = _read_all(ctx, request, wanted)
    if total >= request.min_bytes or errors or request.max_wait_ms <= 0 or not wanted \
            or ctx.node.state != "serving":
        return _build(ctx, results, uses_ids, session_id, incremental)
    return _long_poll(ctx, request, wanted, uses_ids, session_id, incremental)


async def _long_poll(ctx: RequestContext, request: FetchRequest, wanted: list[_Wanted],
                     uses_ids: bool, session_id: int, incremental: bool) -> FetchResponse:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + request.max_wait_ms / 1000
    replica_manager = ctx.node.replica_manager
    while True:
        waiter = loop.create_future()
        parked = []
        for item in wanted:
            if item.topic is None:
                continue
            partition = replica_manager.get(item.topic, item.partition)
            if partition is not None:
                partition.waiters.append(waiter)
                parked.append(partition)
        remaining = deadline - loop.time()
        try:
            if remaining > 0:
                await asyncio.wait_for(waiter, remaining)
        except asyncio.TimeoutError:
            pass
        finally:
            for partition in parked:
                try:
                    partition.waiters.remove(waiter)
                except ValueError:
                    pass
        results, total, errors = _read_all(ctx, request, wanted)
        if (total >= request.min_bytes or errors or loop.time() >= deadline
                or ctx.node.state != "serving"):
            return _build(ctx, results, uses_ids, session_id, incremental)
