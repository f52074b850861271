"""Operator HTTP endpoint: ``/health``, ``/ready`` and ``/metrics`` over a tiny HTTP/1.1 server.

This module owns the operator-facing HTTP listener. It answers one request per connection and
then closes it (``Connection: close``), which is all health checkers and Prometheus need. It
never touches broker internals: it sees the broker only through ``state_fn`` (a dict with at
least ``"state"``) and the broker's `CollectorRegistry`.

Limits on everything a client controls: the request head is at most `REQUEST_HEAD_SIZE_MAX_BYTES`
(else 431), a client gets `REQUEST_TIMEOUT_S` to send it (else the connection is closed), and at
most `CONNECTION_COUNT_MAX` connections are served at once (extra ones are closed unanswered).

Responses:

- ``GET /health``, ``GET /ready``: 200 ``{"status": "ok", "state": "serving", ...}`` once
  serving; otherwise 503 ``{"status": "<state>", ...}`` (``starting``, ``stopping``).
- ``GET /metrics``: Prometheus text exposition of the registry.
- Other paths 404; methods other than GET and HEAD 405; unparseable requests 400.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["HttpServer"]

logger = logging.getLogger(__name__)

REQUEST_HEAD_SIZE_MAX_BYTES = 8 * 1024
REQUEST_TIMEOUT_S = 5.0
CONNECTION_COUNT_MAX = 64
DISCARD_SIZE_MAX_BYTES = 1024 * 1024

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"


class HttpServer:
    """Serves health and metrics for one broker.

    Args:
        host: address to bind.
        port: port to bind; 0 picks a free port, read it back from `port` after `start`.
        registry: the broker's metrics registry.
        state_fn: returns the broker's health dict, e.g. ``{"state": "serving", "node_id": 1,
            "version": "0.1.0"}``. Health is 200 only when ``state == "serving"``.
    """

    def __init__(self, host: str, port: int, registry: CollectorRegistry,
                 state_fn: Callable[[], dict[str, Any]]) -> None:
        self._host = host
        self._requested_port = port
        self._registry = registry
        self._state_fn = state_fn
        self._server: asyncio.Server | None = None
        self._connection_tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The port actually bound (useful when constructed with port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("HttpServer is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Bind and start accepting. Raises ``OSError`` if the address cannot be bound."""
        assert self._server is None, "HttpServer started twice"
        self._server = await asyncio.start_server(
            self._handle_connection, self._host, self._requested_port,
            limit=REQUEST_HEAD_SIZE_MAX_BYTES,
        )

    async def stop(self) -> None:
        """Stop accepting and drop connections still being served."""
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connection_tasks):
            task.cancel()
        await asyncio.gather(*self._connection_tasks, return_exceptions=True)
        await self._server.wait_closed()

    # ----------------------------------------------------------------- connection

    async def _handle_connection(self, reader: asyncio.StreamReader,
                                 writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._connection_tasks) >= CONNECTION_COUNT_MAX:
            writer.close()
            return
        self._connection_tasks.add(task)
        try:
            response = await self._read_and_answer(reader)
            if response is not None:
                writer.write(response)
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    await writer.drain()
                    if not reader.at_eof() and response.startswith((b"HTTP/1.1 4",)):
                        await _discard_unread_input(reader, writer)
        except (ConnectionError, TimeoutError):
            pass  # The client went away or stalled; nothing to answer.
        except asyncio.CancelledError:
            # Cancelled by stop(). Finishing normally rather than re-raising keeps asyncio's
            # stream callback from logging the cancellation as an error (CPython 3.11).
            pass
        finally:
            self._connection_tasks.discard(task)
            writer.close()

    async def _read_and_answer(self, reader: asyncio.StreamReader) -> bytes | None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            return _response(431, _TEXT, b"request head too large\n")
        except asyncio.IncompleteReadError as error:
            if not error.partial:
                return None  # Connected and closed without a request (a TCP health probe).
            return _response(400, _TEXT, b"incomplete request\n")
        except TimeoutError:
            return _response(408, _TEXT, b"request timeout\n")
        return self._answer(head)

    def _answer(self, head: bytes) -> bytes:
        request_line = head.split(b"\r\n", 1)[0]
        parts = request_line.split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            return _response(400, _TEXT, b"malformed request line\n")
        method, target = parts[0], parts[1]
        path = target.split(b"?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            return _response(405, _TEXT, b"method not allowed\n", extra_headers="Allow: GET, HEAD\r\n")
        include_body = method == b"GET"
        if path in (b"/health", b"/ready"):
            status, body = self._health()
            return _response(status, _JSON, body, include_body=include_body)
        if path == b"/metrics":
            return _response(200, CONTENT_TYPE_LATEST, generate_latest(self._registry),
                             include_body=include_body)
        return _response(404, _TEXT, b"not found\n", include_body=include_body)

    def _health(self) -> tuple[int, bytes]:
        try:
            state = dict(self._state_fn())
        except Exception:
            # A failing health callback is a bug, but the checker still needs an answer.
            logger.exception("health state callback failed")
            return 503, json.dumps({"status": "unknown"}).encode() + b"\n"
        serving = state.get("state") == "serving"
        body = {"status": "ok" if serving else str(state.get("state", "unknown")), **state}
        return (200 if serving else 503), json.dumps(body).encode() + b"\n"


async def _discard_unread_input(reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
    """Lingering close: after rejecting a request we did not read in full, read (and drop) what
    the client is still sending. Closing with unread input makes the kernel send RST, and the
    client may then lose our error response before reading it."""
    if writer.can_write_eof():
        writer.write_eof()
    discarded_bytes = 0
    while discarded_bytes < DISCARD_SIZE_MAX_BYTES:
        chunk = await reader.read(REQUEST_HEAD_SIZE_MAX_BYTES)
        if not chunk:
            return
        discarded_bytes += len(chunk)


def _response(status: int, content_type: str, body: bytes, *, include_body: bool = True,
              extra_headers: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Cache-Control: no-store\r\n"
        f"{extra_headers}"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + (body if include_body else b"")
