"""All five clients through TLS and SASL: produce and consume, and the refusals they expect.

Goal: every client connects with SASL_SSL + SCRAM-SHA-512, SASL_PLAINTEXT + SCRAM-SHA-256,
SASL_PLAINTEXT + PLAIN and SSL (a self-signed CA made here), produces and reads back; a wrong
password, an unknown user and a mechanism the listener does not offer are refused with the
client's normal authentication error; a plaintext client on the TLS port is disconnected.

Method: three brokers per module (SASL_SSL offering only SCRAM-SHA-512; SASL_PLAINTEXT offering
all mechanisms; SSL), each with a users file and `alice` as super user. Each client runs with
its own option names (security_support.Setup), as an application would configure it.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from typing import Iterator

import pytest

from broker_process import Broker
from compat_clients import (
    ASSIGN_CONSUMERS,
    PRODUCERS,
    consume_kafkajs,
    make_records,
    produce_kafkajs,
    require_client,
    unique_topic,
)
from raw_wire import api_versions_request_v0 as api_versions_request
from security_support import (
    PASSWORDS,
    Setup,
    connect_aiokafka,
    connect_confluent,
    connect_kafka_python,
    connect_kafkajs,
    connect_kcat,
    make_certs,
    start_secure_broker,
    tls_security,
    write_users_file,
)

CLIENTS = ("confluent-kafka", "kafka-python", "aiokafka", "kcat", "kafkajs")
SETUPS = ("SASL_SSL-SCRAM-SHA-512", "SASL_PLAINTEXT-SCRAM-SHA-256", "SASL_PLAINTEXT-PLAIN",
          "SSL")
RECORD_COUNT = 5


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory):
    return make_certs(tmp_path_factory.mktemp("certs"))


def _broker(tmp_path_factory: pytest.TempPathFactory, name: str, security: dict) -> Broker:
    work_dir = tmp_path_factory.mktemp(name)
    users = write_users_file(work_dir / "users.yaml")
    return start_secure_broker(work_dir, {"security": {
        "users_file": str(users), "super_users": ["alice", "admin"], **security}})


@pytest.fixture(scope="module")
def brokers(tmp_path_factory: pytest.TempPathFactory, certs) -> Iterator[dict[str, Broker]]:
    started = {
        "SASL_SSL": _broker(tmp_path_factory, "sasl-ssl", {
            "tls_enabled": True, **tls_security(certs), "auth_enabled": True,
            "auth_mechanism": "SCRAM-SHA-512", "sasl_enabled_mechanisms": ["SCRAM-SHA-512"]}),
        "SASL_PLAINTEXT": _broker(tmp_path_factory, "sasl-plaintext", {
            "auth_enabled": True, "auth_mechanism": "SCRAM-SHA-256"}),
        "SSL": _broker(tmp_path_factory, "ssl", {"tls_enabled": True, **tls_security(certs)}),
    }
    yield started
    for broker in started.values():
        broker.finish()


def _setup(name: str, certs, *, user: str = "alice", password: str | None = None) -> Setup:
    protocol, _, mechanism = name.partition("-")
    return Setup(protocol=protocol, mechanism=mechanism or None,
                 username=user if mechanism else None,
                 password=(password or PASSWORDS.get(user, "x")) if mechanism else None,
                 ca_file=certs.ca_cert)


@pytest.mark.parametrize("setup_name", SETUPS)
@pytest.mark.parametrize("client", CLIENTS)
def test_client_produces_and_consumes_through_security(client: str, setup_name: str, brokers,
                                                       certs) -> None:
    require_client(client)
    setup = _setup(setup_name, certs)
    broker = brokers[setup.protocol]
    topic = unique_topic(f"sec-{client}")
    # kcat applies the same headers to every record and cannot set timestamps.
    records = make_records(RECORD_COUNT, headers=[("source", b"compat")], seed=client[:2])
    if client == "kafkajs":
        produced = produce_kafkajs(broker.bootstrap, topic, records, security=setup.kafkajs())
        consumed = consume_kafkajs(broker.bootstrap, topic, RECORD_COUNT,
                                   security=setup.kafkajs())
    else:
        produced = PRODUCERS[client](broker.bootstrap, topic, records,
                                     config=setup.for_client(client))
        consumed = ASSIGN_CONSUMERS[client](broker.bootstrap, topic, RECORD_COUNT,
                                            config=setup.for_client(client))
    assert [r.payload() for r in consumed] == [(r.key, r.value, r.headers) for r in records]
    if produced.offsets[0] is not None:
        assert produced.offsets == list(range(RECORD_COUNT))


REFUSALS = {
    # name: (broker, setup, what the client must report)
    "wrong-password": ("SASL_PLAINTEXT", "SASL_PLAINTEXT-SCRAM-SHA-256", "alice", "wrong-pw"),
    "unknown-user": ("SASL_PLAINTEXT", "SASL_PLAINTEXT-PLAIN", "mallory", "alice-secret"),
    "unsupported-mechanism": ("SASL_SSL", "SASL_SSL-PLAIN", "alice", None),
}


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
@pytest.mark.parametrize("client", CLIENTS)
def test_bad_credentials_and_mechanisms_are_refused(client: str, refusal: str, brokers,
                                                    certs) -> None:
    require_client(client)
    broker_name, setup_name, user, password = REFUSALS[refusal]
    broker = brokers[broker_name]
    setup = _setup(setup_name, certs, user=user, password=password)
    unsupported = refusal == "unsupported-mechanism"
    if client == "confluent-kafka":
        error = connect_confluent(broker.bootstrap, setup, timeout_s=5)
        assert error is not None
        assert ("Unsupported SASL mechanism" if unsupported else
                "Authentication failed during authentication") in error, error
    elif client == "kcat":
        error = connect_kcat(broker.bootstrap, setup)
        assert error is not None
        assert ("Unsupported SASL mechanism" if unsupported else
                "Authentication failed during authentication") in error, error
    elif client == "kafka-python":
        error = connect_kafka_python(broker.bootstrap, setup)
        assert error is not None
        assert ("UnsupportedSaslMechanismError" if unsupported else
                "SaslAuthenticationFailedError") in error, error
    elif client == "aiokafka":
        error = connect_aiokafka(broker.bootstrap, setup)
        assert error is not None
        assert ("UnsupportedSaslMechanism" in error if unsupported
                else "SaslAuthenticationFailed" in error), error
    else:
        error = connect_kafkajs(broker.bootstrap, setup)
        assert error is not None
        assert error["name"] == ("KafkaJSSASLAuthenticationError" if not unsupported
                                 else "KafkaJSNonRetriableError") or \
            "not supported" in error["message"] or "SASL" in error["message"], error
    # The broker keeps serving the right credentials after refusing the wrong ones.
    assert connect_kafka_python(brokers["SASL_PLAINTEXT"].bootstrap,
                                _setup("SASL_PLAINTEXT-SCRAM-SHA-256", certs)) is None


def test_failed_authentications_are_counted_and_audited(brokers, certs) -> None:
    broker = brokers["SASL_PLAINTEXT"]
    connect_kafka_python(broker.bootstrap, _setup("SASL_PLAINTEXT-PLAIN", certs,
                                                  password="nope"))
    status, body, _ = broker.http("/metrics")
    assert status == 200
    failed = [line for line in body.decode().splitlines()
              if line.startswith("streambus_security_authentications_total")
              and 'result="failed"' in line]
    assert failed and any(float(line.rsplit(" ", 1)[1]) >= 1 for line in failed), failed
    log = broker.log_tail()
    assert "authentication failed: user=alice" in log and "reason=wrong password" in log
    assert "nope" not in log  # never the password


def _recv_all(sock: socket.socket, timeout_s: float) -> bytes:
    sock.settimeout(timeout_s)
    data = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except (ConnectionResetError, socket.timeout):
            return data
        if not chunk:
            return data
        data += chunk


def test_plaintext_client_on_tls_port_is_disconnected_cleanly(brokers, certs) -> None:
    broker = brokers["SSL"]
    # A Kafka request where a TLS ClientHello should be: the broker answers at most a TLS
    # alert and closes; it never answers in Kafka framing and keeps serving.
    with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as sock:
        sock.sendall(api_versions_request(correlation_id=1))
        data = _recv_all(sock, 5.0)
    assert data == b"" or data[:1] == b"\x15", data[:16]  # nothing, or a TLS alert record
    # A real client configured for PLAINTEXT fails to connect instead of hanging forever.
    error = connect_kafka_python(broker.bootstrap, Setup(protocol="PLAINTEXT"))
    assert error is not None
    assert broker.http("/health")[0] == 200
    assert connect_kafka_python(broker.bootstrap, _setup("SSL", certs)) is None
    from raw_wire import metric_total

    assert metric_total(broker.http("/metrics")[1].decode(), "streambus_protocol_errors_total",
                        reason="tls_handshake_failed") >= 1


def test_sasl_requests_before_authentication_are_refused(brokers) -> None:
    """Only ApiVersions and SaslHandshake before authenticating: a Metadata request closes the
    connection (Kafka's IllegalSaslStateException)."""
    broker = brokers["SASL_PLAINTEXT"]
    metadata_v1 = struct.pack(">hhih", 3, 1, 7, 4) + b"test" + struct.pack(">i", -1)
    with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as sock:
        sock.sendall(api_versions_request(correlation_id=1))
        (size,) = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))
        sock.recv(size, socket.MSG_WAITALL)
        sock.sendall(struct.pack(">i", len(metadata_v1)) + metadata_v1)
        assert _recv_all(sock, 5.0) == b""
