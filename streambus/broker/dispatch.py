"""Request dispatch: frame -> header -> version check -> handler -> encoded response.

This module owns the API table (which keys and versions this broker advertises), the special
rules for ApiVersions (KIP-511: a request for a newer version than we support gets an
UNSUPPORTED_VERSION answer with a v0 body and a v0 header, never a closed connection) and the
single place where decode errors turn into a closed connection.  Handlers are small functions in
``broker/handlers/``; each returns a response object, ``None`` (no response, e.g. acks=0) or an
awaitable of one.
"""

from __future__ import annotations

import inspect
import logging
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from streambus.broker.context import RequestContext
from streambus.broker.server import CLOSE_CONNECTION
from streambus.protocol import codec
from streambus.protocol.api_keys import ApiKey
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.errors import ProtocolError
from streambus.protocol.headers import (
    decode_request_header,
    encode_response_header,
    response_header_version,
)
from streambus.protocol.messages import RESPONSES

if TYPE_CHECKING:
    from streambus.broker.node import BrokerNode
    from streambus.broker.server import KafkaConnection

__all__ = ["Dispatcher", "HandlerSpec", "EncodedResponse"]

logger = logging.getLogger(__name__)
_SIZE = struct.Struct(">i")


@dataclass(frozen=True, slots=True)
class EncodedResponse:
    """A response body a handler already encoded (e.g. from a cache) for this version."""

    body: bytes
    error_code: int = 0


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    api_key: int
    min_version: int
    """Lowest advertised version (Kafka 4's KIP-896 floor, or lower where clients need it)."""
    max_version: int
    handle: Callable[[RequestContext, Any], Any]
    name: str


class Dispatcher:
    def __init__(self, node: "BrokerNode", handlers: list[HandlerSpec], metrics: Any) -> None:
        self.node = node
        self.handlers: dict[int, HandlerSpec] = {spec.api_key: spec for spec in handlers}
        self.metrics = metrics
        capture = os.environ.get("STREAMBUS_CAPTURE_FRAMES_DIR")
        self._capture_dir = Path(capture) if capture else None

    def handle_frame(self, connection: "KafkaConnection", frame: memoryview) -> Any:
        started = time.perf_counter()
        sasl = connection.sasl
        if sasl is not None and sasl.raw_tokens:
            return self._raw_sasl_token(connection, frame)
        try:
            header, body_offset = decode_request_header(frame)
        except ProtocolError as exc:
            connection.protocol_error("malformed_header", f"bad request header: {exc}")
            return None
        api_key = header.api_key
        version = header.api_version
        spec = self.handlers.get(api_key)
        if spec is None:
            connection.protocol_error(
                "unknown_api_key", f"unsupported API key {api_key} (version {version})"
            )
            return None
        if sasl is not None and not sasl.allows(api_key):
            return self._refuse_before_authentication(connection, spec, header, started)
        if version > spec.max_version or version < spec.min_version:
            return self._unsupported_version(connection, spec, header, started)
        if self._capture_dir is not None and api_key != ApiKey.SASL_AUTHENTICATE:
            self._capture(header, frame)  # never SASL tokens: PLAIN carries the password
        try:
            request = codec.decode_request(api_key, version, frame, body_offset)
        except ProtocolError as exc:
            connection.protocol_error(
                "malformed_body", f"{spec.name} v{version} request could not be decoded: {exc}"
            )
            return None
        context = RequestContext(
            header=header,
            api_version=version,
            client_host=connection.client_host,
            node=self.node,
            connection_id=connection.connection_id,
            principal=connection.principal if sasl is None else (sasl.principal or ""),
            listener_name=connection.listener_name,
            sasl=sasl,
        )
        try:
            response = spec.handle(context, request)
        except Exception:
            logger.exception("%s v%d handler failed", spec.name, version)
            response = self._error_response(api_key, ErrorCode.UNKNOWN_SERVER_ERROR)
            if response is None:
                return CLOSE_CONNECTION
        if response is None or response is CLOSE_CONNECTION:
            self._observe(spec, started, 0)
            return response
        if inspect.isawaitable(response):
            return self._finish_async(spec, header, response, started)
        return self._encode(spec, header, response, started)

    async def _finish_async(self, spec: HandlerSpec, header: Any, awaitable: Any,
                            started: float) -> Any:
        try:
            response = await awaitable
        except Exception:
            logger.exception("%s v%d handler failed", spec.name, header.api_version)
            response = self._error_response(spec.api_key, ErrorCode.UNKNOWN_SERVER_ERROR)
            if response is None:
                return CLOSE_CONNECTION
        if response is None:
            return None
        return self._encode(spec, header, response, started)

    def _encode(self, spec: HandlerSpec, header: Any, response: Any, started: float) -> list:
        version = header.api_version
        try:
            if type(response) is EncodedResponse:
                parts = [response.body]
            else:
                # Record batches stay separate buffers (no copy into the response body); the
                # transport writes the list with writelines.
                parts = codec.encode_parts(response, version)
        except Exception:
            # A handler built a response this version cannot carry: our bug, not the
            # client's.  Close this one connection rather than send garbage.
            logger.exception("%s v%d response could not be encoded", spec.name, version)
            if self.metrics is not None:
                self.metrics.observe_request(spec.name, time.perf_counter() - started,
                                             (ErrorCode.UNKNOWN_SERVER_ERROR,))
            return CLOSE_CONNECTION
        head = encode_response_header(
            header.correlation_id, response_header_version(spec.api_key, version)
        )
        self._observe(spec, started, getattr(response, "error_code", 0))
        size = len(head)
        for part in parts:
            size += len(part)
        parts.insert(0, _SIZE.pack(size) + head)
        return parts

    def _observe(self, spec: HandlerSpec, started: float, error_code: int) -> None:
        if self.metrics is not None:
            self.metrics.observe_request(
                spec.name, time.perf_counter() - started,
                (ErrorCode.for_code(error_code),) if error_code else (),
            )

    # -- SASL (KIP-43, KIP-152, KIP-368) -------------------------------------------------------

    def _refuse_before_authentication(self, connection: "KafkaConnection", spec: HandlerSpec,
                                      header: Any, started: float) -> Any:
        """A request the connection's SASL state does not allow: close, after an
        ILLEGAL_SASL_STATE answer where Kafka sends one (mid-authentication)."""
        sasl = connection.sasl
        if sasl.authenticated:  # the KIP-368 session expired
            connection.protocol_error("sasl_session_expired",
                                      f"{spec.name} after the SASL session of "
                                      f"{connection.principal} expired")
            return None
        mid_authentication = sasl.state.value == "authenticate"
        message = sasl.illegal_request(spec.api_key)
        if self.metrics is not None:
            self.metrics.record_protocol_error("sasl_illegal_state")
        logger.info("connection %d from %s: %s; closing", connection.connection_id,
                    connection.client_host, message)
        response = self._error_response(spec.api_key, ErrorCode.ILLEGAL_SASL_STATE)
        valid_min, valid_max = RESPONSES[spec.api_key].VALID_VERSIONS
        if (mid_authentication or spec.api_key == ApiKey.SASL_AUTHENTICATE) \
                and response is not None and valid_min <= header.api_version <= valid_max \
                and spec.min_version <= header.api_version <= spec.max_version:
            if hasattr(response, "error_message"):
                response.error_message = message
            return self._encode(spec, header, response, started)
        return CLOSE_CONNECTION

    def _raw_sasl_token(self, connection: "KafkaConnection", frame: memoryview) -> Any:
        """After SaslHandshake v0 the client sends bare size-prefixed tokens (no Kafka header)
        and reads bare size-prefixed answers; a failure can only close the connection."""
        from streambus.security.sasl import SaslAuthenticationError

        try:
            answer = connection.sasl.receive_raw_token(bytes(frame))
        except SaslAuthenticationError:
            return CLOSE_CONNECTION
        return [_SIZE.pack(len(answer)), answer]

    # -- error answers ------------------------------------------------------------------------

    def _unsupported_version(self, connection: "KafkaConnection", spec: HandlerSpec,
                             header: Any, started: float) -> Any:
        version = header.api_version
        if spec.api_key == ApiKey.API_VERSIONS:
            # KIP-511: answer a too-new ApiVersions with error 35 and a v0 body/header so the
            # client can retry with a version we both speak.
            from streambus.broker.handlers.api_versions import unsupported_version_response

            body = codec.encode_response(spec.api_key, 0, unsupported_version_response(self))
            head = encode_response_header(header.correlation_id, 0)
            self._observe(spec, started, ErrorCode.UNSUPPORTED_VERSION)
            if self.metrics is not None:
                self.metrics.record_protocol_error("unsupported_version")
            return [_SIZE.pack(len(head) + len(body)) + head, body]
        valid_min, valid_max = RESPONSES[spec.api_key].VALID_VERSIONS
        response = self._error_response(spec.api_key, ErrorCode.UNSUPPORTED_VERSION)
        if response is not None and valid_min <= version <= valid_max:
            logger.info("%s v%d is not supported (advertised %d-%d); answering "
                        "UNSUPPORTED_VERSION", spec.name, version, spec.min_version,
                        spec.max_version)
            if self.metrics is not None:
                self.metrics.record_protocol_error("unsupported_version")
            return self._encode(spec, header, response, started)
        connection.protocol_error(
            "unsupported_version",
            f"{spec.name} v{version} is outside the supported range "
            f"{spec.min_version}-{spec.max_version}",
        )
        return None

    @staticmethod
    def _error_response(api_key: int, error_code: int) -> Any:
        """A response carrying ``error_code`` at the top level, if the API has such a field."""
        cls = RESPONSES[api_key]
        response = cls()
        if not hasattr(response, "error_code"):
            return None
        response.error_code = int(error_code)
        return response

    def _capture(self, header: Any, frame: memoryview) -> None:
        """Dump the first frame of each (api, version, client) for golden-byte tests."""
        assert self._capture_dir is not None
        client = "".join(c if c.isalnum() or c in "-_." else "_" for c in (header.client_id or "none"))
        name = f"{ApiKey(header.api_key).name.lower()}_v{header.api_version}_{client}.bin"
        path = self._capture_dir / name
        if not path.exists():
            self._capture_dir.mkdir(parents=True, exist_ok=True)
            path.write_bytes(bytes(frame))
