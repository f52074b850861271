"""TLS for Kafka listeners: server ``ssl.SSLContext`` from the config, reloadable in place.

This module owns building the server context (certificate chain and key, optional client CA
for mTLS, ``min_tls_version``), reloading it on SIGHUP without touching established
connections, and turning a verified client certificate into a principal. It opens no sockets.

Reload works through the SNI callback, which OpenSSL runs on every ClientHello (with or
without a server name): it points the handshake at the newest context. Connections already
established keep the context they started with, so nothing is dropped; a reload that fails
(a bad file) keeps serving the old certificate and reports the problem.

Principals follow Kafka's DefaultKafkaPrincipalBuilder: ``User:`` plus the subject's RFC 2253
distinguished name (``User:CN=alice,OU=eng,O=Acme``), or ``User:ANONYMOUS`` without a client
certificate.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

__all__ = ["ReloadableServerContext", "build_server_context", "principal_from_certificate"]

logger = logging.getLogger(__name__)

_TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
CLIENT_AUTH_MODES = ("none", "requested", "required")
_VERIFY_MODES = {"none": ssl.CERT_NONE, "requested": ssl.CERT_OPTIONAL,
                 "required": ssl.CERT_REQUIRED}
# RFC 2253 attribute names for the OIDs Python reports by long name.
_RDN_NAMES = {
    "commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
    "countryName": "C", "stateOrProvinceName": "ST", "localityName": "L",
    "streetAddress": "STREET", "domainComponent": "DC", "userId": "UID",
    "emailAddress": "EMAILADDRESS",
}


def build_server_context(cert: Path, key: Path, ca: Path | None, *, min_version: str = "1.2",
                         client_auth: str = "none") -> ssl.SSLContext:
    """A server context for ``cert``/``key``; ``ca`` verifies client certificates.

    Raises:
        ssl.SSLError / OSError: a file is missing or does not hold what it should.
        ValueError: client_auth other than none needs ``ca``.
    """
    if client_auth not in _VERIFY_MODES:
        raise ValueError(f"client_auth must be one of {', '.join(CLIENT_AUTH_MODES)}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _TLS_VERSIONS[min_version]
    context.load_cert_chain(str(cert), str(key))
    if client_auth != "none":
        if ca is None:
            raise ValueError("client certificate verification needs tls_ca")
        context.load_verify_locations(cafile=str(ca))
    context.verify_mode = _VERIFY_MODES[client_auth]
    # Kafka clients never resume sessions across brokers; tickets only cost key rotation.
    context.options |= ssl.OP_NO_TICKET
    return context


class ReloadableServerContext:
    """The listener's context; `reload` swaps the certificate for new handshakes only."""

    def __init__(self, cert: Path, key: Path, ca: Path | None, *, min_version: str = "1.2",
                 client_auth: str = "none") -> None:
        self._arguments = (cert, key, ca)
        self._min_version = min_version
        self._client_auth = client_auth
        self.current = self._build()
        # The listener keeps this context forever; its SNI callback hands each new handshake
        # the current one.
        self.listener_context = self._build()
        self.listener_context.sni_callback = self._select
        self.reload_count = 0

    def _build(self) -> ssl.SSLContext:
        cert, key, ca = self._arguments
        return build_server_context(cert, key, ca, min_version=self._min_version,
                                    client_auth=self._client_auth)

    def _select(self, ssl_object: Any, server_name: str | None, context: ssl.SSLContext) -> None:
        if self.current is not context:
            ssl_object.context = self.current
        return None

    def reload(self) -> bool:
        """Re-read the certificate, key and CA. Returns False (keeping the old ones) on error."""
        try:
            self.current = self._build()
        except (OSError, ssl.SSLError, ValueError) as exc:
            logger.error("TLS reload failed, still serving the previous certificate: %s", exc)
            return False
        self.reload_count += 1
        logger.info("TLS certificate reloaded from %s", self._arguments[0])
        return True


def principal_from_certificate(peer_certificate: dict | None) -> str | None:
    """``User:<RFC 2253 subject>`` of a verified peer certificate, or None without one."""
    if not peer_certificate:
        return None
    subject = peer_certificate.get("subject") or ()
    parts = []
    # RFC 2253 writes the most specific RDN first: the reverse of the certificate's order.
    for rdn in reversed(subject):
        parts.append("+".join(f"{_RDN_NAMES.get(name, name)}={_escape(value)}"
                              for name, value in rdn))
    if not parts:
        return None
    return "User:" + ",".join(parts)


def _escape(value: str) -> str:
    out = []
    for index, char in enumerate(value):
        if char in ',+"\\<>;' or (char == "#" and index == 0) or (
                char == " " and index in (0, len(value) - 1)):
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)
