"""SASL PLAIN (RFC 4616), checked against the user's salted SCRAM credential.

The token is ``authzid NUL authcid NUL passwd``. As Kafka's PlainSaslServer, an authorization
id different from the user name is refused. StreamBus stores no plaintext passwords, so the
password is salted with the stored credential's salt and iteration count and compared with its
StoredKey in constant time.
"""

from __future__ import annotations

from streambus.security.sasl.mechanism import CredentialLookup, SaslAuthenticationError
from streambus.security.users import verify_password

__all__ = ["PlainServer"]

MECHANISM = "PLAIN"
TOKEN_BYTES_MAX = 4096


class PlainServer:
    mechanism = MECHANISM

    def __init__(self, lookup: CredentialLookup) -> None:
        self._lookup = lookup
        self.complete = False
        self.user: str | None = None

    def evaluate(self, token: bytes) -> bytes:
        if self.complete:
            raise SaslAuthenticationError(MECHANISM, "token after completion")
        if len(token) > TOKEN_BYTES_MAX:
            raise SaslAuthenticationError(MECHANISM, "token too large")
        parts = bytes(token).split(b"\x00")
        if len(parts) != 3:
            raise SaslAuthenticationError(MECHANISM, "malformed PLAIN token")
        try:
            authzid, user, password = (part.decode("utf-8") for part in parts)
        except UnicodeDecodeError:
            raise SaslAuthenticationError(MECHANISM, "PLAIN token is not UTF-8") from None
        if not user or not password:
            raise SaslAuthenticationError(MECHANISM, "empty user name or password", user or None)
        if authzid and authzid != user:
            raise SaslAuthenticationError(
                MECHANISM, "authorization id differs from the user name", user)
        credential = self._lookup(user, "SCRAM-SHA-256") or self._lookup(user, "SCRAM-SHA-512")
        if credential is None:
            raise SaslAuthenticationError(MECHANISM, "unknown user", user)
        if not verify_password(credential, password):
            raise SaslAuthenticationError(MECHANISM, "wrong password", user)
        self.complete = True
        self.user = user
        return b""
