"""Metadata (key 3): brokers, controller and topic/partition leadership, with auto-creation."""

from __future__ import annotations

from collections import OrderedDict

from streambus.broker.context import RequestContext
from streambus.broker.dispatch import EncodedResponse
from streambus.metadata import controller
from streambus.metadata.controller import ControllerError, TopicSpec
from streambus.metadata.image import MetadataImage, TopicImage
from streambus.protocol import codec
from streambus.protocol.api_keys import ApiKey
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.metadata import MetadataRequest, MetadataResponse
from streambus.security.authorizer import AclOperation, ResourceType, authorized_operations
from streambus.security.checks import authorize, authorize_cluster

_AUTHORIZED_OPERATIONS_OMITTED = -2147483648
#: All topic operations allowed (bits of AclOperation READ..DESCRIBE_CONFIGS etc.); ACLs refine
#: this later.  Bits: 3 READ, 4 WRITE, 5 CREATE, 6 DELETE, 7 ALTER, 8 DESCRIBE,
#: 10 DESCRIBE_CONFIGS, 11 ALTER_CONFIGS.
_TOPIC_OPERATIONS_ALL = sum(1 << bit for bit in (3, 4, 5, 6, 7, 8, 10, 11))
_CLUSTER_OPERATIONS_ALL = sum(1 << bit for bit in (5, 7, 8, 9, 10, 11, 12))


def _topic_response(topic: TopicImage, version: int, include_ops: bool,
                    ctx: RequestContext | None = None) -> MetadataResponse.MetadataResponseTopic:
    partitions = [
        MetadataResponse.MetadataResponsePartition(
            error_code=0,
            partition_index=p.partition_index,
            leader_id=p.leader,
            leader_epoch=p.leader_epoch,
            replica_nodes=list(p.replicas),
            isr_nodes=list(p.isr),
            offline_replicas=[],
        )
        for p in sorted(topic.partitions.values(), key=lambda p: p.partition_index)
    ]
    return MetadataResponse.MetadataResponseTopic(
        error_code=0,
        name=topic.name,
        topic_id=topic.topic_id,
        is_internal=topic.name.startswith("__"),
        partitions=partitions,
        topic_authorized_operations=(
            _operations(ctx, ResourceType.TOPIC, topic.name) if include_ops
            else _AUTHORIZED_OPERATIONS_OMITTED
        ),
    )


def _operations(ctx: RequestContext | None, resource_type: ResourceType, name: str) -> int:
    """KIP-430 authorized-operations bits for the caller (everything without ACLs)."""
    if ctx is None or ctx.node.authorizer is None:
        return _TOPIC_OPERATIONS_ALL if resource_type == ResourceType.TOPIC \
            else _CLUSTER_OPERATIONS_ALL
    return authorized_operations(ctx.node.authorizer, ctx.principal, ctx.client_host,
                                 resource_type, name)


def _may_create(ctx: RequestContext, name: str) -> bool:
    """Kafka's auto-creation check: CLUSTER CREATE, or CREATE on the topic itself."""
    return (authorize_cluster(ctx, AclOperation.CREATE, audit=False)
            or authorize(ctx, AclOperation.CREATE, ResourceType.TOPIC, name))


def _auto_create(ctx: RequestContext, name: str) -> tuple[MetadataImage, int]:
    node = ctx.node
    if node.cluster is not None and not node.cluster.is_active_controller():
        # Only the active controller writes metadata: ask it in the background and answer
        # LEADER_NOT_AVAILABLE meanwhile, as Kafka's AutoTopicCreationManager does.
        node.cluster.request_topic_creation(name)
        return node.image, int(ErrorCode.LEADER_NOT_AVAILABLE)
    try:
        records, _, _ = controller.create_topic(
            node.image,
            TopicSpec(name=name, num_partitions=-1, replication_factor=-1),
            usable_broker_ids=node.usable_broker_ids(),
            default_num_partitions=node.config.num_partitions,
            default_replication_factor=node.config.default_replication_factor,
            # Partition replication does not exist yet: one replica per partition.
            replication_factor_max=1,
        )
    except ControllerError as exc:
        return node.image, int(exc.error_code)
    return node.commit_metadata(records), 0


#: Encoded answers to repeated Metadata requests are kept per node, keyed by the image they
#: describe: clients poll Metadata constantly (librdkafka every
#: topic.metadata.refresh.interval.ms, producers on every new topic) and a large cluster's
#: answer costs tens of microseconds to build.
_CACHE_ENTRIES_MAX = 256


def handle(ctx: RequestContext, request: MetadataRequest) -> MetadataResponse | EncodedResponse:
    version = ctx.api_version
    cache: OrderedDict = ctx.node.metadata_response_cache
    # With ACLs, answers differ per caller (and per listener, for the broker endpoints).
    caller = (None if ctx.node.authorizer is None
              else (ctx.principal, ctx.client_host))
    key = (
        ctx.node.image.offset, ctx.listener_name, caller, version,
        None if request.topics is None else tuple((t.name, t.topic_id) for t in request.topics),
        version >= 4 and request.allow_auto_topic_creation,
        version >= 8 and request.include_topic_authorized_operations,
        8 <= version <= 10 and request.include_cluster_authorized_operations,
    )
    cached = cache.get(key)
    if cached is not None:
        cache.move_to_end(key)
        return cached
    response = _build(ctx, request)
    if any(topic.error_code for topic in response.topics):
        return response  # errors may resolve on the next call (auto-creation): don't cache
    encoded = EncodedResponse(codec.encode_response(ApiKey.METADATA, version, response))
    # The key must name the image the answer was built from; building may have created topics.
    cache[(ctx.node.image.offset,) + key[1:]] = encoded
    while len(cache) > _CACHE_ENTRIES_MAX:
        cache.popitem(last=False)
    return encoded


def _build(ctx: RequestContext, request: MetadataRequest) -> MetadataResponse:
    node = ctx.node
    version = ctx.api_version
    image = node.image
    include_ops = version >= 8 and request.include_topic_authorized_operations
    # v0: an empty list means all topics; v1+: null means all topics.
    all_topics = request.topics is None or (version == 0 and not request.topics)
    topics: list[MetadataResponse.MetadataResponseTopic] = []
    if all_topics:
        # Topics the caller may not DESCRIBE are left out without a trace (logIfDenied=false).
        for topic in sorted(image.topics_by_name.values(), key=lambda t: t.name):
            if authorize(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, topic.name,
                         audit=False):
                topics.append(_topic_response(topic, version, include_ops, ctx))
    else:
        auto_create = node.config.auto_create_topics_enable and (
            version < 4 or request.allow_auto_topic_creation
        )
        for requested in request.topics:
            name = requested.name
            topic = None
            if name is None and requested.topic_id.int != 0:
                topic = image.topics_by_id.get(requested.topic_id)
                if topic is None:
                    topics.append(MetadataResponse.MetadataResponseTopic(
                        error_code=ErrorCode.UNKNOWN_TOPIC_ID, name=None,
                        topic_id=requested.topic_id))
                    continue
            else:
                name = name or ""
                topic = image.topics_by_name.get(name)
            if not authorize(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC,
                             topic.name if topic is not None else name):
                # Never disclose whether a topic the caller may not describe exists.
                if name is None:
                    topics.append(MetadataResponse.MetadataResponseTopic(
                        error_code=ErrorCode.UNKNOWN_TOPIC_ID, name=None,
                        topic_id=requested.topic_id))
                else:
                    topics.append(MetadataResponse.MetadataResponseTopic(
                        error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED, name=name,
                        is_internal=False))
                continue
            if topic is None:
                error = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                try:
                    controller.validate_topic_name(name)
                except ControllerError:
                    error = ErrorCode.INVALID_TOPIC_EXCEPTION
                if error == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION and auto_create \
                        and not name.startswith("__") and not _may_create(ctx, name):
                    error = ErrorCode.TOPIC_AUTHORIZATION_FAILED
                elif error == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION and auto_create \
                        and not name.startswith("__"):
                    image, code = _auto_create(ctx, name)
                    topic = image.topics_by_name.get(name)
                    if topic is None:
                        error = code or ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                if topic is None:
                    topics.append(MetadataResponse.MetadataResponseTopic(
                        error_code=error, name=name, is_internal=False))
                    continue
            topics.append(_topic_response(topic, version, include_ops, ctx))
    brokers = []
    for broker in sorted(image.brokers.values(), key=lambda b: b.broker_id):
        # Kafka answers with each broker's endpoint for the listener this request came in on.
        endpoint = next((e for e in broker.endpoints if e[0] == ctx.listener_name), None)
        if endpoint is None and broker.endpoints and broker.broker_id != node.node_id:
            endpoint = broker.endpoints[0]
        if broker.broker_id == node.node_id:
            host, port = node.advertised_endpoint(ctx.listener_name)
            endpoint = (ctx.listener_name, host, port)
        if broker.fenced or endpoint is None:
            continue
        brokers.append(MetadataResponse.MetadataResponseBroker(
            node_id=broker.broker_id, host=endpoint[1], port=endpoint[2], rack=broker.rack))
    return MetadataResponse(
        throttle_time_ms=0,
        brokers=brokers,
        cluster_id=node.cluster_id,
        controller_id=node.controller_id(),
        topics=topics,
        cluster_authorized_operations=(
            _operations(ctx, ResourceType.CLUSTER, "kafka-cluster")
            if 8 <= version <= 10 and request.include_cluster_authorized_operations
            else _AUTHORIZED_OPERATIONS_OMITTED
        ),
    )
