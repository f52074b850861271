"""The server side of one SASL exchange, whatever the mechanism.

A `SaslServer` consumes client tokens and produces server tokens until ``complete``; any
failure raises `SaslAuthenticationError`, whose message is safe to send to the client (it never
says whether the user exists, as Kafka's never does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from streambus.security.users import ScramCredential

__all__ = ["MECHANISMS", "CredentialLookup", "SaslAuthenticationError", "SaslServer",
           "create_server"]

MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

#: (user name, SCRAM mechanism) -> the stored credential, or None for an unknown user.
CredentialLookup = Callable[[str, str], "ScramCredential | None"]


class SaslAuthenticationError(Exception):
    """Authentication failed. ``reason`` is for the audit log only, never for the client."""

    def __init__(self, mechanism: str, reason: str, user: str | None = None) -> None:
        super().__init__(
            f"Authentication failed during authentication due to invalid credentials with "
            f"SASL mechanism {mechanism}")
        self.mechanism = mechanism
        self.reason = reason
        self.user = user


class SaslServer(Protocol):
    mechanism: str
    complete: bool
    user: str | None

    def evaluate(self, token: bytes) -> bytes:
        """Consume one client token and return the server's answer (possibly empty)."""
        ...


def create_server(mechanism: str, lookup: CredentialLookup) -> SaslServer:
    """A fresh server for ``mechanism`` (one of `MECHANISMS`)."""
    if mechanism == "PLAIN":
        from streambus.security.sasl.plain import PlainServer

        return PlainServer(lookup)
    from streambus.security.sasl.scram import ScramServer

    return ScramServer(mechanism, lookup)
