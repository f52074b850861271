"""One blocking Kafka connection: framing, correlation ids and ApiVersions negotiation.

This module owns the client side of a single TCP connection to one broker: the 4-byte
big-endian size prefix, request headers, matching each response to its request by correlation
id, and choosing per API the highest version both sides support (KIP-35/KIP-511). Every socket
operation runs under a deadline. It never decides what a request means (that is
``streambus.client.admin``) and never retries: a failure closes the connection and raises.

Wire layout of one exchange::

    request  = int32 size | request header (v1 or v2) | request body
    response = int32 size | int32 correlation_id | [tagged fields, header v1] | response body

ApiVersions is answered with response header v0 at every version (KIP-511), and a broker that
does not know our ApiVersions version answers with error UNSUPPORTED_VERSION and a v0 body
listing what it does support; we then retry at the highest version it offers (or v0).
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import streambus
from streambus.client.errors import (
    KafkaApiError,
    KafkaConnectionError,
    KafkaProtocolError,
    KafkaTimeoutError,
    UnsupportedVersionError,
)
from streambus.protocol import codec
from streambus.protocol.api_keys import ApiKey
from streambus.protocol.errors import ProtocolError
from streambus.protocol.headers import (
    decode_response_header,
    encode_request_header,
    response_header_version,
)
from streambus.protocol.messages.api_versions import ApiVersionsRequest
from streambus.protocol.messages.sasl_authenticate import SaslAuthenticateRequest
from streambus.protocol.messages.sasl_handshake import SaslHandshakeRequest

if TYPE_CHECKING:
    from streambus.client.security import ClientSecurity

__all__ = [
    "CLIENT_VERSIONS",
    "RESPONSE_BYTES_MAX",
    "BrokerConnection",
    "parse_bootstrap_servers",
]

#: Versions this client knows how to build and read, per API. Later admin commands add rows.
CLIENT_VERSIONS: Mapping[int, tuple[int, int]] = {
    ApiKey.API_VERSIONS: (0, 3),
    ApiKey.METADATA: (0, 12),
    ApiKey.DESCRIBE_CLUSTER: (0, 1),
    ApiKey.DESCRIBE_QUORUM: (0, 2),
    ApiKey.DESCRIBE_TRANSACTIONS: (0, 0),
    ApiKey.LIST_TRANSACTIONS: (0, 1),
    ApiKey.DESCRIBE_PRODUCERS: (0, 0),
    ApiKey.WRITE_TXN_MARKERS: (1, 1),
    ApiKey.CREATE_TOPICS: (0, 7),
    ApiKey.DELETE_TOPICS: (0, 6),
    ApiKey.DESCRIBE_CONFIGS: (0, 4),
    ApiKey.INCREMENTAL_ALTER_CONFIGS: (0, 1),
    ApiKey.CREATE_PARTITIONS: (0, 3),
    ApiKey.DESCRIBE_LOG_DIRS: (1, 4),
    ApiKey.SASL_HANDSHAKE: (1, 1),
    ApiKey.SASL_AUTHENTICATE: (0, 1),
    ApiKey.DESCRIBE_ACLS: (1, 1),
    ApiKey.CREATE_ACLS: (1, 1),
    ApiKey.DELETE_ACLS: (1, 1),
    ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS: (0, 0),
    ApiKey.ALTER_USER_SCRAM_CREDENTIALS: (0, 0),
    ApiKey.LIST_GROUPS: (0, 5),
    ApiKey.DESCRIBE_GROUPS: (0, 5),
    ApiKey.CONSUMER_GROUP_DESCRIBE: (0, 0),
    ApiKey.DELETE_GROUPS: (0, 2),
    ApiKey.OFFSET_FETCH: (1, 8),
    ApiKey.OFFSET_COMMIT: (2, 8),
    ApiKey.LIST_OFFSETS: (1, 7),
}

#: The largest response accepted; a bigger size prefix means a confused or hostile peer.
#: Kafka's clients bound receives the same way (``NetworkReceive`` maxSize).
RESPONSE_BYTES_MAX = 100 * 1024 * 1024

_API_VERSIONS_PREFERRED = 3
_UNSUPPORTED_VERSION = 35
_SIZE = struct.Struct(">i")
_ERROR_CODE = struct.Struct(">h")

SocketFactory = Callable[[tuple[str, int], float], socket.socket]


def parse_bootstrap_servers(text: str) -> list[tuple[str, int]]:
    """Split ``host:port[,host:port...]`` into (host, port) pairs.

    IPv6 literals are written in brackets: ``[::1]:9092``.

    Raises:
        ValueError: an entry has no port or a port that is not an integer in 1..65535.
    """
    servers = []
    for entry in text.split(","):
        entry = entry.strip()
        if not entry:
            continue
        host, sep, port_text = entry.rpartition(":")
        if not sep or not host:
            raise ValueError(f"bootstrap server {entry!r} is not HOST:PORT")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        try:
            port = int(port_text)
        except ValueError:
            raise ValueError(f"bootstrap server {entry!r} has a non-numeric port") from None
        if not 1 <= port <= 65535:
            raise ValueError(f"bootstrap server {entry!r} has a port outside 1..65535")
        servers.append((host, port))
    if not servers:
        raise ValueError("no bootstrap server given")
    return servers


def _api_name(api_key: int) -> str:
    try:
        return ApiKey(api_key).name
    except ValueError:
        return f"api key {api_key}"


class BrokerConnection:
    """A blocking connection to one broker, negotiated and ready for requests.

    Use :meth:`open`; the constructor only wraps an already connected socket.

    Args:
        sock: a connected socket.
        address: (host, port) it is connected to, for messages.
        timeout_ms: deadline for each request (send plus receive).
        client_id: the request header ``client_id``.
    """

    def __init__(self, sock: socket.socket, address: tuple[str, int], *, timeout_ms: int,
                 client_id: str) -> None:
        self.address = address
        self.timeout_ms = timeout_ms
        self.client_id = client_id
        self.broker_versions: dict[int, tuple[int, int]] = {}
        self._sock: socket.socket | None = sock
        self._correlation_id = 0

    @classmethod
    def open(cls, address: tuple[str, int], *, timeout_ms: int, client_id: str = "streambus-cli",
             socket_factory: SocketFactory = socket.create_connection,
             security: "ClientSecurity | None" = None) -> "BrokerConnection":
        """Connect to ``address``, negotiate API versions and, on a SASL listener,
        authenticate (``security`` also wraps the socket in TLS for SSL and SASL_SSL).

        Raises:
            KafkaConnectionError: the TCP connect failed.
            KafkaTimeoutError: connect or negotiation ran past ``timeout_ms``.
            KafkaProtocolError / KafkaApiError: the ApiVersions exchange failed.
        """
        host, port = address
        if security is not None:
            socket_factory = security.socket_factory(socket_factory)
        try:
            sock = socket_factory((host, port), timeout_ms / 1000)
        except TimeoutError:
            raise KafkaTimeoutError(f"connect to {host}:{port} timed out after {timeout_ms} ms") from None
        except OSError as exc:
            raise KafkaConnectionError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
        connection = cls(sock, address, timeout_ms=timeout_ms, client_id=client_id)
        try:
            connection.negotiate_api_versions()
            if security is not None and security.uses_sasl:
                connection.authenticate(security)
        except BaseException:
            connection.close()
            raise
        return connection

    # -- public API ---------------------------------------------------------------------

    def negotiate_api_versions(self) -> dict[int, tuple[int, int]]:
        """Send ApiVersions (v3, falling back as KIP-511 says) and remember the broker's ranges.

        Returns:
            api key -> (min_version, max_version) as advertised by the broker.

        Raises:
            KafkaApiError: the broker answered with an error other than UNSUPPORTED_VERSION.
        """
        version = _API_VERSIONS_PREFERRED
        for _ in range(2):  # at most one fallback
            request = ApiVersionsRequest(client_software_name="streambus-cli",
                                         client_software_version=streambus.__version__)
            response = self._exchange(ApiKey.API_VERSIONS, version, request)
            if response.error_code == _UNSUPPORTED_VERSION and version > 0:
                offered = [a.max_version for a in response.api_keys if a.api_key == ApiKey.API_VERSIONS]
                version = min(offered[0], version - 1) if offered else 0
                continue
            if response.error_code != 0:
                raise KafkaApiError(response.error_code)
            self.broker_versions = {
                a.api_key: (a.min_version, a.max_version) for a in response.api_keys
            }
            return self.broker_versions
        raise KafkaApiError(_UNSUPPORTED_VERSION, "the broker rejected every ApiVersions version")

    def authenticate(self, security: "ClientSecurity") -> None:
        """SaslHandshake v1 + SaslAuthenticate until the mechanism completes (KIP-152).

        Raises:
            KafkaApiError: UNSUPPORTED_SASL_MECHANISM, SASL_AUTHENTICATION_FAILED (with the
                broker's message) and the like.
            KafkaProtocolError: the server's SASL answer is malformed or not signed right.
        """
        handshake = self.send(SaslHandshakeRequest(mechanism=security.sasl_mechanism))
        if handshake.error_code != 0:
            raise KafkaApiError(handshake.error_code,
                                f"the broker offers {', '.join(handshake.mechanisms)}")
        client = security.sasl_tokens()
        token: bytes | None = client.first()
        while token is not None:
            response = self.send(SaslAuthenticateRequest(auth_bytes=token))
            if response.error_code != 0:
                raise KafkaApiError(response.error_code, response.error_message)
            try:
                token = client.next(bytes(response.auth_bytes))
            except ValueError as exc:
                raise KafkaProtocolError(str(exc)) from None

    def version_for(self, api_key: int) -> int:
        """The highest version of ``api_key`` that both this client and the broker support.

        Raises:
            UnsupportedVersionError: the ranges do not overlap (or the broker lacks the API).
        """
        ours = CLIENT_VERSIONS.get(api_key)
        if ours is None:
            raise UnsupportedVersionError(_api_name(api_key), (0, -1), self.broker_versions.get(api_key))
        theirs = self.broker_versions.get(api_key)
        if theirs is None or theirs[0] > ours[1] or theirs[1] < ours[0]:
            raise UnsupportedVersionError(_api_name(api_key), ours, theirs)
        return min(ours[1], theirs[1])

    def send(self, request: Any, version: int | None = None) -> Any:
        """Send ``request`` and return the decoded response.

        Args:
            request: a generated request dataclass; its ``API_KEY`` picks the API.
            version: the version to use; the negotiated one when None.

        Raises:
            KafkaConnectionError, KafkaTimeoutError, KafkaProtocolError, UnsupportedVersionError.
        """
        api_key = type(request).API_KEY
        if version is None:
            version = self.version_for(api_key)
        return self._exchange(api_key, version, request)

    def close(self) -> None:
        """Close the socket; safe to call twice."""
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def __enter__(self) -> "BrokerConnection":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------

    def _exchange(self, api_key: int, version: int, request: Any) -> Any:
        if self._sock is None:
            raise KafkaConnectionError(f"connection to {self._where()} is closed")
        deadline = time.monotonic() + self.timeout_ms / 1000
        self._correlation_id = (self._correlation_id + 1) & 0x7FFFFFFF
        correlation_id = self._correlation_id
        header = encode_request_header(api_key, version, correlation_id, self.client_id)
        body = codec.encode_request(api_key, version, request)
        try:
            self._send_all(_SIZE.pack(len(header) + len(body)) + header + body, deadline)
            frame = self._receive_frame(deadline)
            return self._decode(api_key, version, correlation_id, frame)
        except BaseException:
            # After any failure the stream position is unknown; never reuse it.
            self.close()
            raise

    def _decode(self, api_key: int, version: int, correlation_id: int, frame: bytes) -> Any:
        try:
            # KIP-511: ApiVersions responses always use header v0.
            header_version = 0 if api_key == ApiKey.API_VERSIONS else response_header_version(api_key, version)
            received_id, offset = decode_response_header(frame, header_version)
            if received_id != correlation_id:
                raise KafkaProtocolError(
                    f"{self._where()} answered correlation id {received_id}, expected {correlation_id}"
                )
            if api_key == ApiKey.API_VERSIONS:
                # An UNSUPPORTED_VERSION answer carries a v0 body whatever version we asked for.
                (error_code,) = _ERROR_CODE.unpack_from(frame, offset)
                if error_code == _UNSUPPORTED_VERSION:
                    version = 0
            return codec.decode_response(api_key, version, frame, offset)
        except (ProtocolError, struct.error) as exc:
            raise KafkaProtocolError(
                f"cannot decode {_api_name(api_key)} v{version} response from {self._where()}: {exc}"
            ) from None

    def _send_all(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            sock = self._socket_for(deadline, "send")
            try:
                sent = sock.send(view)
            except TimeoutError:
                raise self._timeout("send") from None
            except OSError as exc:
                raise KafkaConnectionError(f"send to {self._where()} failed: {exc}") from None
            view = view[sent:]

    def _receive_frame(self, deadline: float) -> bytes:
        (size,) = _SIZE.unpack(self._receive_exactly(4, deadline))
        if size < 4 or size > RESPONSE_BYTES_MAX:
            raise KafkaProtocolError(f"{self._where()} sent a response size of {size} bytes")
        return self._receive_exactly(size, deadline)

    def _receive_exactly(self, size: int, deadline: float) -> bytes:
        chunks = bytearray()
        while len(chunks) < size:
            sock = self._socket_for(deadline, "receive")
            try:
                chunk = sock.recv(min(size - len(chunks), 1 << 20))
            except TimeoutError:
                raise self._timeout("receive") from None
            except OSError as exc:
                raise KafkaConnectionError(f"receive from {self._where()} failed: {exc}") from None
            if not chunk:
                raise KafkaConnectionError(f"{self._where()} closed the connection")
            chunks += chunk
        return bytes(chunks)

    def _socket_for(self, deadline: float, operation: str) -> socket.socket:
        remaining_s = deadline - time.monotonic()
        if remaining_s <= 0:
            raise self._timeout(operation)
        assert self._sock is not None
        self._sock.settimeout(remaining_s)
        return self._sock

    def _timeout(self, operation: str) -> KafkaTimeoutError:
        return KafkaTimeoutError(f"{operation} with {self._where()} timed out after {self.timeout_ms} ms")

    def _where(self) -> str:
        host, port = self.address
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
