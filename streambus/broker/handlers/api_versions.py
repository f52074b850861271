"""ApiVersions (key 18): which APIs and versions this broker speaks (KIP-35, KIP-511)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from streambus.broker.context import RequestContext
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.api_versions import ApiVersionsRequest, ApiVersionsResponse

if TYPE_CHECKING:
    from streambus.broker.dispatch import Dispatcher

# KIP-511: client software name and version must match this pattern (Kafka's
# ApiVersionsRequest.isValid), otherwise the broker answers INVALID_REQUEST.
_SOFTWARE_PATTERN = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$")


def _api_keys(dispatcher: "Dispatcher") -> list[ApiVersionsResponse.ApiVersion]:
    return [
        ApiVersionsResponse.ApiVersion(
            api_key=spec.api_key, min_version=spec.min_version, max_version=spec.max_version
        )
        for spec in sorted(dispatcher.handlers.values(), key=lambda s: s.api_key)
    ]


def unsupported_version_response(dispatcher: "Dispatcher") -> ApiVersionsResponse:
    """The v0-shaped answer to an ApiVersions version newer than we support."""
    return ApiVersionsResponse(
        error_code=ErrorCode.UNSUPPORTED_VERSION, api_keys=_api_keys(dispatcher)
    )


def handle(ctx: RequestContext, request: ApiVersionsRequest) -> ApiVersionsResponse:
    if ctx.api_version >= 3 and not (
        _SOFTWARE_PATTERN.match(request.client_software_name or "")
        and _SOFTWARE_PATTERN.match(request.client_software_version or "")
    ):
        return ApiVersionsResponse(error_code=ErrorCode.INVALID_REQUEST,
                                   api_keys=_api_keys(ctx.node.dispatcher))
    return ApiVersionsResponse(
        error_code=ErrorCode.NONE,
        api_keys=_api_keys(ctx.node.dispatcher),
        finalized_features_epoch=max(ctx.node.image.offset, -1) if ctx.api_version >= 3 else -1,
        supported_features=[
            ApiVersionsResponse.SupportedFeatureKey(name="metadata.version",
                                                     min_version=1, max_version=21)
        ] if ctx.api_version >= 3 else [],
        finalized_features=[
            ApiVersionsResponse.FinalizedFeatureKey(name=name, max_version_level=level,
                                                     min_version_level=level)
            for name, level in sorted(ctx.node.image.features.items())
        ] if ctx.api_version >= 3 else [],
    )
