"""SASL server mechanisms (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and the per-connection
authentication state machine of KIP-43/KIP-152/KIP-368 (``session``)."""

from streambus.security.sasl.mechanism import (
    MECHANISMS,
    CredentialLookup,
    SaslAuthenticationError,
    SaslServer,
    create_server,
)

__all__ = ["MECHANISMS", "CredentialLookup", "SaslAuthenticationError", "SaslServer",
           "create_server"]
