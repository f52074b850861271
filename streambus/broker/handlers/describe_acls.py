"""DescribeAcls (key 29): the ACLs a filter matches, grouped by resource pattern.

Needs CLUSTER DESCRIBE; without an authorizer Kafka answers SECURITY_DISABLED.
"""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.describe_acls import DescribeAclsRequest, DescribeAclsResponse
from streambus.security.acl_requests import filter_from_request
from streambus.security.authorizer import AclOperation
from streambus.security.checks import authorize_cluster

_Resource = DescribeAclsResponse.DescribeAclsResource
_Description = DescribeAclsResponse.AclDescription


def handle(ctx: RequestContext, request: DescribeAclsRequest) -> DescribeAclsResponse:
    if ctx.node.authorizer is None:
        return DescribeAclsResponse(error_code=ErrorCode.SECURITY_DISABLED,
                                    error_message="No Authorizer is configured.")
    if not authorize_cluster(ctx, AclOperation.DESCRIBE):
        return DescribeAclsResponse(error_code=ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
                                    error_message=ErrorCode.CLUSTER_AUTHORIZATION_FAILED.message)
    acl_filter = filter_from_request(request)
    if isinstance(acl_filter, str):
        return DescribeAclsResponse(error_code=ErrorCode.INVALID_REQUEST, error_message=acl_filter)
    resources: dict[tuple, list[_Description]] = {}
    for binding in ctx.node.image.acls.values():
        if acl_filter.matches(binding):
            key = (int(binding.resource_type), binding.resource_name, int(binding.pattern_type))
            resources.setdefault(key, []).append(_Description(
                principal=binding.principal, host=binding.host,
                operation=int(binding.operation), permission_type=int(binding.permission_type)))
    return DescribeAclsResponse(error_code=0, error_message=None, resources=[
        _Resource(resource_type=key[0], resource_name=key[1], pattern_type=key[2],
                  acls=sorted(acls, key=lambda a: (a.principal, a.host, a.operation,
                                                   a.permission_type)))
        for key, acls in sorted(resources.items())
    ])
