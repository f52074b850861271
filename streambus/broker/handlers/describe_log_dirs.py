"""DescribeLogDirs (key 35, v1-4): size and offset lag of each hosted partition.

StreamBus has one log directory per broker (``data_dir``).  ``offset_lag`` is how far the log
end is behind the high watermark, 0 for a leader; there are never future replicas.  v3 adds a
top-level ``error_code``, v4 the directory's ``total_bytes`` and ``usable_bytes``.
"""

from __future__ import annotations

import shutil

from streambus.broker.context import RequestContext
from streambus.security.authorizer import AclOperation
from streambus.security.checks import authorize_cluster
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.describe_log_dirs import (
    DescribeLogDirsRequest,
    DescribeLogDirsResponse,
)

_Topic = DescribeLogDirsResponse.DescribeLogDirsTopic
_Partition = DescribeLogDirsResponse.DescribeLogDirsPartition


def _wanted(ctx: RequestContext, request: DescribeLogDirsRequest) -> dict[str, list[int]]:
    hosted: dict[str, list[int]] = {}
    for topic, index in sorted(ctx.node.replica_manager.partitions):
        hosted.setdefault(topic, []).append(index)
    if request.topics is None:
        return hosted
    wanted: dict[str, list[int]] = {}
    for topic in request.topics:
        indexes = [i for i in topic.partitions if i in hosted.get(topic.topic, ())]
        if indexes:
            wanted.setdefault(topic.topic, []).extend(indexes)
    return wanted


def handle(ctx: RequestContext, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse:
    replica_manager = ctx.node.replica_manager
    if not authorize_cluster(ctx, AclOperation.DESCRIBE):
        return DescribeLogDirsResponse(throttle_time_ms=0,
                                       error_code=ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
                                       results=[])
    topics = []
    for name, indexes in _wanted(ctx, request).items():
        partitions = []
        for index in sorted(set(indexes)):
            log = replica_manager.get(name, index).log
            partitions.append(_Partition(
                partition_index=index, partition_size=log.size_bytes,
                offset_lag=max(0, log.high_watermark - log.log_end_offset), is_future_key=False))
        topics.append(_Topic(name=name, partitions=partitions))
    data_dir = ctx.node.data_dir.resolve()
    usage = shutil.disk_usage(data_dir)
    result = DescribeLogDirsResponse.DescribeLogDirsResult(
        error_code=0, log_dir=str(data_dir), topics=topics,
        total_bytes=usage.total, usable_bytes=usage.free)
    return DescribeLogDirsResponse(throttle_time_ms=0, error_code=0, results=[result])
