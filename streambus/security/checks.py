"""Authorization checks for handlers: one call per resource, audited when denied.

Handlers call these exactly where Kafka's ``AuthHelper`` is called in ``KafkaApis``. With no
authorizer configured (no authenticating listener, no ACLs, no super users) every check is a
single ``is None`` test. Denials are logged and counted through ``ctx.node.security_audit``
unless the caller is only filtering (Kafka's ``logIfDenied=false``, e.g. Metadata listing all
topics).

``ctx`` is the broker's ``RequestContext``; this module only reads ``principal``,
``client_host``, ``api_version`` and ``node.authorizer`` / ``node.security_audit``.
"""

from __future__ import annotations

from typing import Any

from streambus.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType

__all__ = ["authorize", "authorize_cluster", "authorize_topic_type", "authorizer_of",
           "config_resource_denial"]


def authorizer_of(ctx: Any) -> Any:
    return getattr(ctx.node, "authorizer", None)


def authorize(ctx: Any, operation: AclOperation, resource_type: ResourceType, name: str, *,
              audit: bool = True) -> bool:
    """True when the request's principal may do ``operation`` on the resource."""
    authorizer = getattr(ctx.node, "authorizer", None)
    if authorizer is None:
        return True
    if authorizer.authorize(ctx.principal, ctx.client_host, operation, resource_type, name):
        return True
    if audit:
        ctx.node.security_audit.authorization_denied(
            ctx.principal, ctx.client_host, operation, resource_type, name,
            api=_api_name(ctx))
    return False


def authorize_cluster(ctx: Any, operation: AclOperation, *, audit: bool = True) -> bool:
    return authorize(ctx, operation, ResourceType.CLUSTER, CLUSTER_NAME, audit=audit)


def authorize_topic_type(ctx: Any, operation: AclOperation) -> bool:
    """Whether some topic could allow ``operation`` (Kafka's authorizeByResourceType)."""
    authorizer = getattr(ctx.node, "authorizer", None)
    if authorizer is None:
        return True
    return authorizer.authorize_by_resource_type(ctx.principal, ctx.client_host, operation,
                                                 ResourceType.TOPIC)


def _api_name(ctx: Any) -> str:
    spec = ctx.node.dispatcher.handlers.get(ctx.header.api_key)
    return spec.name if spec is not None else str(ctx.header.api_key)


#: ConfigResource types: TOPIC (2) is checked on the topic, BROKER (4) and BROKER_LOGGER (8)
#: on the cluster, as KafkaApis.authorizeConfigResource does.
_CONFIG_RESOURCE_TOPIC = 2


def config_resource_denial(ctx: Any, operation: AclOperation, resource_type: int,
                           resource_name: str) -> int | None:
    """None when allowed, else the error code for a DescribeConfigs/AlterConfigs resource."""
    if getattr(ctx.node, "authorizer", None) is None:
        return None
    from streambus.protocol.error_codes import ErrorCode

    if resource_type == _CONFIG_RESOURCE_TOPIC:
        if authorize(ctx, operation, ResourceType.TOPIC, resource_name):
            return None
        return ErrorCode.TOPIC_AUTHORIZATION_FAILED
    if authorize_cluster(ctx, operation):
        return None
    return ErrorCode.CLUSTER_AUTHORIZATION_FAILED
