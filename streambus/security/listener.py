"""What a listener's security protocol means for each connection it accepts.

``ListenerSecurity`` is handed to the listener (``streambus.broker.server``) and answers, per
connection: which ``ssl.SSLContext`` to wrap it in (SSL, SASL_SSL), which principal a new
connection starts with (``User:ANONYMOUS``, or the TLS client certificate's subject), and the
`SaslSession` it must complete first (SASL_PLAINTEXT, SASL_SSL). It also owns the glue from a
failed or successful SASL exchange to the audit log. No sockets, no asyncio.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Sequence
from typing import Any

from streambus.security.audit import SecurityAudit
from streambus.security.authorizer import ANONYMOUS
from streambus.security.sasl import MECHANISMS, CredentialLookup, SaslAuthenticationError
from streambus.security.sasl.session import SaslSession
from streambus.security.tls import ReloadableServerContext, principal_from_certificate

__all__ = ["ListenerSecurity"]


def _monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class ListenerSecurity:
    """Security of one listener.

    Args:
        name: listener name (``SASL_SSL``, ``CLIENT``...), for logs and Metadata endpoints.
        security_protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
        tls: the reloadable server context (required for SSL and SASL_SSL).
        mechanisms: SASL mechanisms offered, in SaslHandshake order.
        lookup: SCRAM credential lookup (the metadata image).
        reauth_ms: ``connections.max.reauth.ms``.
        audit: where failures are logged and counted.
    """

    def __init__(self, name: str, security_protocol: str, *,
                 tls: ReloadableServerContext | None = None,
                 mechanisms: Sequence[str] = MECHANISMS,
                 lookup: CredentialLookup | None = None, reauth_ms: int = 0,
                 audit: SecurityAudit | None = None,
                 failed_authentication_delay_ms: int = 100,
                 clock_ms: Callable[[], int] = _monotonic_ms) -> None:
        self.name = name
        self.security_protocol = security_protocol
        self.uses_tls = security_protocol in ("SSL", "SASL_SSL")
        self.uses_sasl = security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")
        assert tls is not None or not self.uses_tls, "TLS listeners need a context"
        assert lookup is not None or not self.uses_sasl, "SASL listeners need credentials"
        self.tls = tls
        self.mechanisms = tuple(mechanisms)
        self._lookup = lookup
        self.reauth_ms = reauth_ms
        #: Kafka's connection.failed.authentication.delay.ms: close this long after a failure.
        self.failed_authentication_delay_ms = failed_authentication_delay_ms
        self.audit = audit or SecurityAudit()
        self._clock_ms = clock_ms

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        return self.tls.listener_context if self.tls is not None else None

    def initial_principal(self, transport: Any) -> str:
        """The principal before SASL: the client certificate's subject, or ANONYMOUS."""
        if self.uses_tls and transport is not None:
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is not None:
                try:
                    certificate = ssl_object.getpeercert()
                except (ValueError, ssl.SSLError):
                    certificate = None
                principal = principal_from_certificate(certificate)
                if principal is not None:
                    return principal
        return ANONYMOUS

    def new_session(self, client: str) -> SaslSession | None:
        """The SASL session a new connection from ``client`` must complete, if any."""
        if not self.uses_sasl:
            return None
        assert self._lookup is not None
        audit = self.audit

        def on_failure(error: SaslAuthenticationError) -> None:
            audit.authentication_failed(error.mechanism, error.user, client, error.reason,
                                        self.name)

        def on_success(mechanism: str, user: str) -> None:
            audit.authentication_succeeded(mechanism, user, client)

        return SaslSession(self.mechanisms, self._lookup, reauth_ms=self.reauth_ms,
                           clock_ms=self._clock_ms, on_failure=on_failure,
                           on_success=on_success)
