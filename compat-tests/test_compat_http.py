"""The operator HTTP endpoint: /health says serving, /metrics counts Kafka requests.

Goal: an orchestrator can tell when the broker serves, and Prometheus sees Produce traffic.
Method: read /health from the shared broker (the fixture already waited for 200), produce with
confluent-kafka, and compare the Produce sample of streambus_requests_total before and after.
"""

from __future__ import annotations

import json

import raw_wire
from compat_clients import make_records, produce_confluent


def produce_request_count(broker) -> float:
    status, body, _ = broker.http("/metrics")
    assert status == 200
    text = body.decode()
    # The label may carry the API name or the numeric key; accept either spelling.
    return raw_wire.metric_total(text, "streambus_requests_total", api_key="Produce") + (
        raw_wire.metric_total(text, "streambus_requests_total", api_key="0")
    )


def test_health_is_200_json_while_serving(broker) -> None:
    status, body, content_type = broker.http("/health")
    assert status == 200
    assert content_type.startswith("application/json")
    assert isinstance(json.loads(body), dict)


def test_metrics_count_produce_requests(broker, topic) -> None:
    before = produce_request_count(broker)
    produce_confluent(broker.bootstrap, topic, make_records(10))
    after = produce_request_count(broker)
    assert after >= before + 1, f"Produce requests counted before={before} after={after}"


def test_metrics_are_prometheus_text(broker) -> None:
    status, body, content_type = broker.http("/metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    names = {name for name, _, _ in raw_wire.parse_prometheus(body.decode())}
    assert "streambus_protocol_errors_total" in names
