"""Errors raised by the synchronous client, and the one place Kafka error codes become names.

This module owns the client's exception tree and the mapping from a wire ``error_code`` to
Kafka's error name and default message. It never does I/O.

    ClientError
     ├── KafkaConnectionError     no broker reachable, socket error, peer closed the connection
     │    └── KafkaTimeoutError   a socket operation ran past its deadline
     ├── KafkaProtocolError       the broker's bytes could not be decoded, or the correlation id
     │                            of a response did not match its request
     ├── UnsupportedVersionError  the broker and this client share no version of an API
     └── KafkaApiError            the broker answered with a non-zero error code

Callers (the CLI) map the first branch to "cannot reach the cluster" and ``KafkaApiError`` to
"the cluster said no", printing ``error_name: error_message``.
"""

from __future__ import annotations

from streambus.protocol.error_codes import ErrorCode

__all__ = [
    "ClientError",
    "KafkaApiError",
    "KafkaConnectionError",
    "KafkaProtocolError",
    "KafkaTimeoutError",
    "UnsupportedVersionError",
    "error_name",
    "error_text",
]


def _error_code_enum(code: int) -> ErrorCode | None:
    try:
        return ErrorCode(code)
    except ValueError:
        return None


def error_name(code: int) -> str:
    """Kafka's name for ``code``, e.g. 36 -> ``TOPIC_ALREADY_EXISTS``.

    Codes this build does not know are shown as ``UNKNOWN_SERVER_ERROR(code)``, following
    Kafka's ``Errors.forCode``, which maps unknown codes to UNKNOWN_SERVER_ERROR.
    """
    member = _error_code_enum(code)
    if member is None:
        return f"UNKNOWN_SERVER_ERROR({code})"
    return member.name


def error_text(code: int) -> str:
    """Kafka's default message for ``code`` (used when the broker sent no error_message)."""
    member = _error_code_enum(code)
    return (ErrorCode.UNKNOWN_SERVER_ERROR if member is None else member).message


class ClientError(Exception):
    """Base class of everything this client raises on purpose."""


class KafkaConnectionError(ClientError):
    """No connection could be made or kept to any of the given brokers."""


class KafkaTimeoutError(KafkaConnectionError):
    """A connect, send or receive did not finish before its deadline."""


class KafkaProtocolError(ClientError):
    """The broker sent bytes this client cannot decode; the connection is closed."""


class UnsupportedVersionError(ClientError):
    """The broker does not offer any version of an API that this client implements."""

    def __init__(self, api_name: str, client_versions: tuple[int, int],
                 broker_versions: tuple[int, int] | None) -> None:
        if broker_versions is None:
            detail = "the broker does not support it"
        else:
            detail = f"the broker supports v{broker_versions[0]}-v{broker_versions[1]}"
        super().__init__(
            f"UNSUPPORTED_VERSION: {api_name}: this client implements "
            f"v{client_versions[0]}-v{client_versions[1]}, {detail}"
        )
        self.api_name = api_name
        self.client_versions = client_versions
        self.broker_versions = broker_versions


class KafkaApiError(ClientError):
    """The broker answered with a non-zero ``error_code``.

    Args:
        error_code: the wire code.
        error_message: the broker's ``error_message`` if it sent one; Kafka's default
            message for the code otherwise.
        resource: the topic (or other resource) the error is about, if any.
    """

    def __init__(self, error_code: int, error_message: str | None = None,
                 resource: str | None = None) -> None:
        self.error_code = error_code
        self.error_name = error_name(error_code)
        self.error_message = error_message or error_text(error_code)
        self.resource = resource
        super().__init__(f"{self.error_name}: {self.error_message}")
