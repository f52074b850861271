"""Broker metrics: names, labels and values as a Prometheus scrape would see them.

Method: register `BrokerMetrics` on a fresh `CollectorRegistry` per test, drive the recording
methods, and read samples back with `registry.get_sample_value` or the text exposition.
"""

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from streambus.metrics import PROTOCOL_ERROR_REASONS, BrokerMetrics


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> BrokerMetrics:
    return BrokerMetrics(registry, node_id=7, version="9.9.9")


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_observe_request_counts_requests_latency_and_errors(
    metrics: BrokerMetrics, registry: CollectorRegistry
) -> None:
    metrics.observe_request("Produce", 0.002, ["NOT_LEADER_OR_FOLLOWER", "NONE"])
    metrics.observe_request("Produce", 0.0004, [])
    metrics.observe_request("Fetch", 0.3)
    assert sample(registry, "streambus_requests_total", api_key="Produce") == 2
    assert sample(registry, "streambus_requests_total", api_key="Fetch") == 1
    assert sample(registry, "streambus_request_errors_total", api_key="Produce",
                  error_code="NOT_LEADER_OR_FOLLOWER") == 1
    assert sample(registry, "streambus_request_errors_total", api_key="Produce",
                  error_code="NONE") is None
    assert sample(registry, "streambus_request_latency_seconds_count", api_key="Produce") == 2
    assert sample(registry, "streambus_request_latency_seconds_bucket", api_key="Produce",
                  le="0.0005") == 1
    assert sample(registry, "streambus_request_latency_seconds_bucket", api_key="Produce",
                  le="5e-05") == 0


def test_error_codes_may_be_enum_members(
    metrics: BrokerMetrics, registry: CollectorRegistry
) -> None:
    class FakeErrorCode:
        name = "UNKNOWN_TOPIC_OR_PARTITION"

    metrics.observe_request("Metadata", 0.001, [FakeErrorCode()])
    assert sample(registry, "streambus_request_errors_total", api_key="Metadata",
                  error_code="UNKNOWN_TOPIC_OR_PARTITION") == 1


def test_api_label_values_are_bounded(metrics: BrokerMetrics, registry: CollectorRegistry) -> None:
    for index in range(200):
        metrics.observe_request(f"Api{index}", 0.001)
    api_labels = {
        s.labels["api_key"] for s in metrics.requests.collect()[0].samples
        if s.name == "streambus_requests_total"
    }
    assert len(api_labels) == 129
    assert "other" in api_labels
    assert sample(registry, "streambus_requests_total", api_key="other") == 200 - 128


def test_connections_and_bytes(metrics: BrokerMetrics, registry: CollectorRegistry) -> None:
    metrics.record_connection_opened()
    metrics.record_connection_opened()
    metrics.record_connection_closed()
    metrics.record_bytes_in(100)
    metrics.record_bytes_out(250)
    assert sample(registry, "streambus_connections_active") == 1
    assert sample(registry, "streambus_connections_total") == 2
    assert sample(registry, "streambus_network_bytes_in_total") == 100
    assert sample(registry, "streambus_network_bytes_out_total") == 250


def test_protocol_error_reasons_start_at_zero_and_reject_unknown_reasons(
    metrics: BrokerMetrics, registry: CollectorRegistry
) -> None:
    for reason in PROTOCOL_ERROR_REASONS:
        assert sample(registry, "streambus_protocol_errors_total", reason=reason) == 0
    metrics.record_protocol_error("frame_too_large")
    assert sample(registry, "streambus_protocol_errors_total", reason="frame_too_large") == 1
    with pytest.raises(ValueError):
        metrics.record_protocol_error("client 10.0.0.1 was rude")


def test_partition_offsets_and_partition_count(
    metrics: BrokerMetrics, registry: CollectorRegistry
) -> None:
    metrics.set_partition_offsets("events", 0, log_start_offset=0, log_end_offset=10)
    metrics.set_partition_offsets("events", 1, log_start_offset=5, log_end_offset=8)
    metrics.set_partition_offsets("events", 0, log_start_offset=2, log_end_offset=12)
    metrics.record_messages_in("events", 3)
    assert sample(registry, "streambus_log_partitions") == 2
    assert sample(registry, "streambus_log_end_offset", topic="events", partition="0") == 12
    assert sample(registry, "streambus_log_start_offset", topic="events", partition="0") == 2
    assert sample(registry, "streambus_messages_in_total", topic="events") == 3

    metrics.remove_partition("events", 0)
    assert sample(registry, "streambus_log_partitions") == 1
    assert sample(registry, "streambus_log_end_offset", topic="events", partition="0") is None
    assert sample(registry, "streambus_messages_in_total", topic="events") == 3

    metrics.remove_partition("events", 1)
    metrics.remove_partition("events", 1)  # Removing twice is harmless.
    assert sample(registry, "streambus_log_partitions") == 0
    assert sample(registry, "streambus_messages_in_total", topic="events") is None


def test_broker_info_and_state(metrics: BrokerMetrics, registry: CollectorRegistry) -> None:
    assert sample(registry, "streambus_broker_info", version="9.9.9", node_id="7") == 1
    assert sample(registry, "streambus_broker_state") == 0
    metrics.set_broker_state("serving")
    assert sample(registry, "streambus_broker_state") == 1
    metrics.set_broker_state("stopping")
    assert sample(registry, "streambus_broker_state") == 2
    with pytest.raises(ValueError):
        metrics.set_broker_state("sleeping")


def test_two_brokers_in_one_process_keep_separate_registries() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    BrokerMetrics(first, node_id=1).observe_request("Produce", 0.001)
    BrokerMetrics(second, node_id=2)
    assert first.get_sample_value("streambus_requests_total", {"api_key": "Produce"}) == 1
    assert second.get_sample_value("streambus_requests_total", {"api_key": "Produce"}) is None
    assert REGISTRY.get_sample_value("streambus_broker_state") is None


def test_exposition_uses_documented_names(metrics: BrokerMetrics,
                                          registry: CollectorRegistry) -> None:
    metrics.observe_request("Produce", 0.001)
    text = generate_latest(registry).decode()
    for name in (
        "streambus_requests_total", "streambus_request_latency_seconds_bucket",
        "streambus_network_bytes_in_total", "streambus_network_bytes_out_total",
        "streambus_connections_active", "streambus_connections_total",
        "streambus_protocol_errors_total", "streambus_log_partitions",
        "streambus_broker_info", "streambus_broker_state",
    ):
        assert f"\n{name}" in text, name
