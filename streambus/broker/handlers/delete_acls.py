"""DeleteAcls (key 31): remove the ACLs each filter matches (needs CLUSTER ALTER)."""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.metadata.security_control import AclError, delete_acls
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.delete_acls import DeleteAclsRequest, DeleteAclsResponse
from streambus.security.acl_requests import filter_from_request
from streambus.security.authorizer import AclOperation
from streambus.security.checks import authorize_cluster

_FilterResult = DeleteAclsResponse.DeleteAclsFilterResult
_Matching = DeleteAclsResponse.DeleteAclsMatchingAcl


def handle(ctx: RequestContext, request: DeleteAclsRequest) -> DeleteAclsResponse:
    count = len(request.filters)
    if ctx.node.authorizer is None:
        return DeleteAclsResponse(filter_results=[_FilterResult(
            error_code=ErrorCode.SECURITY_DISABLED,
            error_message="No Authorizer is configured.")] * count)
    if not authorize_cluster(ctx, AclOperation.ALTER):
        return DeleteAclsResponse(filter_results=[_FilterResult(
            error_code=ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
            error_message=ErrorCode.CLUSTER_AUTHORIZATION_FAILED.message)] * count)
    filters = [filter_from_request(item) for item in request.filters]
    valid = [f for f in filters if not isinstance(f, str)]
    records, matched = delete_acls(ctx.node.image, valid)
    if records:
        ctx.node.commit_metadata(records)
    results = []
    matched_iter = iter(matched)
    for acl_filter in filters:
        if isinstance(acl_filter, str):
            results.append(_FilterResult(error_code=ErrorCode.INVALID_REQUEST,
                                         error_message=acl_filter))
            continue
        outcome = next(matched_iter)
        if isinstance(outcome, AclError):
            results.append(_FilterResult(error_code=int(outcome.error_code),
                                         error_message=outcome.message))
            continue
        results.append(_FilterResult(error_code=0, error_message=None, matching_acls=[
            _Matching(error_code=0, error_message=None, resource_type=int(b.resource_type),
                      resource_name=b.resource_name, pattern_type=int(b.pattern_type),
                      principal=b.principal, host=b.host, operation=int(b.operation),
                      permission_type=int(b.permission_type))
            for b in outcome
        ]))
    return DeleteAclsResponse(filter_results=results)
