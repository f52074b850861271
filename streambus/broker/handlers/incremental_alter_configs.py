"""IncrementalAlterConfigs (key 44, v0-1): SET, DELETE, APPEND and SUBTRACT configs (KIP-339).

Only the named configs change; APPEND/SUBTRACT edit LIST configs such as ``cleanup.policy``.
Changes become ConfigRecords in the metadata log and apply without a restart.
"""

from __future__ import annotations

from collections import Counter

from streambus.broker.context import RequestContext
from streambus.security.authorizer import AclOperation
from streambus.security.checks import config_resource_denial
from streambus.metadata import controller
from streambus.metadata.controller import ControllerError
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.incremental_alter_configs import (
    IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
)

_Response = IncrementalAlterConfigsResponse.AlterConfigsResourceResponse


def handle(ctx: RequestContext,
           request: IncrementalAlterConfigsRequest) -> IncrementalAlterConfigsResponse:
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
                    operations=[(c.name, c.config_operation, c.value) for c in resource.configs])
                if records and not request.validate_only:
                    ctx.node.commit_metadata(records)
            except ControllerError as exc:
                code, message = exc.error_code, exc.message
        responses.append(_Response(error_code=int(code), error_message=message,
                                   resource_type=resource.resource_type,
                                   resource_name=resource.resource_name))
    return IncrementalAlterConfigsResponse(throttle_time_ms=0, responses=responses)
