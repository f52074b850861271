"""CreateTopics (key 19): validate and create topics through the controller."""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.metadata import controller
from streambus.metadata.controller import ControllerError, TopicSpec
from streambus.metadata.topic_config import TOPIC_CONFIGS, resolve_topic_config
from streambus.protocol.messages.create_topics import CreateTopicsRequest, CreateTopicsResponse
from streambus.protocol.error_codes import ErrorCode
from streambus.security.authorizer import AclOperation, ResourceType
from streambus.security.checks import authorize, authorize_cluster

_Result = CreateTopicsResponse.CreatableTopicResult


def _configs(ctx: RequestContext, name: str) -> list[CreateTopicsResponse.CreatableTopicConfigs]:
    explicit = dict(ctx.node.image.topic_configs(name))
    configs = []
    for config_name in sorted(TOPIC_CONFIGS):
        value, source = resolve_topic_config(config_name, explicit, ctx.node.broker_properties)
        configs.append(CreateTopicsResponse.CreatableTopicConfigs(
            name=config_name, value=value, read_only=False, config_source=int(source),
            is_sensitive=False))
    return configs


def handle(ctx: RequestContext, request: CreateTopicsRequest) -> CreateTopicsResponse:
    node = ctx.node
    version = ctx.api_version
    results = []
    seen: dict[str, int] = {}
    for topic in request.topics:
        seen[topic.name] = seen.get(topic.name, 0) + 1
    # CLUSTER CREATE covers every topic; otherwise CREATE on each topic (KafkaApis).
    cluster_create = authorize_cluster(ctx, AclOperation.CREATE, audit=False)
    for topic in request.topics:
        if not cluster_create and not authorize(ctx, AclOperation.CREATE, ResourceType.TOPIC,
                                                topic.name):
            results.append(_Result(name=topic.name,
                                   error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED,
                                   error_message="Authorization failed."))
            continue
        if seen[topic.name] > 1:
            results.append(_Result(name=topic.name, error_code=42,  # INVALID_REQUEST
                                   error_message="Duplicate topic name in request."))
            continue
        spec = TopicSpec(
            name=topic.name,
            num_partitions=topic.num_partitions,
            replication_factor=topic.replication_factor,
            assignments={a.partition_index: a.broker_ids for a in topic.assignments} or None,
            configs={c.name: c.value for c in topic.configs},
        )
        try:
            records, partitions, replication = controller.create_topic(
                node.image, spec,
                usable_broker_ids=node.usable_broker_ids(),
                default_num_partitions=node.config.num_partitions,
                default_replication_factor=node.config.default_replication_factor,
                # Partition replication does not exist yet: one replica per partition.
                replication_factor_max=1,
            )
        except ControllerError as exc:
            results.append(_Result(name=topic.name, error_code=int(exc.error_code),
                                   error_message=exc.message))
            continue
        topic_id = records[0].topic_id
        if not request.validate_only:
            node.commit_metadata(records)
        # v5+ show the new topic's configs only to callers allowed DESCRIBE_CONFIGS on it
        # (KIP-525); others get TOPIC_AUTHORIZATION_FAILED in topic_config_error_code.
        show_configs = version >= 5 and not request.validate_only
        configs_allowed = not show_configs or authorize(
            ctx, AclOperation.DESCRIBE_CONFIGS, ResourceType.TOPIC, topic.name, audit=False)
        results.append(_Result(
            name=topic.name,
            topic_id=topic_id if not request.validate_only else topic_id.__class__(int=0),
            error_code=0,
            error_message=None,
            num_partitions=partitions,
            replication_factor=replication,
            configs=_configs(ctx, topic.name) if show_configs and configs_allowed else [],
            topic_config_error_code=0 if configs_allowed
            else ErrorCode.TOPIC_AUTHORIZATION_FAILED,
        ))
    return CreateTopicsResponse(throttle_time_ms=0, topics=results)
