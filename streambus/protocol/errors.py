"""Protocol errors: who broke the Kafka wire protocol, us or the peer.

This module owns the two-sided error tree used by everything under
``streambus.protocol`` (the h11 model):

    ProtocolError
     ├── LocalProtocolError   we were about to send something invalid, e.g. a
     │                        non-ignorable field set on a version that lacks it
     └── RemoteProtocolError  the peer sent bytes we cannot decode: truncation,
                              negative lengths, bad UTF-8, absurd sizes

Decoders of untrusted bytes raise only ``RemoteProtocolError``; the broker answers
it by closing the connection. ``LocalProtocolError`` is a bug in our own code.
It never maps to a Kafka error code by itself.
"""

from __future__ import annotations

__all__ = ["LocalProtocolError", "ProtocolError", "RemoteProtocolError"]


class ProtocolError(Exception):
    """Base class of both protocol error kinds; never raised directly."""

    def __init__(self, message: str) -> None:
        if type(self) is ProtocolError:
            raise TypeError("raise LocalProtocolError or RemoteProtocolError")
        super().__init__(message)


class LocalProtocolError(ProtocolError):
    """We tried to encode something the wire format (or this version) cannot carry."""


class RemoteProtocolError(ProtocolError):
    """The peer's bytes are malformed; the connection should be closed."""
