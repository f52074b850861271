"""AlterUserScramCredentials (key 51): upsert or delete SCRAM credentials (KIP-554).

The client sends the salted password, never the password; the broker stores StoredKey and
ServerKey as UserScramCredentialRecords. Needs CLUSTER ALTER. Takes effect at once: the next
authentication reads the new image.
"""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.metadata.security_control import ScramAlteration, alter_scram_credentials
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.alter_user_scram_credentials import (
    AlterUserScramCredentialsRequest,
    AlterUserScramCredentialsResponse,
)
from streambus.security.authorizer import AclOperation
from streambus.security.checks import authorize_cluster

_Result = AlterUserScramCredentialsResponse.AlterUserScramCredentialsResult


def handle(ctx: RequestContext, request: AlterUserScramCredentialsRequest
           ) -> AlterUserScramCredentialsResponse:
    items = [ScramAlteration(name=d.name, mechanism=d.mechanism) for d in request.deletions]
    items += [ScramAlteration(name=u.name, mechanism=u.mechanism, iterations=u.iterations,
                              salt=bytes(u.salt), salted_password=bytes(u.salted_password))
              for u in request.upsertions]
    users = list(dict.fromkeys(item.name for item in items))
    if not authorize_cluster(ctx, AclOperation.ALTER):
        return AlterUserScramCredentialsResponse(results=[
            _Result(user=user, error_code=ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
                    error_message=ErrorCode.CLUSTER_AUTHORIZATION_FAILED.message)
            for user in users])
    records, errors = alter_scram_credentials(ctx.node.image, items)
    if records:
        ctx.node.commit_metadata(records)
    return AlterUserScramCredentialsResponse(results=[
        _Result(user=user, error_code=0, error_message=None) if errors[user] is None
        else _Result(user=user, error_code=int(errors[user].error_code),
                     error_message=errors[user].message)
        for user in users])
