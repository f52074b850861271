"""SASL SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) via ``scramp``.

Two client tokens: client-first (``n,,n=user,r=nonce``) is answered with server-first
(``r=nonce,s=salt,i=iterations``), client-final (with the proof) with server-final
(``v=signature``). User names arrive as RFC 5802 saslnames (``=2C`` for ',' and ``=3D`` for '=')
and are unescaped as Kafka's ScramFormatter.username does. Channel binding is not offered (Kafka
does not offer it either), and Kafka's ``tokenauth`` extension (delegation tokens) is refused.
"""

from __future__ import annotations

import scramp

from streambus.security.sasl.mechanism import CredentialLookup, SaslAuthenticationError

__all__ = ["ScramServer"]

TOKEN_BYTES_MAX = 4096


class _UnknownUser(Exception):
    pass


def _unescape(saslname: str) -> str:
    return saslname.replace("=2C", ",").replace("=3D", "=")


class ScramServer:
    def __init__(self, mechanism: str, lookup: CredentialLookup) -> None:
        assert mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"), mechanism
        self.mechanism = mechanism
        self._lookup = lookup
        self._server = scramp.ScramMechanism(mechanism).make_server(self._auth_info)
        self._step = 0
        self._name: str | None = None
        self._unknown_user = False
        self.complete = False
        self.user: str | None = None

    def _auth_info(self, saslname: str) -> tuple[bytes, bytes, bytes, int]:
        self._name = _unescape(saslname)
        credential = self._lookup(self._name, self.mechanism)
        if credential is None:
            self._unknown_user = True
            raise _UnknownUser()
        return credential.salt, credential.stored_key, credential.server_key, credential.iterations

    def evaluate(self, token: bytes) -> bytes:
        if len(token) > TOKEN_BYTES_MAX:
            raise SaslAuthenticationError(self.mechanism, "token too large", self._name)
        try:
            text = bytes(token).decode("utf-8")
        except UnicodeDecodeError:
            raise SaslAuthenticationError(self.mechanism, "token is not UTF-8",
                                          self._name) from None
        if self._step == 0:
            return self._first(text)
        if self._step == 1:
            return self._final(text)
        raise SaslAuthenticationError(self.mechanism, "token after completion", self._name)

    def _first(self, text: str) -> bytes:
        self._step = 1
        if "tokenauth=" in text.split(",r=", 1)[0]:
            raise SaslAuthenticationError(self.mechanism, "delegation tokens are not supported")
        try:
            self._server.set_client_first(text)
            return self._server.get_server_first().encode("utf-8")
        except _UnknownUser:
            raise SaslAuthenticationError(self.mechanism, "unknown user", self._name) from None
        except (scramp.ScramException, ValueError, KeyError, IndexError, TypeError) as exc:
            # scramp wraps what the credential lookup raised.
            reason = "unknown user" if self._unknown_user else f"bad client-first message: {exc}"
            raise SaslAuthenticationError(self.mechanism, reason, self._name) from None

    def _final(self, text: str) -> bytes:
        self._step = 2
        self._accept_nonce_suffix(text)
        try:
            self._server.set_client_final(text)
            answer = self._server.get_server_final().encode("utf-8")
        except scramp.ScramException as exc:
            reason = "wrong password" if "proof" in str(exc).lower() else f"bad client-final: {exc}"
            raise SaslAuthenticationError(self.mechanism, reason, self._name) from None
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise SaslAuthenticationError(self.mechanism, f"bad client-final message: {exc}",
                                          self._name) from None
        self.complete = True
        self.user = self._name
        return answer

    def _accept_nonce_suffix(self, text: str) -> None:
        """Kafka's ScramSaslServer only checks that the client-final nonce *ends with* the
        server-first nonce, and librdkafka 2.0.x (kcat on Debian) relies on it: it sends the
        client nonce twice. The proof still covers the message exactly as sent."""
        expected = str(self._server.nonce)
        for part in text.split(","):
            if part.startswith("r="):
                sent = part[2:]
                if sent != expected and sent.endswith(expected):
                    try:
                        self._server.nonce = type(self._server.nonce)(sent)
                    except scramp.ScramException:
                        pass  # not a valid nonce: the normal check refuses it
                return
