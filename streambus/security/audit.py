"""Security audit: the one place failed authentications and denied authorizations are
logged (logger ``streambus.audit``) and counted.

Lines are ``key=value`` pairs so log pipelines can parse them; they carry the principal, the
client address, the resource and the operation, never a password or a SASL token.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["SecurityAudit", "audit_logger"]

audit_logger = logging.getLogger("streambus.audit")


class SecurityAudit:
    """Args: metrics: a `streambus.metrics.BrokerMetrics` (or None in tests)."""

    def __init__(self, metrics: Any = None) -> None:
        self.metrics = metrics

    def authorization_denied(self, principal: str, host: str, operation: Any,
                             resource_type: Any, resource_name: str, api: str = "") -> None:
        operation_name = getattr(operation, "name", str(operation))
        resource_type_name = getattr(resource_type, "name", str(resource_type))
        audit_logger.warning(
            "authorization denied: principal=%s client=%s operation=%s resource=%s:%s api=%s",
            principal, host, operation_name, resource_type_name, resource_name, api or "-")
        if self.metrics is not None:
            self.metrics.record_authorization_denied(operation_name, resource_type_name)

    def authentication_failed(self, mechanism: str, user: str | None, client: str,
                              reason: str, listener: str = "") -> None:
        audit_logger.warning(
            "authentication failed: user=%s client=%s mechanism=%s listener=%s reason=%s",
            _printable(user) if user is not None else "-", client, mechanism, listener or "-",
            reason)
        if self.metrics is not None:
            self.metrics.record_authentication(mechanism, ok=False)

    def authentication_succeeded(self, mechanism: str, user: str, client: str) -> None:
        audit_logger.debug("authenticated: user=%s client=%s mechanism=%s",
                           _printable(user), client, mechanism)
        if self.metrics is not None:
            self.metrics.record_authentication(mechanism, ok=True)


def _printable(text: str, length_max: int = 256) -> str:
    # A user name comes from the client: keep log lines one line and bounded.
    return text[:length_max].encode("unicode_escape").decode("ascii")
