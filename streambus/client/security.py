"""Client-side TLS and SASL for ``streambus.client``: what a connection must do before its
first request on a secured listener.

This module owns the client settings (Kafka's ``security.protocol``, ``sasl.mechanism``,
``ssl.*`` names in snake_case), wrapping a socket in TLS, and the SASL exchange: SaslHandshake
v1 then SaslAuthenticate with one token (PLAIN) or two (SCRAM, RFC 5802 via ``scramp``),
checking the server's final signature. It never logs the password.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["ClientSecurity", "SECURITY_PROTOCOLS", "SASL_MECHANISMS"]

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class ClientSecurity:
    """How to reach a secured listener.

    Args:
        security_protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
        sasl_mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
        username, password: SASL credentials.
        ssl_cafile: CA bundle to verify the broker (system CAs when None).
        ssl_certfile, ssl_keyfile: client certificate for mTLS.
        ssl_check_hostname: verify the certificate names the host connected to.
    """

    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_check_hostname: bool = True

    def __post_init__(self) -> None:
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise ValueError(f"security protocol must be one of {', '.join(SECURITY_PROTOCOLS)}")
        if self.uses_sasl:
            if self.sasl_mechanism not in SASL_MECHANISMS:
                raise ValueError(f"SASL mechanism must be one of {', '.join(SASL_MECHANISMS)}")
            if not self.username or self.password is None:
                raise ValueError(f"{self.security_protocol} needs a username and a password")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ssl_cafile)
        context.check_hostname = self.ssl_check_hostname
        if self.ssl_certfile:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return context

    def socket_factory(self, base: Callable[..., socket.socket] = socket.create_connection
                       ) -> Callable[[tuple[str, int], float], socket.socket]:
        """``socket.create_connection`` plus a TLS handshake when the protocol needs one."""
        if not self.uses_tls:
            return base
        context = self.ssl_context()

        def connect(address: tuple[str, int], timeout_s: float) -> socket.socket:
            sock = base(address, timeout_s)
            try:
                return context.wrap_socket(sock, server_hostname=address[0])
            except BaseException:
                sock.close()
                raise

        return connect

    def sasl_tokens(self) -> "SaslClient":
        assert self.username is not None and self.password is not None
        return SaslClient(self.sasl_mechanism, self.username, self.password)


class SaslClient:
    """Produces client tokens and checks server tokens for one SASL exchange."""

    def __init__(self, mechanism: str, username: str, password: str) -> None:
        self.mechanism = mechanism
        self._username = username
        self._password = password
        self._scram: Any = None

    def first(self) -> bytes:
        if self.mechanism == "PLAIN":
            return f"\0{self._username}\0{self._password}".encode("utf-8")
        import scramp

        saslname = self._username.replace("=", "=3D").replace(",", "=2C")
        self._scram = scramp.ScramClient([self.mechanism], saslname, self._password)
        return self._scram.get_client_first().encode("utf-8")

    def next(self, server_token: bytes) -> bytes | None:
        """The next client token, or None when the exchange is complete.

        Raises:
            ValueError: the server's token is malformed or its signature is wrong.
        """
        if self._scram is None:
            return None
        import scramp

        try:
            if self._scram.stage is not None and self._scram.stage.name == "get_client_final":
                self._scram.set_server_final(server_token.decode("utf-8"))
                return None
            self._scram.set_server_first(server_token.decode("utf-8"))
            return self._scram.get_client_final().encode("utf-8")
        except (scramp.ScramException, UnicodeDecodeError) as exc:
            raise ValueError(f"SASL {self.mechanism}: bad server message: {exc}") from None
