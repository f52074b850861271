"""DescribeConfigs (key 32): topic and broker configs with sources and synonyms (KIP-226).

Values come from ``metadata.topic_config``: a topic's explicit configs, then the broker's
dynamic (per broker, cluster-wide), static and default layers.  Fields by version: v1 adds
``config_source`` and ``synonyms`` (``is_default`` exists only in v0, which Kafka 4 no longer
serves), v3 adds ``config_type`` and ``documentation``.
"""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.security.authorizer import AclOperation
from streambus.security.checks import config_resource_denial
from streambus.metadata.image import CONFIG_RESOURCE_BROKER, CONFIG_RESOURCE_TOPIC
from streambus.metadata.topic_config import (
    TOPIC_CONFIGS,
    ConfigEntry,
    broker_config_names,
    describe_broker_config,
    describe_topic_config,
)
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.describe_configs import (
    DescribeConfigsRequest,
    DescribeConfigsResponse,
)

_Result = DescribeConfigsResponse.DescribeConfigsResult
_Entry = DescribeConfigsResponse.DescribeConfigsResourceResult
_Synonym = DescribeConfigsResponse.DescribeConfigsSynonym
_Resource = DescribeConfigsRequest.DescribeConfigsResource


def _wanted(resource: _Resource, names: list[str]) -> list[str]:
    # Null or empty configuration_keys mean every config (Kafka's ConfigHelper).
    keys = resource.configuration_keys
    return names if not keys else [name for name in names if name in set(keys)]


def _entry(config: ConfigEntry, include_synonyms: bool) -> _Entry:
    synonyms = [_Synonym(name=name, value=value, source=int(source))
                for name, value, source in config.synonyms] if include_synonyms else []
    return _Entry(name=config.name, value=config.value, read_only=config.read_only,
                  config_source=int(config.source), is_sensitive=False, synonyms=synonyms,
                  config_type=int(config.config_type), documentation=None)


def _error(resource: _Resource, code: ErrorCode, message: str) -> _Result:
    return _Result(error_code=code, error_message=message, resource_type=resource.resource_type,
                   resource_name=resource.resource_name, configs=[])


def _topic(ctx: RequestContext, resource: _Resource, include_synonyms: bool) -> _Result:
    name = resource.resource_name
    if name not in ctx.node.image.topics_by_name:
        return _error(resource, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                      f"Topic {name} does not exist")
    explicit = ctx.node.image.topic_configs(name)
    layers = ctx.node.broker_config_layers()
    entries = [_entry(describe_topic_config(config_name, explicit, layers), include_synonyms)
               for config_name in _wanted(resource, sorted(TOPIC_CONFIGS))]
    return _Result(error_code=0, error_message=None, resource_type=CONFIG_RESOURCE_TOPIC,
                   resource_name=name, configs=entries)


def _broker(ctx: RequestContext, resource: _Resource, include_synonyms: bool) -> _Result:
    name = resource.resource_name
    if name not in ("", str(ctx.node.node_id)):
        return _error(resource, ErrorCode.INVALID_REQUEST,
                      f"Unexpected broker id, expected {ctx.node.node_id} or empty string, "
                      f"but received {name}")
    layers = ctx.node.broker_config_layers()
    if name == "":
        # The cluster-wide default resource shows only what is set there (as Kafka does).
        layers = layers.with_dynamic(layers.dynamic_default, {})
        names = sorted(layers.dynamic_default)
    else:
        names = broker_config_names(layers)
    entries = []
    for config_name in _wanted(resource, names):
        config = describe_broker_config(config_name, layers)
        entries.append(_entry(config, include_synonyms))
    return _Result(error_code=0, error_message=None, resource_type=CONFIG_RESOURCE_BROKER,
                   resource_name=name, configs=entries)


def handle(ctx: RequestContext, request: DescribeConfigsRequest) -> DescribeConfigsResponse:
    include_synonyms = ctx.api_version >= 1 and request.include_synonyms
    results = []
    for resource in request.resources:
        denied = config_resource_denial(ctx, AclOperation.DESCRIBE_CONFIGS,
                                        resource.resource_type, resource.resource_name)
        if denied is not None:
            results.append(_error(resource, denied, ErrorCode(denied).message))
        elif resource.resource_type == CONFIG_RESOURCE_TOPIC:
            results.append(_topic(ctx, resource, include_synonyms))
        elif resource.resource_type == CONFIG_RESOURCE_BROKER:
            results.append(_broker(ctx, resource, include_synonyms))
        else:
            results.append(_error(resource, ErrorCode.INVALID_REQUEST,
                                  f"Unsupported resource type {resource.resource_type}"))
    return DescribeConfigsResponse(throttle_time_ms=0, results=results)
