"""DescribeConfigs (key 32): topic and broker configs with sources and synonyms (KIP-226)."""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.metadata.image import CONFIG_RESOURCE_BROKER, CONFIG_RESOURCE_TOPIC
from streambus.metadata.topic_config import (
    TOPIC_CONFIGS,
    ConfigSource,
    ConfigType,
    resolve_topic_config,
)
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.describe_configs import (
    DescribeConfigsRequest,
    DescribeConfigsResponse,
)

_Result = DescribeConfigsResponse.DescribeConfigsResult
_Entry = DescribeConfigsResponse.DescribeConfigsResourceResult
_Synonym = DescribeConfigsResponse.DescribeConfigsSynonym
_BROKER_LOGGER = 8


def _topic(ctx: RequestContext, resource: DescribeConfigsRequest.DescribeConfigsResource,
           include_synonyms: bool) -> _Result:
    name = resource.resource_name
    if name not in ctx.node.image.topics_by_name:
        return _Result(error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                       error_message=f"Topic {name} does not exist",
                       resource_type=CONFIG_RESOURCE_TOPIC, resource_name=name, configs=[])
    explicit = ctx.node.image.topic_configs(name)
    broker = ctx.node.broker_properties
    keys = resource.configuration_keys
    entries = []
    for config_name in sorted(TOPIC_CONFIGS):
        if keys is not None and config_name not in keys:
            continue
        definition = TOPIC_CONFIGS[config_name]
        value, source = resolve_topic_config(config_name, explicit, broker)
        synonyms = []
        if include_synonyms:
            if config_name in explicit:
                synonyms.append(_Synonym(name=config_name, value=explicit[config_name],
                                         source=ConfigSource.DYNAMIC_TOPIC_CONFIG))
            if definition.broker_synonym and definition.broker_synonym in broker:
                synonyms.append(_Synonym(name=definition.broker_synonym,
                                         value=broker[definition.broker_synonym],
                                         source=ConfigSource.STATIC_BROKER_CONFIG))
            synonyms.append(_Synonym(name=definition.broker_synonym or config_name,
                                     value=definition.default,
                                     source=ConfigSource.DEFAULT_CONFIG))
        entries.append(_Entry(name=config_name, value=value, read_only=False,
                              config_source=int(source), is_sensitive=False,
                              synonyms=synonyms, config_type=int(definition.config_type)))
    return _Result(error_code=0, error_message=None, resource_type=CONFIG_RESOURCE_TOPIC,
                   resource_name=name, configs=entries)


def _broker(ctx: RequestContext, resource: DescribeConfigsRequest.DescribeConfigsResource,
            include_synonyms: bool) -> _Result:
    name = resource.resource_name
    if name not in ("", str(ctx.node.node_id)):
        return _Result(error_code=ErrorCode.INVALID_REQUEST,
                       error_message=f"Unexpected broker id, expected {ctx.node.node_id} "
                                     f"or empty string, but received {name}",
                       resource_type=CONFIG_RESOURCE_BROKER, resource_name=name, configs=[])
    keys = resource.configuration_keys
    entries = []
    for config_name, value in sorted(ctx.node.broker_properties.items()):
        if keys is not None and config_name not in keys:
            continue
        source = ConfigSource.STATIC_BROKER_CONFIG
        entries.append(_Entry(
            name=config_name, value=value, read_only=True,
            config_source=int(source), is_sensitive=False,
            synonyms=[_Synonym(name=config_name, value=value, source=source)]
            if include_synonyms else [],
            config_type=int(ConfigType.STRING)))
    return _Result(error_code=0, error_message=None, resource_type=CONFIG_RESOURCE_BROKER,
                   resource_name=name, configs=entries)


def handle(ctx: RequestContext, request: DescribeConfigsRequest) -> DescribeConfigsResponse:
    include_synonyms = ctx.api_version >= 1 and request.include_synonyms
    results = []
    for resource in request.resources:
        if resource.resource_type == CONFIG_RESOURCE_TOPIC:
            results.append(_topic(ctx, resource, include_synonyms))
        elif resource.resource_type == CONFIG_RESOURCE_BROKER:
            results.append(_broker(ctx, resource, include_synonyms))
        else:
            results.append(_Result(
                error_code=ErrorCode.INVALID_REQUEST,
                error_message=f"Unsupported resource type {resource.resource_type}",
                resource_type=resource.resource_type, resource_name=resource.resource_name,
                configs=[]))
    return DescribeConfigsResponse(throttle_time_ms=0, results=results)
