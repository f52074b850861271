"""The controller listener and the client connections between controllers, over asyncio.

This module owns sockets for the metadata quorum: :class:`ControllerListener` (the
``--controller-listen`` TCP server speaking Kafka framing), :class:`PeerClient` (outbound
connections with reconnect and back-pressure) and :class:`RaftChannel`, which carries a
:class:`~streambus.raft.node.RaftNode`'s messages: core requests go out as Kafka requests and
their responses come back as core responses (``raft/wire.py`` maps the fields); requests
arriving from peers are handed to the node with a fresh ``sequence`` and the node's answer,
which repeats it, is written back under the request's correlation id.

Requests on one connection are answered in whatever order they complete (a parked Fetch must
not hold up a Vote): both ends are StreamBus controllers, which match responses by correlation
id.  Any other API (forwarded admin requests, broker registration, DescribeQuorum) goes to a
handler table the broker supplies; this module never imports ``streambus.broker``.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import struct
from collections import deque
from dataclasses import replace
from typing import Any, Awaitable, Callable

from streambus.protocol import codec
from streambus.protocol.api_keys import ApiKey
from streambus.protocol.errors import ProtocolError, RemoteProtocolError
from streambus.protocol.framing import NEED_DATA, FrameDecoder
from streambus.protocol.headers import (
    RequestHeader,
    decode_request_header,
    decode_response_header,
    encode_request_header,
    encode_response_header,
    request_header_version,
    response_header_version,
)
from streambus.protocol.primitives import decode_uvarint
from streambus.raft import wire
from streambus.raft.messages import Envelope, Message

__all__ = ["ControllerListener", "PeerClient", "RaftChannel", "RequestFailed"]

logger = logging.getLogger(__name__)

_SIZE = struct.Struct(">i")
#: Requests queued for a peer we are still connecting to; older ones are dropped first.
QUEUED_REQUESTS_MAX = 256
#: A peer that stops reading (SIGSTOP) must not make us buffer without bound.
WRITE_BUFFER_BYTES_MAX = 8 * 1024 * 1024
RECONNECT_BACKOFF_S = 0.2
CONNECT_TIMEOUT_S = 2.0
INBOUND_PENDING_MAX = 10_000
FRAME_BYTES_MAX = 100 * 1024 * 1024
CLIENT_ID = "streambus-controller"

Reply = Callable[[Any], None]
ResponseCallback = Callable[[Any, BaseException | None], None]


class RequestFailed(ConnectionError):
    """No response: the connection failed, was closed, or the request timed out."""


def _request_header_version(api_key: int, version: int) -> int:
    # Vote v2 (KIP-996) is newer than the generated header table; it is flexible.
    if api_key == ApiKey.VOTE:
        return 2
    return request_header_version(api_key, version)


def _response_header_version(api_key: int, version: int) -> int:
    if api_key == ApiKey.VOTE:
        return 1
    return response_header_version(api_key, version)


def _encode_request_header(api_key: int, version: int, correlation_id: int) -> bytes:
    if api_key == ApiKey.VOTE and version == 2:
        header = bytearray(encode_request_header(api_key, 1, correlation_id, CLIENT_ID))
        struct.pack_into(">h", header, 2, version)
        return bytes(header)
    return encode_request_header(api_key, version, correlation_id, CLIENT_ID)


def _decode_request_header(frame: memoryview) -> tuple[RequestHeader, int]:
    header, offset = decode_request_header(frame)
    if header.api_key == ApiKey.VOTE and header.api_version == 2 and header.header_version < 2:
        count, offset = decode_uvarint(frame, offset)
        if count:
            raise RemoteProtocolError("tagged fields in a Vote v2 request header are unsupported")
    return header, offset


def _frame(head: bytes, body: bytes) -> bytes:
    return _SIZE.pack(len(head) + len(body)) + head + body


# ============================================================================ client side


class _ClientConnection(asyncio.Protocol):
    def __init__(self, on_lost: Callable[["_ClientConnection"], None]) -> None:
        self._on_lost = on_lost
        self._decoder = FrameDecoder(FRAME_BYTES_MAX)
        self._transport: asyncio.Transport | None = None
        self._pending: dict[int, tuple[int, int, type, ResponseCallback]] = {}
        self._correlation = itertools.count(1)
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        pending, self._pending = self._pending, {}
        for _, _, _, callback in pending.values():
            callback(None, RequestFailed("connection closed"))
        self._on_lost(self)

    def data_received(self, data: bytes) -> None:
        self._decoder.receive_data(data)
        while True:
            try:
                frame = self._decoder.next_frame()
            except ProtocolError as exc:
                logger.warning("bad frame from controller: %s", exc)
                self.close()
                return
            if frame is NEED_DATA:
                return
            self._receive(frame)

    def _receive(self, frame: memoryview) -> None:
        try:
            correlation_id, _ = decode_response_header(frame, 0)
        except ProtocolError:
            self.close()
            return
        entry = self._pending.pop(correlation_id, None)
        if entry is None:
            return
        api_key, version, response_class, callback = entry
        try:
            _, offset = decode_response_header(frame, _response_header_version(api_key, version))
            response, _ = codec.decode(response_class, version, frame, offset)
        except ProtocolError as exc:
            callback(None, exc)
            return
        callback(response, None)

    def send(self, api_key: int, version: int, request: Any, response_class: type,
             callback: ResponseCallback) -> None:
        transport = self._transport
        if self.closed or transport is None:
            callback(None, RequestFailed("not connected"))
            return
        if transport.get_write_buffer_size() > WRITE_BUFFER_BYTES_MAX:
            logger.warning("controller peer stopped reading; dropping the connection")
            self.close()
            callback(None, RequestFailed("peer is not reading"))
            return
        correlation_id = next(self._correlation)
        head = _encode_request_header(api_key, version, correlation_id)
        body = codec.encode(request, version)
        self._pending[correlation_id] = (api_key, version, response_class, callback)
        transport.write(_frame(head, body))

    def forget(self, callback: ResponseCallback) -> None:
        for correlation_id, entry in list(self._pending.items()):
            if entry[3] is callback:
                del self._pending[correlation_id]

    def close(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.close()


class _Peer:
    """The connection to one address, with a queue while connecting and a reconnect pause."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.connection: _ClientConnection | None = None
        self.connecting: asyncio.Task | None = None
        self.queue: deque[tuple[int, int, Any, type, ResponseCallback]] = deque()
        self.retry_after = 0.0


class PeerClient:
    """Outbound Kafka-protocol connections to controller listeners, one per address."""

    def __init__(self) -> None:
        self._peers: dict[tuple[str, int], _Peer] = {}
        self._closed = False

    def send(self, address: tuple[str, int], api_key: int, version: int, request: Any,
             response_class: type, callback: ResponseCallback) -> None:
        """Send without waiting; ``callback(response, error)`` runs exactly once unless the
        client is closed first."""
        if self._closed:
            callback(None, RequestFailed("client closed"))
            return
        peer = self._peers.get(address)
        if peer is None:
            peer = self._peers[address] = _Peer(address)
        connection = peer.connection
        if connection is not None and not connection.closed:
            connection.send(api_key, version, request, response_class, callback)
            return
        loop = asyncio.get_running_loop()
        if loop.time() < peer.retry_after:
            callback(None, RequestFailed(f"{address[0]}:{address[1]} unreachable"))
            return
        peer.queue.append((api_key, version, request, response_class, callback))
        while len(peer.queue) > QUEUED_REQUESTS_MAX:
            peer.queue.popleft()[4](None, RequestFailed("send queue full"))
        if peer.connecting is None:
            peer.connecting = loop.create_task(self._connect(peer))

    async def request(self, address: tuple[str, int], api_key: int, version: int,
                      request: Any, response_class: type, timeout_s: float) -> Any:
        """Send and wait for the response.

        Raises:
            RequestFailed: no response within ``timeout_s`` or the connection failed.
        """
        future: asyncio.Future = asyncio.get_running_loop().create_future()

        def done(response: Any, error: BaseException | None) -> None:
            if not future.done():
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(response)

        self.send(address, api_key, version, request, response_class, done)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except asyncio.TimeoutError:
            peer = self._peers.get(address)
            if peer is not None and peer.connection is not None:
                peer.connection.forget(done)
            raise RequestFailed(f"no answer from {address[0]}:{address[1]} within "
                                f"{timeout_s:.1f} s") from None

    async def _connect(self, peer: _Peer) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(lambda: _ClientConnection(self._lost), *peer.address),
                CONNECT_TIMEOUT_S)
        except (OSError, asyncio.TimeoutError) as exc:
            peer.connecting = None
            peer.retry_after = loop.time() + RECONNECT_BACKOFF_S
            queued, peer.queue = list(peer.queue), deque()
            for *_, callback in queued:
                callback(None, RequestFailed(f"cannot connect to {peer.address}: {exc}"))
            return
        peer.connecting = None
        if self._closed:
            connection.close()
            return
        peer.connection = connection
        queued, peer.queue = list(peer.queue), deque()
        for api_key, version, request, response_class, callback in queued:
            connection.send(api_key, version, request, response_class, callback)

    def _lost(self, connection: _ClientConnection) -> None:
        for peer in self._peers.values():
            if peer.connection is connection:
                peer.connection = None

    def close(self) -> None:
        self._closed = True
        for peer in self._peers.values():
            if peer.connecting is not None:
                peer.connecting.cancel()
            if peer.connection is not None:
                peer.connection.close()
        self._peers.clear()


# ============================================================================ server side


Handler = Callable[[RequestHeader, Any, "ControllerConnection"], Any]


class ControllerConnection(asyncio.Protocol):
    """One inbound connection to the controller listener."""

    def __init__(self, listener: "ControllerListener") -> None:
        self._listener = listener
        self._decoder = FrameDecoder(FRAME_BYTES_MAX)
        self._transport: asyncio.Transport | None = None
        self.closed = False
        self.peer_host = "?"
        self._tasks: set[asyncio.Task] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer_host = str(peer[0])
        self._listener.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._listener.connections.discard(self)
        for task in self._tasks:
            task.cancel()

    def data_received(self, data: bytes) -> None:
        self._decoder.receive_data(data)
        while not self.closed:
            try:
                frame = self._decoder.next_frame()
            except ProtocolError as exc:
                logger.warning("controller listener: %s; closing", exc)
                self.close()
                return
            if frame is NEED_DATA:
                return
            try:
                self._listener.handle_frame(self, frame)
            except ProtocolError as exc:
                logger.warning("controller listener: bad request from %s: %s; closing",
                               self.peer_host, exc)
                self.close()
                return

    def respond(self, header: RequestHeader, response: Any) -> None:
        """Write ``response`` for the request that had ``header`` (if still connected)."""
        if self.closed or self._transport is None:
            return
        version = header.api_version
        head = encode_response_header(header.correlation_id,
                                      _response_header_version(header.api_key, version))
        try:
            body = codec.encode(response, version)
        except ProtocolError:
            logger.exception("controller listener: response to api %d v%d cannot be encoded",
                             header.api_key, version)
            self.close()
            return
        self._transport.write(_frame(head, body))

    def run(self, header: RequestHeader, awaitable: Awaitable[Any]) -> None:
        async def finish() -> None:
            try:
                response = await awaitable
            except asyncio.CancelledError:
                return
            except Exception:
                logger.exception("controller listener: api %d failed", header.api_key)
                self.close()
                return
            if response is not None:
                self.respond(header, response)

        task = asyncio.get_running_loop().create_task(finish())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.close()


class ControllerListener:
    """The TCP server behind ``--controller-listen``.

    Args:
        host, port: where to bind (port 0: any free port, see :attr:`port`).
        raft_request: receives KRaft requests: ``(connection, header, wire request)``.
        handlers: api key -> ``handler(header, request, connection)`` returning a response,
            None (no answer) or an awaitable of one, for every other API served here.
    """

    def __init__(self, host: str, port: int, *,
                 raft_request: Callable[["ControllerConnection", RequestHeader, Any], None],
                 handlers: dict[int, Handler]) -> None:
        self.host = host
        self.port = port
        self._raft_request = raft_request
        self.handlers = dict(handlers)
        self.connections: set[ControllerConnection] = set()
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: ControllerConnection(self), self.host,
                                                self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def handle_frame(self, connection: ControllerConnection, frame: memoryview) -> None:
        header, offset = _decode_request_header(frame)
        api_key = header.api_key
        if api_key in wire.REQUEST_CLASSES:
            low, high = wire.RAFT_API_VERSIONS[api_key]
            if not low <= header.api_version <= high:
                raise RemoteProtocolError(f"KRaft api {api_key} v{header.api_version} unsupported")
            request, _ = codec.decode(wire.REQUEST_CLASSES[api_key], header.api_version, frame,
                                      offset)
            self._raft_request(connection, header, request)
            return
        handler = self.handlers.get(api_key)
        if handler is None:
            raise RemoteProtocolError(f"api key {api_key} is not served on the controller listener")
        request = codec.decode_request(api_key, header.api_version, frame, offset)
        result = handler(header, request, connection)
        if inspect.isawaitable(result):
            connection.run(header, result)
        elif result is not None:
            connection.respond(header, result)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for connection in list(self.connections):
                connection.close()
            await self._server.wait_closed()
            self._server = None


# ============================================================================ the raft channel


class RaftChannel:
    """Carries one RaftNode's messages over controller connections.

    Args:
        node_id: this replica.
        cluster_id: put in every request and checked on every one received.
        voters: voter id -> (host, port) of its controller listener.
        tick_ms: converts Fetch ``max_wait_ticks`` to and from ``MaxWaitMs``.
        wall_ms: timestamps for record batches sent in Fetch responses.
        client: the outbound connections.
        endpoint: (listener name, host, port) advertised in BeginQuorumEpoch.
    """

    def __init__(self, node_id: int, cluster_id: str, voters: dict[int, tuple[str, int]], *,
                 tick_ms: int, wall_ms: Callable[[], int], client: PeerClient,
                 endpoint: tuple[str, str, int] | None = None) -> None:
        self.node_id = node_id
        self.cluster_id = cluster_id
        self.voters = dict(voters)
        self.tick_ms = tick_ms
        self._wall_ms = wall_ms
        self._client = client
        self._endpoint = endpoint
        self.deliver: Callable[[Envelope], None] = lambda envelope: None
        self._sequences = itertools.count(1)
        self._inbound: dict[int, tuple[ControllerConnection, RequestHeader]] = {}
        self.sent_count = 0
        self.failed_count = 0

    # -- outbound -------------------------------------------------------------------------

    def send(self, envelope: Envelope) -> None:
        """The driver's ``send``: a request goes to a peer, a response back to its asker."""
        if envelope.is_request:
            self._send_request(envelope)
        else:
            self._send_response(envelope.message)

    def _send_request(self, envelope: Envelope) -> None:
        address = self.voters.get(envelope.destination)
        if address is None:
            return  # only voters are ever asked; observers are answered, never called
        message = envelope.message
        api_key, request = wire.encode_request(message, envelope.destination, self.cluster_id,
                                               tick_ms=self.tick_ms,
                                               leader_endpoint=self._endpoint)
        version = wire.RAFT_API_VERSIONS[api_key][1]
        source = envelope.destination

        def on_response(response: Any, error: BaseException | None) -> None:
            if error is not None:
                self.failed_count += 1
                return
            try:
                core = wire.decode_response(api_key, response, message)
            except (wire.WireError, ValueError) as exc:
                logger.debug("unusable KRaft response from %d: %s", source, exc)
                return
            self.deliver(Envelope(source, self.node_id, core))

        self.sent_count += 1
        self._client.send(address, api_key, version, request, wire.RESPONSE_CLASSES[api_key],
                          on_response)

    def _send_response(self, message: Message) -> None:
        entry = self._inbound.pop(message.sequence, None)
        if entry is None:
            return
        connection, header = entry
        connection.respond(header, wire.encode_response(message, timestamp_ms=self._wall_ms()))

    # -- inbound --------------------------------------------------------------------------

    def receive_request(self, connection: ControllerConnection, header: RequestHeader,
                        request: Any) -> None:
        """A KRaft request from the controller listener."""
        api_key = header.api_key
        try:
            source, message = wire.decode_request(api_key, request, self.cluster_id,
                                                  tick_ms=self.tick_ms)
        except wire.WireError as exc:
            connection.respond(header, wire.error_response(api_key, exc.error_code))
            return
        sequence = next(self._sequences)
        self._inbound[sequence] = (connection, header)
        while len(self._inbound) > INBOUND_PENDING_MAX:
            del self._inbound[next(iter(self._inbound))]
        self.deliver(Envelope(source, self.node_id, replace(message, sequence=sequence)))
