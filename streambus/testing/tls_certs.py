"""Throwaway X.509 material for tests: a self-signed CA, a server and client certificates.

Test-only: needs the ``cryptography`` package (a test extra), never imported by the broker.
Keys are EC P-256 (fast to generate); certificates are valid for a day.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CertificateFiles", "make_tls_files"]


@dataclass(frozen=True)
class CertificateFiles:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _name(common_name: str, organization: str = "StreamBus Test"):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _write(directory: Path, stem: str, certificate, key) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization

    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def _issue(subject, issuer, public_key, signing_key, *, ca: bool, hosts=(), client=False):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if hosts:
        names = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if not ca:
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def make_tls_files(directory: Path, *, server_hosts=("127.0.0.1", "localhost"),
                   client_name: str = "alice", server_name: str = "streambus-broker"
                   ) -> CertificateFiles:
    """Write ca.crt/.key, server.crt/.key (for ``server_hosts``) and client.crt/.key."""
    from cryptography.hazmat.primitives.asymmetric import ec

    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("StreamBus Test CA")
    ca_cert = _issue(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _issue(_name(server_name), ca_name, server_key.public_key(), ca_key, ca=False,
                         hosts=server_hosts)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = _issue(_name(client_name), ca_name, client_key.public_key(), ca_key,
                         ca=False, client=True)
    ca_paths = _write(directory, "ca", ca_cert, ca_key)
    server_paths = _write(directory, "server", server_cert, server_key)
    client_paths = _write(directory, "client", client_cert, client_key)
    return CertificateFiles(*ca_paths, *server_paths, *client_paths)
