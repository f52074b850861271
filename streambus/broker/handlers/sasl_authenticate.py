"""SaslAuthenticate (key 36): one SASL token each way (KIP-152), re-authentication (KIP-368).

A failure answers SASL_AUTHENTICATION_FAILED with Kafka's message and the connection closes
after the answer (the session sets ``close_after_response``); the audit log gets the reason.
"""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.sasl_authenticate import (
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
)


def handle(ctx: RequestContext, request: SaslAuthenticateRequest) -> SaslAuthenticateResponse:
    session = ctx.sasl
    if session is None:
        return SaslAuthenticateResponse(
            error_code=ErrorCode.ILLEGAL_SASL_STATE,
            error_message="SaslAuthenticate request received on a listener without SASL",
            auth_bytes=b"")
    result = session.receive_authenticate(bytes(request.auth_bytes), ctx.api_version)
    return SaslAuthenticateResponse(
        error_code=result.error_code, error_message=result.error_message,
        auth_bytes=result.auth_bytes, session_lifetime_ms=result.session_lifetime_ms)
