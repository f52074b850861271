"""Hostile and unusual handshakes: 1,000 malformed SASL/TLS attempts while real clients work,
several listeners at once, SaslHandshake v0 raw tokens, KIP-368 re-authentication, mTLS
principals and certificate reload on SIGHUP.

Method: a broker with a SASL_SSL `listen` plus SASL_PLAINTEXT and PLAINTEXT entries in its
`listeners:` list. A seeded generator builds broken inputs from real ones (a real TLS
ClientHello cut or bit-flipped, real SaslHandshake/SaslAuthenticate frames with random or
truncated tokens, raw v0 tokens, random frames) and sends each on its own connection from 16
threads while an authenticated kafka-python producer keeps producing; afterwards every acked
record must be readable and the broker healthy. On failure the seed is in the assertion.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import ssl
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest

from broker_process import Broker, free_port
from raw_wire import metric_total
from compat_clients import consume_kafka_python, make_records, produce_confluent, unique_topic
from security_support import (
    PASSWORDS,
    Setup,
    connect_kafka_python,
    make_certs,
    start_secure_broker,
    tls_security,
    write_users_file,
)
from streambus.testing.tls_certs import make_tls_files

ATTEMPT_COUNT = 1000
FUZZ_THREADS = 16
SEED = int(os.environ.get("STREAMBUS_FUZZ_SEED", "20261128"))


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory):
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory, certs) -> Iterator[tuple[Broker, dict]]:
    """SASL_SSL on `listen`, plus SASL_PLAINTEXT and PLAINTEXT (ANONYMOUS is a super user,
    as for a loopback-only listener) in `listeners:`."""
    work_dir = tmp_path_factory.mktemp("multi")
    users = write_users_file(work_dir / "users.yaml")
    ports = {"INTERNAL": free_port(), "LOOPBACK": free_port()}
    broker = start_secure_broker(work_dir, {
        "security": {"tls_enabled": True, **tls_security(certs), "auth_enabled": True,
                     "users_file": str(users), "super_users": ["alice", "ANONYMOUS"]},
        "listeners": [
            {"name": "INTERNAL", "listen": f"127.0.0.1:{ports['INTERNAL']}",
             "security_protocol": "SASL_PLAINTEXT"},
            {"name": "LOOPBACK", "listen": f"127.0.0.1:{ports['LOOPBACK']}",
             "security_protocol": "PLAINTEXT"},
        ],
    })
    yield broker, ports
    broker.finish()


def _alice(protocol: str, certs, mechanism: str = "SCRAM-SHA-512") -> Setup:
    return Setup(protocol=protocol, mechanism=mechanism, username="alice",
                 password=PASSWORDS["alice"], ca_file=certs.ca_cert)


# -- raw frames -------------------------------------------------------------------------------


def _frame(api_key: int, version: int, correlation_id: int, body: bytes,
           client_id: bytes = b"fuzz") -> bytes:
    header = struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id
    if version >= 2 and api_key == 36:  # SaslAuthenticate v2 is flexible: header v2
        header += b"\x00"
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def _string(text: bytes) -> bytes:
    return struct.pack(">h", len(text)) + text


def sasl_handshake(mechanism: bytes, version: int = 1, correlation_id: int = 1) -> bytes:
    return _frame(17, version, correlation_id, _string(mechanism))


def sasl_authenticate(token: bytes, correlation_id: int = 2) -> bytes:
    return _frame(36, 1, correlation_id, struct.pack(">i", len(token)) + token)


def _read_frame(sock: socket.socket) -> bytes:
    head = _recv_exact(sock, 4)
    return _recv_exact(sock, struct.unpack(">i", head)[0])


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _client_hello() -> bytes:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def _mutate(rng: random.Random, data: bytes) -> bytes:
    choice = rng.randrange(4)
    if choice == 0 and data:
        return data[:rng.randrange(len(data))]  # truncated
    if choice == 1 and data:
        mutable = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            mutable[rng.randrange(len(mutable))] = rng.randrange(256)
        return bytes(mutable)
    if choice == 2:
        return data + rng.randbytes(rng.randint(1, 64))
    return rng.randbytes(rng.randint(0, 300))


def _attempt(rng: random.Random, tls_port: int, sasl_port: int, hello: bytes,
             certs) -> str:
    kind = rng.choice(("tls_bytes", "tls_bytes", "tls_inside", "handshake", "authenticate",
                       "authenticate", "raw_v0", "frames", "before_auth"))
    port = tls_port if kind.startswith("tls") else sasl_port
    sock = socket.create_connection(("127.0.0.1", port), timeout=2)
    try:
        sock.settimeout(0.2)
        if kind == "tls_bytes":
            sock.sendall(_mutate(rng, hello))
        elif kind == "tls_inside":
            context = ssl.create_default_context(cafile=str(certs.ca_cert))
            sock.settimeout(2)
            sock = context.wrap_socket(sock, server_hostname="127.0.0.1")
            sock.settimeout(0.2)
            sock.sendall(_mutate(rng, sasl_handshake(b"SCRAM-SHA-512")
                                 + sasl_authenticate(b"n,,n=alice,r=" + rng.randbytes(8).hex()
                                                     .encode())))
        elif kind == "handshake":
            mechanism = rng.choice((b"PLAIN", b"SCRAM-SHA-256", b"GSSAPI", rng.randbytes(12)))
            sock.sendall(_mutate(rng, sasl_handshake(mechanism)))
        elif kind == "authenticate":
            mechanism = rng.choice((b"PLAIN", b"SCRAM-SHA-256", b"SCRAM-SHA-512"))
            sock.sendall(sasl_handshake(mechanism))
            token = rng.choice((b"\0alice\0" + rng.randbytes(6),
                                b"n,,n=alice,r=" + rng.randbytes(10),
                                b"c=biws,r=x,p=" + rng.randbytes(20), rng.randbytes(40)))
            sock.sendall(_mutate(rng, sasl_authenticate(token)) if rng.random() < 0.5
                         else sasl_authenticate(token) * rng.randint(1, 3))
        elif kind == "raw_v0":
            sock.sendall(sasl_handshake(rng.choice((b"PLAIN", b"SCRAM-SHA-256")), version=0))
            token = _mutate(rng, b"\0alice\0wrong")
            sock.sendall(struct.pack(">i", len(token) + rng.choice((0, 0, 5))) + token)
        elif kind == "frames":
            sock.sendall(_mutate(rng, _frame(rng.randrange(-5, 80), rng.randrange(0, 20), 1,
                                             rng.randbytes(rng.randint(0, 40)))))
        else:  # a real request before authenticating
            sock.sendall(_frame(3, 1, 1, struct.pack(">i", -1)))
        try:
            while sock.recv(4096):
                pass
        except (socket.timeout, OSError):
            pass
    except (OSError, ssl.SSLError):
        pass  # refused handshakes surface here; that is the point
    finally:
        sock.close()
    return kind


def test_broker_serves_authenticated_clients_through_1000_malformed_handshakes(multi, certs
                                                                                 ) -> None:
    from kafka import KafkaProducer

    broker, ports = multi
    topic = unique_topic("fuzz")
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=0,
                             **_alice("SASL_SSL", certs).kafka_python())
    acked: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def produce_steadily() -> None:
        index = 0
        while not stop.is_set():
            try:
                metadata = producer.send(topic, f"steady-{index}".encode(), partition=0).get(10)
                acked.append(metadata.offset)
            except Exception as exc:  # any failure of the real client fails the test
                errors.append(exc)
                return
            index += 1
            time.sleep(0.005)

    writer = threading.Thread(target=produce_steadily, daemon=True)
    writer.start()
    hello = _client_hello()
    rng = random.Random(SEED)
    seeds = [rng.randrange(2**32) for _ in range(ATTEMPT_COUNT)]
    started = time.monotonic()
    with ThreadPoolExecutor(FUZZ_THREADS) as pool:
        kinds = list(pool.map(
            lambda seed: _attempt(random.Random(seed), broker.port, ports["INTERNAL"], hello,
                                  certs), seeds))
    elapsed_s = time.monotonic() - started
    stop.set()
    writer.join(15)
    producer.close(timeout=5)
    assert not errors, f"seed {SEED}: the authenticated producer failed: {errors[0]!r}"
    assert len(kinds) == ATTEMPT_COUNT and len(set(kinds)) == 7, (SEED, set(kinds))
    assert len(acked) >= 20, f"seed {SEED}: only {len(acked)} records in {elapsed_s:.1f}s"
    assert broker.http("/health")[0] == 200
    consumed = consume_kafka_python(broker.bootstrap, topic, len(acked),
                                    config=_alice("SASL_SSL", certs).kafka_python())
    assert [r.offset for r in consumed] == sorted(acked)
    status, body, _ = broker.http("/metrics")
    text = body.decode()
    assert 'streambus_security_authentications_total{mechanism="other",result="failed"}' in text
    assert 'result="failed"' in text
    assert metric_total(text, "streambus_protocol_errors_total",
                        reason="tls_handshake_failed") >= 50


def test_each_listener_speaks_its_own_protocol_and_advertises_itself(multi, certs) -> None:
    broker, ports = multi
    for protocol, port in (("SASL_SSL", broker.port),
                           ("SASL_PLAINTEXT", ports["INTERNAL"]),
                           ("PLAINTEXT", ports["LOOPBACK"])):
        from kafka import KafkaConsumer

        setup = _alice(protocol, certs) if protocol != "PLAINTEXT" else Setup("PLAINTEXT")
        consumer = KafkaConsumer(bootstrap_servers=f"127.0.0.1:{port}", group_id=None,
                                 **(setup.kafka_python() if protocol != "PLAINTEXT" else {}))
        try:
            consumer.topics()
            brokers = consumer._client.cluster.brokers()
            # Metadata names this node by the endpoint of the listener that was asked.
            assert {(b.host, b.port) for b in brokers} == {("127.0.0.1", port)}, protocol
        finally:
            consumer.close()
    # A SASL listener refuses a client that does not authenticate.
    assert connect_kafka_python(f"127.0.0.1:{ports['INTERNAL']}", Setup("PLAINTEXT")) is not None


def test_sasl_handshake_v0_then_raw_tokens(multi) -> None:
    """KIP-43's original framing, which librdkafka < 2.11 needs advertised: after
    SaslHandshake v0 the PLAIN token and its answer are bare size-prefixed blobs."""
    broker, ports = multi
    with socket.create_connection(("127.0.0.1", ports["INTERNAL"]), timeout=5) as sock:
        sock.sendall(sasl_handshake(b"PLAIN", version=0))
        answer = _read_frame(sock)
        assert struct.unpack_from(">h", answer, 4)[0] == 0  # error_code NONE
        token = b"\0alice\0" + PASSWORDS["alice"].encode()
        sock.sendall(struct.pack(">i", len(token)) + token)
        assert _recv_exact(sock, 4) == b"\0\0\0\0"  # PLAIN's empty server token
        sock.sendall(_frame(3, 1, 9, struct.pack(">i", -1)))  # Metadata v1, all topics
        assert struct.unpack_from(">i", _read_frame(sock))[0] == 9
    with socket.create_connection(("127.0.0.1", ports["INTERNAL"]), timeout=5) as sock:
        sock.sendall(sasl_handshake(b"PLAIN", version=0))
        _read_frame(sock)
        token = b"\0alice\0wrong"
        sock.sendall(struct.pack(">i", len(token)) + token)
        sock.settimeout(5)
        assert sock.recv(4) == b""  # a failed raw exchange can only be a closed connection


# -- KIP-368, mTLS, SIGHUP: brokers of their own -----------------------------------------------


def test_clients_reauthenticate_when_the_session_expires(tmp_path: Path, certs) -> None:
    users = write_users_file(tmp_path / "users.yaml")
    broker = start_secure_broker(tmp_path / "b", {"security": {
        "auth_enabled": True, "users_file": str(users), "super_users": ["alice"]}},
        overrides={"connections.max.reauth.ms": "1500"})
    try:
        from streambus.client.connection import BrokerConnection
        from streambus.client.errors import KafkaConnectionError
        from streambus.client.security import ClientSecurity
        from streambus.protocol.messages.metadata import MetadataRequest

        # librdkafka re-authenticates on the same connection before the lifetime runs out:
        # one producer keeps delivering for more than twice the session lifetime.
        from confluent_kafka import Producer

        topic = unique_topic("reauth")
        setup = _alice("SASL_PLAINTEXT", certs, "SCRAM-SHA-256")
        producer = Producer({"bootstrap.servers": broker.bootstrap, **setup.confluent()})
        delivered: list[object] = []
        for index in range(16):
            producer.produce(topic, f"r{index}".encode(), partition=0,
                             on_delivery=lambda error, message: delivered.append(error))
            producer.flush(10)
            time.sleep(0.25)
        assert delivered == [None] * 16
        producer.flush(5)
        text = broker.http("/metrics")[1].decode()
        # Re-authenticated in place (more successful SASL exchanges than connections), never
        # cut off for an expired session.
        assert metric_total(text, "streambus_protocol_errors_total",
                            reason="sasl_session_expired") == 0
        assert metric_total(text, "streambus_security_authentications_total", result="ok") > \
            metric_total(text, "streambus_connections_total")
        # A client that never re-authenticates is disconnected once its session expired.
        connection = BrokerConnection.open(
            ("127.0.0.1", broker.port), timeout_ms=5000,
            security=ClientSecurity("SASL_PLAINTEXT", "SCRAM-SHA-256", "alice",
                                    PASSWORDS["alice"]))
        connection.send(MetadataRequest(topics=None), 1)
        time.sleep(1.7)
        with pytest.raises(KafkaConnectionError):
            connection.send(MetadataRequest(topics=None), 1)
        assert "sasl_session_expired" in broker.http("/metrics")[1].decode()
    finally:
        broker.finish()


def test_mtls_certificate_subject_is_the_principal(tmp_path: Path, certs) -> None:
    principal = "User:CN=alice,O=StreamBus Test,C=US"
    broker = start_secure_broker(tmp_path / "b", {
        "security": {"tls_enabled": True, **tls_security(certs), "tls_client_auth": "required"},
        "acls": [{"principal": principal, "operations": ["write", "create"],
                  "resources": ["topic:mtls-*"]}],
    })
    try:
        with_cert = Setup("SSL", ca_file=certs.ca_cert, cert_file=certs.client_cert,
                          key_file=certs.client_key)
        topic = unique_topic("mtls")
        produced = produce_confluent(broker.bootstrap, topic, make_records(2),
                                     config=with_cert.confluent())
        assert produced.offsets == [0, 1]
        from kafka.errors import TopicAuthorizationFailedError

        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=False,
                                 max_block_ms=5000, **with_cert.kafka_python())
        try:
            with pytest.raises(TopicAuthorizationFailedError):
                producer.send(unique_topic("other"), b"x").get(10)
        finally:
            producer.close(timeout=5)
        # Without a client certificate the TLS handshake itself is refused.
        assert connect_kafka_python(broker.bootstrap, Setup("SSL", ca_file=certs.ca_cert))
    finally:
        broker.finish()


def test_sighup_reloads_the_certificate_without_dropping_connections(tmp_path: Path) -> None:
    from streambus.client.connection import BrokerConnection
    from streambus.client.security import ClientSecurity
    from streambus.protocol.messages.metadata import MetadataRequest

    first = make_tls_files(tmp_path / "first")
    live = tmp_path / "live"
    live.mkdir()
    for name in ("server.crt", "server.key", "ca.crt"):
        (live / name).write_bytes((tmp_path / "first" / name).read_bytes())
    broker = start_secure_broker(tmp_path / "b", {"security": {
        "tls_enabled": True, "tls_cert": str(live / "server.crt"),
        "tls_key": str(live / "server.key"), "min_tls_version": "1.3"}})
    try:
        def open_with(ca: Path) -> BrokerConnection:
            return BrokerConnection.open(("127.0.0.1", broker.port), timeout_ms=5000,
                                         security=ClientSecurity("SSL", ssl_cafile=str(ca)))

        established = open_with(first.ca_cert)
        assert established._sock.version() == "TLSv1.3"  # min_tls_version honoured
        second = make_tls_files(tmp_path / "second")
        for name in ("server.crt", "server.key"):
            (live / name).write_bytes((tmp_path / "second" / name).read_bytes())
        assert broker.process is not None
        broker.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "TLS certificate reloaded" not in broker.log_tail():
            assert time.monotonic() < deadline, broker.log_tail()
            time.sleep(0.05)
        open_with(second.ca_cert).close()  # new connections get the new certificate
        with pytest.raises(Exception):
            open_with(first.ca_cert)  # ... and no longer the old one
        established.send(MetadataRequest(topics=None), 1)  # the old connection lives on
        established.close()
    finally:
        broker.finish()


def test_unauthenticated_clients_cannot_send_large_frames(multi) -> None:
    """Before authenticating, a frame above 512 KiB (Kafka's sasl.server.max.receive.size) is
    refused at its size prefix; once authenticated, socket.request.max.bytes applies."""
    broker, ports = multi
    with socket.create_connection(("127.0.0.1", ports["INTERNAL"]), timeout=5) as sock:
        sock.sendall(struct.pack(">i", 600 * 1024) + b"\0" * 64)
        sock.settimeout(5)
        assert sock.recv(16) == b""
    with socket.create_connection(("127.0.0.1", ports["INTERNAL"]), timeout=5) as sock:
        sock.sendall(sasl_handshake(b"PLAIN"))
        _read_frame(sock)
        token = b"\0alice\0" + PASSWORDS["alice"].encode()
        sock.sendall(sasl_authenticate(token))
        answer = _read_frame(sock)
        assert struct.unpack_from(">h", answer, 4)[0] == 0
        # Now a 600 KiB request is served: Metadata v4 for 75,000 unknown topics, no
        # auto-creation.
        names = [f"x{index:05d}".encode() for index in range(75_000)]
        body = struct.pack(">i", len(names)) + b"".join(_string(n) for n in names) + b"\0"
        assert len(body) > 512 * 1024
        sock.sendall(_frame(3, 4, 5, body))
        assert struct.unpack_from(">i", _read_frame(sock))[0] == 5
