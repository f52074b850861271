"""Broker metrics: every Prometheus metric a broker exposes, on one injected registry.

This module owns the metric names, label sets and buckets, and the cheap recording methods the
rest of the broker calls. It never uses prometheus_client's global registry: each broker
instance passes its own `CollectorRegistry`, so several brokers (and tests) can live in one
process. It never serves HTTP (see `streambus.http`).

Naming: ``streambus_<subsystem>_<name>_<unit>``, ``_total`` on counters, base units
(seconds, bytes). Labels are bounded: API names, error-code names, a fixed set of protocol-error
reasons, topics and partitions. Never ``client_id`` or addresses.

Hot path: `BrokerMetrics.observe_request` runs once per request, so it looks up pre-bound label
children in a dict instead of calling ``.labels()`` (which takes a lock and builds a tuple key).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

import streambus

__all__ = [
    "BROKER_STATES",
    "PROTOCOL_ERROR_REASONS",
    "REQUEST_LATENCY_BUCKETS_SECONDS",
    "BrokerMetrics",
]

# 50 µs (a cached Metadata answer) to 10 s (a long-polling Fetch or a slow fsync).
REQUEST_LATENCY_BUCKETS_SECONDS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)

# Why the broker rejected bytes from a client. Fixed, so the label stays bounded.
PROTOCOL_ERROR_REASONS = (
    "frame_too_large",
    "invalid_frame_size",  # A negative length prefix.
    "truncated_frame",  # The client closed mid-frame.
    "malformed_header",
    "malformed_body",
    "unknown_api_key",
    "unsupported_version",
    "http_on_kafka_port",
    "tls_on_plaintext_port",  # A TLS ClientHello sent to a PLAINTEXT listener.
    "sasl_illegal_state",  # A request a SASL listener may not serve in its current state.
    "sasl_session_expired",  # A request after the KIP-368 session lifetime ran out.
    "tls_handshake_failed",  # No TLS session came of it (plaintext or garbage on a TLS port).
    "corrupt_record",
)

BROKER_STATES = {"starting": 0, "serving": 1, "stopping": 2}

# Group (type, state) series published from the first scrape, so dashboards see zeros.
GROUP_STATES = (
    ("classic", "Empty"), ("classic", "PreparingRebalance"), ("classic", "CompletingRebalance"),
    ("classic", "Stable"), ("consumer", "Empty"), ("consumer", "Assigning"),
    ("consumer", "Reconciling"), ("consumer", "Stable"),
)
#: Bound on consumer-lag series (group x partition); beyond it lag is not exported.
LAG_SERIES_COUNT_MAX = 10_000

# Label values outside these bounds are folded into "other" rather than growing the registry:
# a bug that passes unbounded names must not turn into a memory leak.
API_NAME_COUNT_MAX = 128
ERROR_SERIES_COUNT_MAX = 4096
OTHER = "other"


class BrokerMetrics:
    """All broker metrics, registered on `registry` at construction.

    Args:
        registry: the broker's own registry; registering twice on one registry raises
            ``ValueError`` (duplicated timeseries), so build one `BrokerMetrics` per registry.
        node_id: reported in ``streambus_broker_info``.
        version: reported in ``streambus_broker_info``; defaults to the package version.
    """

    def __init__(self, registry: CollectorRegistry, *, node_id: int,
                 version: str = streambus.__version__) -> None:
        self.registry = registry
        self.requests = Counter(
            "streambus_requests", "Requests handled, by API.",
            ["api_key"], registry=registry)
        self.request_errors = Counter(
            "streambus_request_errors", "Error codes returned in responses, by API and code.",
            ["api_key", "error_code"], registry=registry)
        self.request_latency = Histogram(
            "streambus_request_latency_seconds",
            "Time from a request being read to its response being queued, by API.",
            ["api_key"], buckets=REQUEST_LATENCY_BUCKETS_SECONDS, registry=registry)
        self.network_bytes_in = Counter(
            "streambus_network_bytes_in", "Bytes read from Kafka client connections.",
            registry=registry)
        self.network_bytes_out = Counter(
            "streambus_network_bytes_out", "Bytes written to Kafka client connections.",
            registry=registry)
        self.connections_active = Gauge(
            "streambus_connections_active", "Kafka client connections currently open.",
            registry=registry)
        self.connections = Counter(
            "streambus_connections", "Kafka client connections accepted.", registry=registry)
        self.protocol_errors = Counter(
            "streambus_protocol_errors",
            "Connections closed for bad input, by reason.", ["reason"], registry=registry)
        self.messages_in = Counter(
            "streambus_messages_in", "Records appended by Produce, by topic.",
            ["topic"], registry=registry)
        self.log_partitions = Gauge(
            "streambus_log_partitions", "Partitions with a log on this broker.",
            registry=registry)
        self.log_end_offset = Gauge(
            "streambus_log_end_offset", "Offset the next appended record will get.",
            ["topic", "partition"], registry=registry)
        self.log_start_offset = Gauge(
            "streambus_log_start_offset", "First offset still readable.",
            ["topic", "partition"], registry=registry)
        self.broker_info = Info(
            "streambus_broker", "Broker version and node id.", registry=registry)
        self.broker_state = Gauge(
            "streambus_broker_state", "0 starting, 1 serving, 2 stopping.", registry=registry)
        self.authentications = Counter(
            "streambus_security_authentications",
            "SASL authentications, by mechanism and result (ok or failed).",
            ["mechanism", "result"], registry=registry)
        self.authorization_denied = Counter(
            "streambus_security_authorization_denied",
            "Requests or resources refused by ACLs, by operation and resource type.",
            ["operation", "resource_type"], registry=registry)
        self.groups = Gauge(
            "streambus_group_count", "Consumer groups this node coordinates, by type and state.",
            ["type", "state"], registry=registry)
        self.group_rebalances = Counter(
            "streambus_group_rebalances",
            "Completed rebalances (classic) and group epoch bumps (KIP-848).", registry=registry)
        self.group_offset_commits = Counter(
            "streambus_group_offset_commits", "Offsets committed (one per partition).",
            registry=registry)
        self.group_consumer_lag = Gauge(
            "streambus_group_consumer_lag",
            "High watermark minus committed offset, by group and partition.",
            ["group", "topic", "partition"], registry=registry)

        self.broker_info.info({"version": version, "node_id": str(node_id)})
        self.broker_state.set(BROKER_STATES["starting"])
        # Bind every reason now so a scrape shows 0 rather than no series: alerts on
        # `rate(...) > 0` then work from the first scrape.
        self._protocol_error_children = {
            reason: self.protocol_errors.labels(reason) for reason in PROTOCOL_ERROR_REASONS
        }
        self._request_children: dict[str, tuple[Any, Any]] = {}
        self._error_children: dict[tuple[str, str], Any] = {}
        self._messages_in_children: dict[str, Any] = {}
        self._partitions: set[tuple[str, int]] = set()
        self._group_state_series: set[tuple[str, str]] = set()
        self._lag_series: set[tuple[str, str, str]] = set()
        for state in GROUP_STATES:
            self.groups.labels(*state).set(0)
            self._group_state_series.add(state)

    # ----------------------------------------------------------------- requests

    def observe_request(self, api_name: str, latency_s: float,
                        error_codes: Iterable[Any] = ()) -> None:
        """Count one request, its latency and any error codes in its response.

        Args:
            api_name: Kafka API name, e.g. ``"Produce"``.
            latency_s: seconds from request read to response queued.
            error_codes: error-code names (or enum members with ``.name``) found in the
                response; ``NONE`` entries are ignored. Each entry is counted once, so a Produce
                failing on three partitions with the same code counts three.
        """
        children = self._request_children.get(api_name)
        if children is None:
            children = self._bind_request(api_name)
        children[0].inc()
        children[1].observe(latency_s)
        for error_code in error_codes:
            self._count_error(api_name, error_code)

    def _bind_request(self, api_name: str) -> tuple[Any, Any]:
        if len(self._request_children) >= API_NAME_COUNT_MAX:
            api_name = OTHER
            if api_name in self._request_children:
                return self._request_children[api_name]
        children = (self.requests.labels(api_name), self.request_latency.labels(api_name))
        self._request_children[api_name] = children
        return children

    def _count_error(self, api_name: str, error_code: Any) -> None:
        name = getattr(error_code, "name", error_code)
        if name == "NONE":
            return
        key = (api_name, str(name))
        child = self._error_children.get(key)
        if child is None:
            if len(self._error_children) >= ERROR_SERIES_COUNT_MAX:
                key = (OTHER, OTHER)
                child = self._error_children.get(key)
            if child is None:
                child = self.request_errors.labels(*key)
                self._error_children[key] = child
        child.inc()

    # ----------------------------------------------------------------- network

    def record_connection_opened(self) -> None:
        self.connections.inc()
        self.connections_active.inc()

    def record_connection_closed(self) -> None:
        self.connections_active.dec()

    def record_bytes_in(self, size_bytes: int) -> None:
        self.network_bytes_in.inc(size_bytes)

    def record_bytes_out(self, size_bytes: int) -> None:
        self.network_bytes_out.inc(size_bytes)

    def record_protocol_error(self, reason: str) -> None:
        """Count a connection closed for bad input.

        Raises:
            ValueError: `reason` is not one of `PROTOCOL_ERROR_REASONS` (a programming error:
                add the reason to the tuple rather than inventing label values).
        """
        child = self._protocol_error_children.get(reason)
        if child is None:
            raise ValueError(f"unknown protocol error reason {reason!r}")
        child.inc()

    # ----------------------------------------------------------------- security

    def record_authentication(self, mechanism: str, *, ok: bool) -> None:
        """Count one SASL authentication; `mechanism` is one of the three SASL names."""
        self.authentications.labels(mechanism, "ok" if ok else "failed").inc()

    def record_authorization_denied(self, operation: str, resource_type: str) -> None:
        """Count one denial; both labels come from Kafka's fixed enums (bounded)."""
        self.authorization_denied.labels(operation, resource_type).inc()

    # ----------------------------------------------------------------- log

    def record_messages_in(self, topic: str, record_count: int) -> None:
        child = self._messages_in_children.get(topic)
        if child is None:
            child = self._messages_in_children[topic] = self.messages_in.labels(topic)
        child.inc(record_count)

    def set_partition_offsets(self, topic: str, partition: int, log_start_offset: int,
                              log_end_offset: int) -> None:
        """Publish a partition's offsets; the first call also counts the partition."""
        assert 0 <= log_start_offset <= log_end_offset, (log_start_offset, log_end_offset)
        label = str(partition)
        self.log_start_offset.labels(topic, label).set(log_start_offset)
        self.log_end_offset.labels(topic, label).set(log_end_offset)
        if (topic, partition) not in self._partitions:
            self._partitions.add((topic, partition))
            self.log_partitions.set(len(self._partitions))

    def remove_partition(self, topic: str, partition: int) -> None:
        """Drop a partition's series (deleted or moved away). Unknown partitions are ignored."""
        if (topic, partition) not in self._partitions:
            return
        self._partitions.discard((topic, partition))
        self.log_partitions.set(len(self._partitions))
        label = str(partition)
        self.log_start_offset.remove(topic, label)
        self.log_end_offset.remove(topic, label)
        if not any(known_topic == topic for known_topic, _ in self._partitions):
            self._messages_in_children.pop(topic, None)
            try:
                self.messages_in.remove(topic)
            except KeyError:
                pass  # No Produce reached this topic on this broker.

    # ----------------------------------------------------------------- groups

    def set_group_counts(self, counts: dict[tuple[str, str], int]) -> None:
        """Publish groups by (type, state); states not in ``counts`` read 0."""
        for key in self._group_state_series | set(counts):
            self.groups.labels(*key).set(counts.get(key, 0))
            self._group_state_series.add(key)

    def add_group_rebalances(self, count: int) -> None:
        if count > 0:
            self.group_rebalances.inc(count)

    def add_group_offset_commits(self, count: int) -> None:
        if count > 0:
            self.group_offset_commits.inc(count)

    def set_consumer_lag(self, lag: dict[tuple[str, str, int], int]) -> None:
        """Publish lag per (group, topic, partition), at most LAG_SERIES_COUNT_MAX series (the
        rest are left out, never folded: a folded lag would be meaningless); series of offsets
        that no longer exist are removed."""
        current: set[tuple[str, str, str]] = set()
        for (group, topic, partition), value in sorted(lag.items()):
            if len(current) >= LAG_SERIES_COUNT_MAX:
                break
            key = (group, topic, str(partition))
            self.group_consumer_lag.labels(*key).set(value)
            current.add(key)
        for key in self._lag_series - current:
            try:
                self.group_consumer_lag.remove(*key)
            except KeyError:
                pass
        self._lag_series = current

    # ----------------------------------------------------------------- lifecycle

    def set_broker_state(self, state: str) -> None:
        """Set ``streambus_broker_state`` from ``"starting"``, ``"serving"`` or ``"stopping"``."""
        if state not in BROKER_STATES:
            raise ValueError(f"unknown broker state {state!r}")
        self.broker_state.set(BROKER_STATES[state])


# ----------------------------------------------------------------- metadata quorum

RAFT_ROLES = ("unattached", "prospective", "candidate", "leader", "follower", "resigned")


class RaftCollector:
    """``streambus_raft_*``: the metadata quorum as this node sees it, read at scrape time
    (nothing to update on the Raft hot path).

    Args:
        store: returns the node's MetadataStore, or None before it opened.
    """

    def __init__(self, store: Any) -> None:
        self._store = store

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        store = self._store()
        driver = None if store is None else store.driver
        if driver is None:
            return
        node = driver.node
        gauges = (
            ("streambus_raft_epoch", "Current leader epoch (Raft term).", node.epoch),
            ("streambus_raft_leader_id", "Known quorum leader, -1 when none.", node.leader_id),
            ("streambus_raft_high_watermark", "Committed offset of the metadata log.",
             node.high_watermark),
            ("streambus_raft_log_end_offset", "End offset of the local metadata log.",
             node.log_end_offset),
            ("streambus_raft_applied_offset", "Metadata log offset applied to the image.",
             driver.applied_offset),
            ("streambus_raft_voters", "Voters in the metadata quorum.",
             len(node.config.voters)),
        )
        for name, documentation, value in gauges:
            yield GaugeMetricFamily(name, documentation, value=value)
        role = GaugeMetricFamily("streambus_raft_role", "1 for this node's current role.",
                                 labels=["role"])
        for name in RAFT_ROLES:
            role.add_metric([name], 1.0 if node.role.value == name else 0.0)
        yield role
        yield CounterMetricFamily("streambus_raft_elections_won",
                                  "Elections this node won since it started.",
                                  value=driver.election_count)
