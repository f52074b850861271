"""DescribeUserScramCredentials (key 50): mechanisms and iterations per user, never keys
(KIP-554). Needs CLUSTER DESCRIBE."""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.describe_user_scram_credentials import (
    DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse,
)
from streambus.security.authorizer import AclOperation
from streambus.security.checks import authorize_cluster
from streambus.security.users import MECHANISM_CODES

_Result = DescribeUserScramCredentialsResponse.DescribeUserScramCredentialsResult
_Info = DescribeUserScramCredentialsResponse.CredentialInfo


def handle(ctx: RequestContext, request: DescribeUserScramCredentialsRequest
           ) -> DescribeUserScramCredentialsResponse:
    if not authorize_cluster(ctx, AclOperation.DESCRIBE):
        return DescribeUserScramCredentialsResponse(
            error_code=ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
            error_message=ErrorCode.CLUSTER_AUTHORIZATION_FAILED.message)
    by_user: dict[str, list[_Info]] = {}
    for (user, mechanism), credential in sorted(ctx.node.image.scram_credentials.items()):
        by_user.setdefault(user, []).append(
            _Info(mechanism=MECHANISM_CODES[mechanism], iterations=credential.iterations))
    if not request.users:  # null or empty: every user
        return DescribeUserScramCredentialsResponse(error_code=0, error_message=None, results=[
            _Result(user=user, error_code=0, error_message=None, credential_infos=infos)
            for user, infos in by_user.items()])
    names = [u.name for u in request.users]
    results = []
    for name in dict.fromkeys(names):
        if names.count(name) > 1:
            results.append(_Result(user=name, error_code=ErrorCode.DUPLICATE_RESOURCE,
                                   error_message=f"Cannot describe SCRAM credentials for the "
                                                 f"same user twice in a single request: {name}"))
        elif name not in by_user:
            results.append(_Result(user=name, error_code=ErrorCode.RESOURCE_NOT_FOUND,
                                   error_message=f"Attempt to describe nonexistent user: {name}"))
        else:
            results.append(_Result(user=name, error_code=0, error_message=None,
                                   credential_infos=by_user[name]))
    return DescribeUserScramCredentialsResponse(error_code=0, error_message=None,
                                                results=results)
