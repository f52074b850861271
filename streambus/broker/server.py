"""The Kafka listener: one asyncio protocol object per TCP connection.

This module owns sockets and ordering.  Bytes go through :class:`FrameDecoder`; each frame is
handed to :class:`~streambus.broker.dispatch.Dispatcher`.  Kafka's broker processes one request
per connection at a time and answers in order (clients pipeline, the broker does not
reorder), so a connection runs synchronous handlers inline from ``data_received`` — no task per
request on the hot path — and parks only when a handler returns an awaitable (long-poll fetch).
Bad input closes this connection only; it is logged once and counted.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import weakref
from typing import TYPE_CHECKING, Any

from streambus.protocol.errors import RemoteProtocolError
from streambus.protocol.framing import NEED_DATA, FrameDecoder, FrameTooLargeError

if TYPE_CHECKING:
    from streambus.broker.dispatch import Dispatcher

__all__ = ["KafkaServer", "CLOSE_CONNECTION"]

logger = logging.getLogger(__name__)

#: Returned by the dispatcher when the connection must be closed (bad input).
CLOSE_CONNECTION = object()

_HTTP_METHOD_PREFIXES = (b"GET ", b"POST", b"PUT ", b"HEAD", b"DELE", b"OPTI", b"PATC", b"CONN")
_connection_ids = itertools.count(1)
_BUFFERED_BYTES_MAX = 16 * 1024 * 1024
_TLS_HANDSHAKE_TIMEOUT_S = 10.0
#: Frames from a client that has not authenticated yet are bounded far below
#: socket.request.max.bytes, as Kafka's sasl.server.max.receive.size (512 KiB) does: nobody may
#: make the broker buffer 100 MB before proving who they are.
_UNAUTHENTICATED_FRAME_BYTES_MAX = 512 * 1024


class KafkaConnection(asyncio.Protocol):
    def __init__(self, server: "KafkaServer") -> None:
        self._server = server
        self._dispatcher = server.dispatcher
        self._decoder = FrameDecoder(server.frame_bytes_max)
        self._transport: asyncio.Transport | None = None
        self._busy = False
        self._writing_paused = False
        self._closed = False
        self.connection_id = next(_connection_ids)
        self.client_host = "?"
        self.pending_task: asyncio.Task | None = None
        security = server.security
        self.listener_name = security.name if security is not None else "PLAINTEXT"
        if security is not None and security.uses_tls:
            # asyncio runs the TLS handshake before connection_made and drops a failed one
            # silently; a protocol object that dies unconnected is how we learn of it.
            self._connected = [False]
            weakref.finalize(self, _tls_handshake_abandoned, server, self._connected)
        #: Who is asking: User:ANONYMOUS, the TLS certificate subject, or the SASL user.
        self.principal = "User:ANONYMOUS"
        #: The SASL session to complete first (SASL listeners only); see security/sasl.
        self.sasl: Any = None

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if hasattr(self, "_connected"):
            self._connected[0] = True
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if peer:
            self.client_host = str(peer[0])
        security = self._server.security
        if security is not None:
            self.principal = security.initial_principal(transport)
            self.sasl = security.new_session(
                f"{self.client_host}:{peer[1]}" if peer and len(peer) > 1 else self.client_host)
            if self.sasl is not None:
                self._decoder.frame_bytes_max = min(self._decoder.frame_bytes_max,
                                                    _UNAUTHENTICATED_FRAME_BYTES_MAX)
        self._server.connections.add(self)
        self._server.metrics_connection_opened()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closed and self._decoder.has_partial_frame():
            # The peer hung up in the middle of a frame: count it like any other bad input.
            self._server.protocol_error(
                "truncated_frame",
                f"connection {self.connection_id} from {self.client_host} closed with "
                f"{self._decoder.buffered_bytes} bytes of an incomplete frame")
        self._closed = True
        self._server.connections.discard(self)
        self._server.metrics_connection_closed()
        if self.pending_task is not None and not self.pending_task.done():
            self.pending_task.cancel()

    def data_received(self, data: bytes) -> None:
        self._server.bytes_in(len(data))
        self._decoder.receive_data(data)
        if not self._busy:
            self._process()
        elif self._decoder.buffered_bytes > _BUFFERED_BYTES_MAX and self._transport is not None:
            # A parked request (long-poll fetch) plus a client that keeps pipelining: stop
            # reading until we catch up rather than buffer without bound.
            self._transport.pause_reading()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if not self._busy:
            self._process()

    # -- processing ---------------------------------------------------------------------------

    def _process(self) -> None:
        """Serve buffered frames in order until one parks, the buffer runs dry, or the
        transport asks us to stop writing (backpressure: stop reading too)."""
        transport = self._transport
        assert transport is not None
        while not self._closed and not self._writing_paused:
            try:
                frame = self._decoder.next_frame()
            except FrameTooLargeError as exc:
                self._protocol_error(self._classify_oversized(), str(exc))
                return
            if frame is NEED_DATA:
                break
            try:
                result = self._dispatcher.handle_frame(self, frame)
            except Exception:  # never let a bug escape into the transport
                logger.exception("connection %d: request failed", self.connection_id)
                self._close()
                return
            if result is None:
                continue
            if result is CLOSE_CONNECTION:
                self._close()
                return
            if isinstance(result, list):
                self._write(result)
                sasl = self.sasl
                if sasl is not None:
                    if sasl.close_after_response:
                        self._close_after_failed_authentication()
                        return
                    if sasl.authenticated and \
                            self._decoder.frame_bytes_max != self._server.frame_bytes_max:
                        self._decoder.frame_bytes_max = self._server.frame_bytes_max
                continue
            # An awaitable: park this connection until it completes.
            self._busy = True
            self.pending_task = asyncio.ensure_future(self._finish(result))
            return
        if self._writing_paused and not self._closed:
            transport.pause_reading()
        elif not self._closed and not transport.is_reading():
            transport.resume_reading()

    async def _finish(self, awaitable: Any) -> None:
        try:
            result = await awaitable
        except asyncio.CancelledError:
            return
        except Exception:  # a handler bug: never let it kill the server
            logger.exception("connection %d: request failed", self.connection_id)
            self._close()
            return
        finally:
            self.pending_task = None
        self._busy = False
        if result is CLOSE_CONNECTION:
            self._close()
            return
        if result is not None:
            self._write(result)
            if self.sasl is not None and self.sasl.close_after_response:
                self._close_after_failed_authentication()
                return
        if not self._closed:
            self._process()

    def _write(self, buffers: list) -> None:
        if self._closed or self._transport is None:
            return
        size = 0
        for buffer in buffers:
            size += len(buffer)
        self._server.bytes_out(size)
        self._transport.writelines(buffers)

    def _classify_oversized(self) -> str:
        head = bytes(self._decoder._buffer[self._decoder._start:self._decoder._start + 4])
        if len(head) == 4 and int.from_bytes(head, "big", signed=True) < 0:
            return "invalid_frame_size"
        if head.startswith(_HTTP_METHOD_PREFIXES):
            return "http_on_kafka_port"
        if head[:1] == b"\x16" and head[1:2] == b"\x03":
            return "tls_on_plaintext_port"
        return "frame_too_large"

    def _protocol_error(self, reason: str, detail: str) -> None:
        self._server.protocol_error(reason, f"connection {self.connection_id} from "
                                            f"{self.client_host}: {detail}")
        self._close()

    def protocol_error(self, reason: str, detail: str) -> None:
        self._protocol_error(reason, detail)

    def _close_after_failed_authentication(self) -> None:
        """A failed SASL step: its answer is the last word. As Kafka
        (``connection.failed.authentication.delay.ms``), the answer goes out now and the
        connection closes after a delay, which slows password guessing and lets the client
        read the error before it sees the connection end."""
        delay_ms = getattr(self._server.security, "failed_authentication_delay_ms", 0)
        transport = self._transport
        if self._closed or transport is None or delay_ms <= 0:
            self._close()
            return
        self._closed = True  # serve nothing more on this connection
        transport.pause_reading()
        asyncio.get_running_loop().call_later(delay_ms / 1000, transport.close)

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._transport is not None:
                self._transport.close()


def _tls_handshake_abandoned(server: "KafkaServer", connected: list[bool]) -> None:
    if not connected[0]:
        server.protocol_error("tls_handshake_failed",
                              f"a connection to TLS listener {server.security.name} ended "
                              "before its handshake completed (a plaintext client, a wrong CA, "
                              "or garbage)")


class KafkaServer:
    """Accepts Kafka connections and tracks them for graceful shutdown."""

    def __init__(self, dispatcher: "Dispatcher", *, frame_bytes_max: int, metrics: Any,
                 security: Any = None) -> None:
        self.dispatcher = dispatcher
        self.frame_bytes_max = frame_bytes_max
        self.metrics = metrics
        #: streambus.security.listener.ListenerSecurity, or None for plain PLAINTEXT.
        self.security = security
        self.connections: set[KafkaConnection] = set()
        self._server: asyncio.base_events.Server | None = None
        self._socket: socket.socket | None = None
        self.bound_port = 0

    def bind(self, host: str, port: int) -> int:
        """Bind the listening socket (so port 0 resolves) without accepting yet."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self.bound_port = sock.getsockname()[1]
        return self.bound_port

    async def start(self) -> None:
        """Start accepting on the socket from :meth:`bind`."""
        assert self._socket is not None, "bind() first"
        loop = asyncio.get_running_loop()
        ssl_context = self.security.ssl_context if self.security is not None else None
        self._server = await loop.create_server(
            lambda: KafkaConnection(self), sock=self._socket, backlog=1024, ssl=ssl_context,
            # A client that stalls mid-handshake must not hold a socket for long.
            ssl_handshake_timeout=_TLS_HANDSHAKE_TIMEOUT_S if ssl_context is not None else None,
        )

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop accepting, let parked requests finish (bounded), then close connections."""
        if self._server is not None:
            self._server.close()
        pending = [c.pending_task for c in self.connections if c.pending_task is not None]
        if pending:
            await asyncio.wait(pending, timeout=grace_s)
        for connection in list(self.connections):
            connection._close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # -- metrics hooks ------------------------------------------------------------------------

    def metrics_connection_opened(self) -> None:
        if self.metrics is not None:
            self.metrics.record_connection_opened()

    def metrics_connection_closed(self) -> None:
        if self.metrics is not None:
            self.metrics.record_connection_closed()

    def bytes_in(self, count: int) -> None:
        if self.metrics is not None:
            self.metrics.record_bytes_in(count)

    def bytes_out(self, count: int) -> None:
        if self.metrics is not None:
            self.metrics.record_bytes_out(count)

    def protocol_error(self, reason: str, detail: str) -> None:
        logger.warning("protocol error (%s): %s; closing connection", reason, detail)
        if self.metrics is not None:
            self.metrics.record_protocol_error(reason)
