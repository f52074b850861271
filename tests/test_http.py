"""Operator HTTP endpoint: health transitions, metrics exposition, and rejection of bad input.

Method: start a real `HttpServer` on 127.0.0.1 port 0 inside `asyncio.run`, with a fake
`state_fn` whose answer the test changes, and speak raw HTTP/1.1 over a socket so the exact
status line, headers and body are checked.
"""

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from streambus.http import REQUEST_HEAD_SIZE_MAX_BYTES, HttpServer
from streambus.metrics import BrokerMetrics


class Response:
    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split(" ")[1])
        self.headers = {
            name.lower(): value.strip()
            for name, _, value in (line.partition(":") for line in header_lines)
        }

    def json(self) -> Any:
        return json.loads(self.body)


async def exchange(port: int, request: bytes) -> Response:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    raw = await reader.read()  # The server closes after one response.
    writer.close()
    return Response(raw)


async def get(port: int, path: str, method: str = "GET") -> Response:
    return await exchange(port, f"{method} {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())


def run_with_server(
    scenario: Callable[[HttpServer, dict[str, Any], CollectorRegistry], Awaitable[None]],
) -> None:
    state: dict[str, Any] = {"state": "starting", "node_id": 4, "version": "0.1.0"}
    registry = CollectorRegistry()
    BrokerMetrics(registry, node_id=4)

    async def main() -> None:
        server = HttpServer("127.0.0.1", 0, registry, state_fn=lambda: state)
        await server.start()
        try:
            await scenario(server, state, registry)
        finally:
            await server.stop()

    asyncio.run(main())


def test_health_and_ready_follow_broker_state() -> None:
    async def scenario(server: HttpServer, state: dict[str, Any], _: CollectorRegistry) -> None:
        for path in ("/health", "/ready"):
            starting = await get(server.port, path)
            assert starting.status == 503
            assert starting.json() == {"status": "starting", "state": "starting",
                                       "node_id": 4, "version": "0.1.0"}

        state["state"] = "serving"
        for path in ("/health", "/ready"):
            serving = await get(server.port, path)
            assert serving.status == 200
            assert serving.headers["content-type"] == "application/json"
            assert serving.headers["connection"] == "close"
            assert serving.json() == {"status": "ok", "state": "serving",
                                      "node_id": 4, "version": "0.1.0"}

        state["state"] = "stopping"
        stopping = await get(server.port, "/health")
        assert stopping.status == 503
        assert stopping.json()["status"] == "stopping"

    run_with_server(scenario)


def test_query_string_is_ignored_for_routing() -> None:
    async def scenario(server: HttpServer, state: dict[str, Any], _: CollectorRegistry) -> None:
        state["state"] = "serving"
        assert (await get(server.port, "/health?verbose=1")).status == 200

    run_with_server(scenario)


def test_failing_state_callback_answers_503() -> None:
    async def main() -> None:
        def broken_state() -> dict[str, Any]:
            raise RuntimeError("bug")

        server = HttpServer("127.0.0.1", 0, CollectorRegistry(), state_fn=broken_state)
        await server.start()
        try:
            response = await get(server.port, "/health")
        finally:
            await server.stop()
        assert response.status == 503
        assert response.json() == {"status": "unknown"}

    asyncio.run(main())


def test_metrics_serves_prometheus_text() -> None:
    async def scenario(server: HttpServer, _: dict[str, Any], registry: CollectorRegistry) -> None:
        response = await get(server.port, "/metrics")
        assert response.status == 200
        assert response.headers["content-type"] == CONTENT_TYPE_LATEST
        assert int(response.headers["content-length"]) == len(response.body)
        text = response.body.decode()
        assert "streambus_broker_state 0.0" in text
        assert 'streambus_broker_info{node_id="4",version="0.1.0"} 1.0' in text

    run_with_server(scenario)


def test_head_returns_headers_without_body() -> None:
    async def scenario(server: HttpServer, state: dict[str, Any], _: CollectorRegistry) -> None:
        state["state"] = "serving"
        response = await get(server.port, "/health", method="HEAD")
        assert response.status == 200
        assert int(response.headers["content-length"]) > 0
        assert response.body == b""

    run_with_server(scenario)


def test_unknown_path_is_404_and_other_methods_are_405() -> None:
    async def scenario(server: HttpServer, _: dict[str, Any], __: CollectorRegistry) -> None:
        assert (await get(server.port, "/admin")).status == 404
        rejected = await exchange(
            server.port, b"POST /health HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
        )
        assert rejected.status == 405
        assert rejected.headers["allow"] == "GET, HEAD"

    run_with_server(scenario)


def test_malformed_request_line_is_400() -> None:
    async def scenario(server: HttpServer, _: dict[str, Any], __: CollectorRegistry) -> None:
        assert (await exchange(server.port, b"hello\r\n\r\n")).status == 400
        # A Kafka client pointed at the HTTP port by mistake gets a 400, not a hang.
        assert (await exchange(server.port, b"\x00\x00\x00\x10\x00\x12\x00\x03\r\n\r\n")).status == 400

    run_with_server(scenario)


def test_oversized_request_head_is_431() -> None:
    async def scenario(server: HttpServer, _: dict[str, Any], __: CollectorRegistry) -> None:
        padding = b"X-Padding: " + b"a" * (2 * REQUEST_HEAD_SIZE_MAX_BYTES) + b"\r\n"
        response = await exchange(server.port, b"GET /health HTTP/1.1\r\n" + padding + b"\r\n")
        assert response.status == 431

    run_with_server(scenario)


def test_connection_closed_without_request_gets_no_answer() -> None:
    async def scenario(server: HttpServer, _: dict[str, Any], __: CollectorRegistry) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write_eof()
        assert await reader.read() == b""
        writer.close()
        # The server keeps serving afterwards.
        assert (await get(server.port, "/metrics")).status == 200

    run_with_server(scenario)


def test_stop_drops_a_client_that_never_sends_a_request() -> None:
    async def main() -> None:
        server = HttpServer("127.0.0.1", 0, CollectorRegistry(), state_fn=lambda: {})
        await server.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /health HTTP/1.1\r\n")  # Head never finished.
        await writer.drain()
        await server.stop()
        try:
            remaining = await reader.read()
        except ConnectionResetError:
            remaining = b""  # Closed with our partial request unread: the kernel sends RST.
        assert remaining == b""
        writer.close()

    asyncio.run(main())
