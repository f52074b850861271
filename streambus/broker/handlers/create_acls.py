"""CreateAcls (key 30): store new ACLs as AccessControlEntryRecords (needs CLUSTER ALTER)."""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.metadata.security_control import create_acls
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.create_acls import CreateAclsRequest, CreateAclsResponse
from streambus.security.acl_requests import binding_from_creation
from streambus.security.authorizer import AclOperation
from streambus.security.checks import authorize_cluster

_Result = CreateAclsResponse.AclCreationResult


def handle(ctx: RequestContext, request: CreateAclsRequest) -> CreateAclsResponse:
    count = len(request.creations)
    if ctx.node.authorizer is None:
        return CreateAclsResponse(results=[_Result(
            error_code=ErrorCode.SECURITY_DISABLED,
            error_message="No Authorizer is configured.")] * count)
    if not authorize_cluster(ctx, AclOperation.ALTER):
        return CreateAclsResponse(results=[_Result(
            error_code=ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
            error_message=ErrorCode.CLUSTER_AUTHORIZATION_FAILED.message)] * count)
    bindings = [binding_from_creation(c) for c in request.creations]
    records, errors = create_acls(ctx.node.image, bindings)
    if records:
        ctx.node.commit_metadata(records)
    return CreateAclsResponse(results=[
        _Result(error_code=0, error_message=None) if error is None
        else _Result(error_code=int(error.error_code), error_message=error.message)
        for error in errors
    ])
