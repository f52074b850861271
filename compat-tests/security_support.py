"""Secured brokers and per-client security settings for the security compat tests.

This module owns: a self-signed CA plus server and client certificates made in the test
(``streambus.testing.tls_certs``, i.e. the ``cryptography`` package), the users file, starting a
broker with a YAML config of security settings, and translating one security setup (protocol,
mechanism, user, password, CA) into each real client's own option names. It never talks the
Kafka protocol itself.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from broker_process import Broker
from compat_clients import CLIENT_TIMEOUT_S, JS_DIR, REPO_ROOT, ClientError
from streambus.testing.tls_certs import CertificateFiles, make_tls_files

__all__ = ["PASSWORDS", "Setup", "start_secure_broker", "write_users_file"]

#: Test users; admin is a super user on every secured broker here.
PASSWORDS = {"admin": "admin-secret", "alice": "alice-secret",
             "producer-app": "producer-secret", "consumer-app": "consumer-secret"}


def write_users_file(path: Path, passwords: dict[str, str] = PASSWORDS) -> Path:
    path.write_text(yaml.safe_dump(
        {"users": [{"name": name, "password": pw} for name, pw in passwords.items()]}))
    return path


def start_secure_broker(work_dir: Path, config: dict[str, Any], *,
                        overrides: dict[str, str] | None = None) -> Broker:
    """A broker whose config file holds ``config`` (security, acls, listeners...)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    config_file = work_dir / "streambus.yaml"
    config_file.write_text(yaml.safe_dump(config))
    return Broker(work_dir, overrides=overrides, config_file=config_file).start()


def tls_security(certs: CertificateFiles, **extra: Any) -> dict[str, Any]:
    return {"tls_cert": str(certs.server_cert), "tls_key": str(certs.server_key),
            "tls_ca": str(certs.ca_cert), **extra}


@dataclass(frozen=True)
class Setup:
    """One way of connecting: protocol, SASL mechanism and credentials, trusted CA."""

    protocol: str  # SSL, SASL_PLAINTEXT, SASL_SSL
    mechanism: str | None = None
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL")

    def confluent(self) -> dict[str, Any]:
        config: dict[str, Any] = {"security.protocol": self.protocol}
        if self.sasl:
            config.update({"sasl.mechanisms": self.mechanism, "sasl.username": self.username,
                           "sasl.password": self.password})
        if self.tls:
            config["ssl.ca.location"] = str(self.ca_file)
            if self.cert_file:
                config.update({"ssl.certificate.location": str(self.cert_file),
                               "ssl.key.location": str(self.key_file)})
        return config

    kcat = confluent  # librdkafka's option names

    def kafka_python(self) -> dict[str, Any]:
        config: dict[str, Any] = {"security_protocol": self.protocol}
        if self.sasl:
            config.update({"sasl_mechanism": self.mechanism,
                           "sasl_plain_username": self.username,
                           "sasl_plain_password": self.password})
        if self.tls:
            config["ssl_cafile"] = str(self.ca_file)
            if self.cert_file:
                config.update({"ssl_certfile": str(self.cert_file),
                               "ssl_keyfile": str(self.key_file)})
        return config

    def aiokafka(self) -> dict[str, Any]:
        config: dict[str, Any] = {"security_protocol": self.protocol}
        if self.sasl:
            config.update({"sasl_mechanism": self.mechanism,
                           "sasl_plain_username": self.username,
                           "sasl_plain_password": self.password})
        if self.tls:
            from aiokafka.helpers import create_ssl_context

            config["ssl_context"] = create_ssl_context(
                cafile=str(self.ca_file),
                certfile=str(self.cert_file) if self.cert_file else None,
                keyfile=str(self.key_file) if self.key_file else None)
        return config

    def kafkajs(self) -> dict[str, Any]:
        security: dict[str, Any] = {}
        if self.sasl:
            security["sasl"] = {"mechanism": self.mechanism.lower(), "username": self.username,
                                "password": self.password}
        if self.tls:
            security["ssl"] = {"ca": str(self.ca_file)}
        return security

    def for_client(self, client: str) -> dict[str, Any]:
        return {"confluent-kafka": self.confluent, "kcat": self.kcat,
                "kafka-python": self.kafka_python, "aiokafka": self.aiokafka,
                "kafkajs": self.kafkajs}[client]()


# -- "try to connect, expect a refusal", one per client ---------------------------------------


def connect_confluent(bootstrap: str, setup: Setup, timeout_s: float = 10.0) -> str | None:
    """None when connected; otherwise librdkafka's error text."""
    from confluent_kafka.admin import AdminClient
    from confluent_kafka import KafkaException

    errors: list[str] = []
    admin = AdminClient({"bootstrap.servers": bootstrap, **setup.confluent(),
                         "error_cb": lambda error: errors.append(str(error))})
    try:
        admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        # The authentication error reaches error_cb, which only runs from poll().
        for _ in range(10):
            if errors:
                break
            admin.poll(0.2)
        return errors[0] if errors else str(exc)
    return errors[0] if errors else None


class _CapturedLogs:
    """Messages a client library logs while the block runs (kafka-python and aiokafka report
    the broker's SASL error in their log and raise a generic bootstrap error)."""

    def __init__(self, logger_name: str) -> None:
        import logging

        self.messages: list[str] = []
        self._logger = logging.getLogger(logger_name)
        self._handler = logging.Handler()
        self._handler.emit = lambda record: self.messages.append(  # type: ignore[method-assign]
            record.getMessage())

    def __enter__(self) -> "_CapturedLogs":
        self._logger.addHandler(self._handler)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._logger.removeHandler(self._handler)


def connect_kafka_python(bootstrap: str, setup: Setup) -> str | None:
    """None when connected; otherwise the exception plus what kafka-python logged."""
    from kafka import KafkaAdminClient

    with _CapturedLogs("kafka") as logs:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000,
                                     bootstrap_timeout_ms=5000, **setup.kafka_python())
        except Exception as exc:  # the client's own error type is the point
            return f"{type(exc).__name__}: {exc} | " + " | ".join(logs.messages)
    admin.close()
    return None


def connect_aiokafka(bootstrap: str, setup: Setup) -> str | None:
    """None when connected; otherwise the exception plus what aiokafka logged (it reports the
    SASL error in its log and raises KafkaConnectionError "Unable to bootstrap")."""
    import asyncio
    import logging

    from aiokafka import AIOKafkaProducer

    logged: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: logged.append(record.getMessage())  # type: ignore[method-assign]
    aiokafka_logger = logging.getLogger("aiokafka")
    aiokafka_logger.addHandler(handler)

    async def run() -> BaseException | None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=10000,
                                    **setup.aiokafka())
        try:
            await producer.start()
        except Exception as exc:
            await producer.stop()
            return exc
        await producer.stop()
        return None

    try:
        error = asyncio.run(run())
    finally:
        aiokafka_logger.removeHandler(handler)
    return None if error is None else f"{error!r} | " + " | ".join(logged)


def connect_kcat(bootstrap: str, setup: Setup) -> str | None:
    argv = ["kcat", "-L", "-b", bootstrap, "-m", "5"]
    for name, value in setup.kcat().items():
        argv += ["-X", f"{name}={value}"]
    completed = subprocess.run(argv, capture_output=True, timeout=CLIENT_TIMEOUT_S)
    if completed.returncode == 0:
        return None
    return completed.stderr.decode(errors="replace")


def connect_kafkajs(bootstrap: str, setup: Setup) -> dict | None:
    completed = subprocess.run(
        ["node", str(JS_DIR / "connect.js")],
        input=json.dumps({"brokers": [bootstrap], **setup.kafkajs()}).encode(),
        capture_output=True, timeout=60, cwd=REPO_ROOT)
    if completed.returncode != 0:
        raise ClientError(f"connect.js failed: {completed.stderr.decode(errors='replace')}")
    result = json.loads(completed.stdout)
    return None if result.get("ok") else result["error"]


def make_certs(directory: Path) -> CertificateFiles:
    return make_tls_files(directory)
