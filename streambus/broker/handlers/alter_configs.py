"""AlterConfigs (key 33, v0-2): replace a topic's or broker's explicit configs.

Every config of the resource that the request does not name returns to its default (that is
what makes this API dangerous, and why KIP-339 added IncrementalAlterConfigs).  Changes become
ConfigRecords in the metadata log; the replica manager applies the new image without a restart.
"""

from __future__ import annotations

from collections import Counter

from streambus.broker.context import RequestContext
from streambus.security.authorizer import AclOperation
from streambus.security.checks import config_resource_denial
from streambus.metadata import controller
from streambus.metadata.controller import ControllerError
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.alter_configs import AlterConfigsRequest, AlterConfigsResponse

_Response = AlterConfigsResponse.AlterConfigsResourceResponse


def handle(ctx: RequestContext, request: AlterConfigsRequest) -> AlterConfigsResponse:
    counts = Counter((r.resource_type, r.resource_name) for r in request.resources)
    responses = []
    for resource in request.resources:
        code, message = ErrorCode.NONE, None
        if counts[(resource.resource_type, resource.resource_name)] > 1:
            code, message = ErrorCode.INVALID_REQUEST, "Duplicate resource in request"
        elif (denied := config_resource_denial(ctx, AclOperation.ALTER_CONFIGS,
                                               resource.resource_type,
                                               resource.resource_name)) is not None:
            code, message = denied, ErrorCode(denied).message
        else:
            try:
                records = controller.alter_configs(
                    ctx.node.image, resource.resource_type, resource.resource_name,
                    replacement=[(c.name, c.value) for c in resource.configs])
                if records and not request.validate_only:
                    ctx.node.commit_metadata(records)
            except ControllerError as exc:
                code, message = exc.error_code, exc.message
        responses.append(_Response(error_code=int(code), error_message=message,
                                   resource_type=resource.resource_type,
                                   resource_name=resource.resource_name))
    return AlterConfigsResponse(throttle_time_ms=0, responses=responses)
