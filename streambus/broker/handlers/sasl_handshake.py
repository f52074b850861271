"""SaslHandshake (key 17): pick the SASL mechanism of this connection (KIP-43, KIP-152).

The state machine lives in ``streambus.security.sasl.session``; this handler only answers.
On a listener without SASL, or once authenticated without a re-authentication lifetime, Kafka
answers ILLEGAL_SASL_STATE (KafkaApis.handleSaslHandshakeRequest).
"""

from __future__ import annotations

from streambus.broker.context import RequestContext
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.sasl_handshake import SaslHandshakeRequest, SaslHandshakeResponse


def handle(ctx: RequestContext, request: SaslHandshakeRequest) -> SaslHandshakeResponse:
    session = ctx.sasl
    if session is None:
        return SaslHandshakeResponse(error_code=ErrorCode.ILLEGAL_SASL_STATE, mechanisms=[])
    error_code, mechanisms = session.receive_handshake(request.mechanism, ctx.api_version)
    if error_code == ErrorCode.UNSUPPORTED_SASL_MECHANISM:
        ctx.node.security_audit.authentication_failed(
            "other", None, ctx.client_host,
            f"unsupported mechanism {request.mechanism[:64]!r}", ctx.listener_name)
    return SaslHandshakeResponse(error_code=error_code, mechanisms=mechanisms)
