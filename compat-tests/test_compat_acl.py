"""The seed's ACLs, enforced against real clients, and ACL/SCRAM management without restart.

Goal: with the production checklist's example (`user:producer-app` may write `topic:events`,
`user:consumer-app` may read it), producer-app writes but cannot read `events`, consumer-app
reads but cannot write, neither can see or create other topics, and every denial reaches the
client as Kafka's authorization error. kafka-python's admin client (as the super user) creates,
lists and deletes ACLs and SCRAM users, and each change takes effect on the next request.

Method: one SASL_PLAINTEXT broker with the seed's `acls:` list in its config file; kafka-python
and confluent-kafka as the applications, with the errors each raises compared by type.
"""

from __future__ import annotations

import time
import uuid
from typing import Iterator

import pytest

from broker_process import Broker
from compat_clients import (
    ClientError,
    consume_confluent,
    consume_kcat,
    make_records,
    produce_confluent,
    require_client,
)
from security_support import PASSWORDS, Setup, start_secure_broker, write_users_file

SEED_ACLS = [
    {"principal": "user:producer-app", "operations": ["write"], "resources": ["topic:events"]},
    {"principal": "user:consumer-app", "operations": ["read"], "resources": ["topic:events"]},
]


def _setup(user: str, password: str | None = None) -> Setup:
    return Setup(protocol="SASL_PLAINTEXT", mechanism="SCRAM-SHA-256", username=user,
                 password=password or PASSWORDS[user])


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    work_dir = tmp_path_factory.mktemp("acl")
    users = write_users_file(work_dir / "users.yaml")
    instance = start_secure_broker(work_dir, {
        "security": {"auth_enabled": True, "auth_mechanism": "SCRAM-SHA-256",
                     "users_file": str(users), "super_users": ["admin"]},
        "acls": SEED_ACLS,
    })
    with _admin(instance) as admin:
        from kafka.admin import NewTopic

        admin.create_topics([NewTopic("events", 1, 1), NewTopic("other", 1, 1)])
    yield instance
    instance.finish()


class _admin:
    def __init__(self, broker: Broker, user: str = "admin", password: str | None = None):
        from kafka import KafkaAdminClient

        self.client = KafkaAdminClient(bootstrap_servers=broker.bootstrap,
                                       request_timeout_ms=10000,
                                       **_setup(user, password).kafka_python())

    def __enter__(self):
        return self.client

    def __exit__(self, *exc_info: object) -> None:
        self.client.close()


def _produce(broker: Broker, user: str, topic: str, *, idempotent: bool = True,
             password: str | None = None) -> int:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all",
                             enable_idempotence=idempotent, max_block_ms=5000,
                             **_setup(user, password).kafka_python())
    try:
        return producer.send(topic, b"value-from-" + user.encode(),
                             partition=0).get(timeout=10).offset
    finally:
        producer.close(timeout=5)


def _consume(broker: Broker, user: str, topic: str, count: int) -> list[bytes]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                             enable_auto_commit=False, **_setup(user).kafka_python())
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek(partition, 0)
        values: list[bytes] = []
        deadline = time.monotonic() + 15
        while len(values) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                values += [message.value for message in batch]
        return values
    finally:
        consumer.close()


def _visible_topics(broker: Broker, user: str) -> set[str]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                             **_setup(user).kafka_python())
    try:
        return set(consumer.topics())
    finally:
        consumer.close()


def test_producer_app_writes_events_but_cannot_read_them(broker: Broker) -> None:
    from kafka.errors import TopicAuthorizationFailedError

    # kafka-python's default producer is idempotent: InitProducerId is allowed by the WRITE
    # ACL on a topic (KIP-679), with no IDEMPOTENT_WRITE on the cluster.
    assert _produce(broker, "producer-app", "events") >= 0
    produce_confluent(broker.bootstrap, "events", make_records(3),
                      config=_setup("producer-app").confluent())
    with pytest.raises(TopicAuthorizationFailedError):
        _consume(broker, "producer-app", "events", 1)


def test_consumer_app_reads_events_but_cannot_write_them(broker: Broker) -> None:
    from kafka.errors import KafkaError, TopicAuthorizationFailedError

    _produce(broker, "producer-app", "events")
    assert b"value-from-producer-app" in _consume(broker, "consumer-app", "events", 1)
    # librdkafka as kcat runs it (assign, no group): a confluent-kafka Consumer always has a
    # group.id, and FindCoordinator for it is refused (no GROUP ACL in the seed), as on Kafka.
    require_client("kcat")
    consumed = consume_kcat(broker.bootstrap, "events", 1,
                            config=_setup("consumer-app").kcat())
    assert consumed[0].offset == 0
    with pytest.raises(TopicAuthorizationFailedError):
        _produce(broker, "consumer-app", "events", idempotent=False)
    # The idempotent default needs WRITE somewhere (or IDEMPOTENT_WRITE): InitProducerId is
    # refused with CLUSTER_AUTHORIZATION_FAILED (kafka-python wraps it in a KafkaError).
    with pytest.raises(KafkaError, match="ClusterAuthorizationFailed"):
        _produce(broker, "consumer-app", "events")
    with pytest.raises(ClientError, match="TOPIC_AUTHORIZATION_FAILED|Topic authorization"):
        produce_confluent(broker.bootstrap, "events", make_records(1),
                          config={**_setup("consumer-app").confluent(),
                                  "message.timeout.ms": 5000})


@pytest.mark.parametrize("user", ["producer-app", "consumer-app"])
def test_applications_neither_see_nor_create_other_topics(broker: Broker, user: str) -> None:
    from kafka.admin import NewTopic
    from kafka.errors import TopicAuthorizationFailedError

    assert _visible_topics(broker, user) == {"events"}
    with _admin(broker, user) as admin:
        with pytest.raises(TopicAuthorizationFailedError):
            admin.create_topics([NewTopic(f"new-{uuid.uuid4().hex[:8]}", 1, 1)])
    brand_new = f"brand-new-{uuid.uuid4().hex[:8]}"
    for topic in ("other", brand_new):
        with pytest.raises(TopicAuthorizationFailedError):
            _produce(broker, user, topic, idempotent=False)
    with _admin(broker) as admin:
        assert brand_new not in admin.list_topics()  # auto-creation was refused too


def test_denials_are_audited_and_counted(broker: Broker) -> None:
    with pytest.raises(Exception):
        _produce(broker, "consumer-app", "events", idempotent=False)
    log = broker.log_tail()
    assert ("authorization denied: principal=User:consumer-app client=127.0.0.1 "
            "operation=WRITE resource=TOPIC:events api=Produce") in log
    status, body, _ = broker.http("/metrics")
    assert 'streambus_security_authorization_denied_total{operation="WRITE",' \
           'resource_type="TOPIC"}' in body.decode()


def test_kafka_python_admin_manages_acls_and_users_without_restart(broker: Broker) -> None:
    from kafka.admin import (
        ACL,
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        NewTopic,
        ResourcePattern,
        ResourcePatternFilter,
        ResourceType,
        ScramMechanism,
        UserScramCredentialDeletion,
        UserScramCredentialUpsertion,
    )
    from kafka.errors import TopicAuthorizationFailedError

    user, password, topic = "carol", "carol-secret-1", f"carol-{uuid.uuid4().hex[:8]}"
    acl = ACL(principal=f"User:{user}", host="*", operation=ACLOperation.WRITE,
              permission_type=ACLPermissionType.ALLOW,
              resource_pattern=ResourcePattern(ResourceType.TOPIC, topic))
    with _admin(broker) as admin:
        admin.create_topics([NewTopic(topic, 1, 1)])
        admin.alter_user_scram_credentials([
            UserScramCredentialUpsertion(user, ScramMechanism.SCRAM_SHA_256, password,
                                         iterations=4096)])
        described = admin.describe_user_scram_credentials([user])
        assert str(described)  # kafka-python returns a per-user structure
        # The new user authenticates at once, but no ACL lets it write yet.
        with pytest.raises(TopicAuthorizationFailedError):
            _produce(broker, user, topic, idempotent=False, password=password)
        result = admin.create_acls([acl])
        assert not result["failed"], result
        assert _produce(broker, user, topic, password=password) == 0
        acls, error = admin.describe_acls(ACLFilter(
            principal=f"User:{user}", host="*", operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(ResourceType.ANY, None,
                                                   ACLResourcePatternType.ANY)))
        assert [a.resource_pattern.resource_name for a in acls] == [topic], (acls, error)
        deleted = admin.delete_acls([ACLFilter(
            principal=f"User:{user}", host="*", operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, topic,
                                                   ACLResourcePatternType.LITERAL))])
        assert len(deleted[0][1]) == 1, deleted
        with pytest.raises(TopicAuthorizationFailedError):
            _produce(broker, user, topic, idempotent=False, password=password)
        admin.alter_user_scram_credentials([
            UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_256)])
    from security_support import connect_kafka_python

    refused = connect_kafka_python(broker.bootstrap, _setup(user, password))
    assert refused is not None and "SaslAuthenticationFailedError" in refused


def test_group_consumers_need_a_group_acl(broker: Broker) -> None:
    """A consumer with a group.id needs READ on the group: without it FindCoordinator is
    refused with GROUP_AUTHORIZATION_FAILED, which librdkafka reports as such."""
    with pytest.raises(ClientError, match="GROUP_AUTHORIZATION_FAILED"):
        # Ask for more than exists: reading records never ends the poll loop before the
        # coordinator lookup's refusal arrives.
        consume_confluent(broker.bootstrap, "events", 1_000_000,
                          config=_setup("consumer-app").confluent(), timeout_s=15)


def test_group_acl_lets_a_group_consumer_join_commit_and_read(broker: Broker) -> None:
    """JoinGroup/SyncGroup/OffsetCommit/OffsetFetch need READ on the group (plus READ on the
    topic): refused with GroupAuthorizationFailedError until an admin grants it."""
    from kafka import KafkaConsumer
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ResourcePattern, ResourceType
    from kafka.errors import GroupAuthorizationFailedError

    group = f"cg-{uuid.uuid4().hex[:8]}"
    _produce(broker, "producer-app", "events")

    def consume_in_group() -> int:
        consumer = KafkaConsumer("events", bootstrap_servers=broker.bootstrap, group_id=group,
                                 auto_offset_reset="earliest", enable_auto_commit=False,
                                 **_setup("consumer-app").kafka_python())
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                records = consumer.poll(timeout_ms=500)
                if records:
                    consumer.commit()
                    return sum(len(batch) for batch in records.values())
            return 0
        finally:
            consumer.close()

    with pytest.raises(GroupAuthorizationFailedError):
        consume_in_group()
    with _admin(broker) as admin:
        admin.create_acls([ACL(principal="User:consumer-app", host="*",
                               operation=ACLOperation.READ,
                               permission_type=ACLPermissionType.ALLOW,
                               resource_pattern=ResourcePattern(ResourceType.GROUP, group))])
    assert consume_in_group() >= 1
    # WRITE does not imply DESCRIBE_CONFIGS: producer-app may not read the topic's configs.
    # (kafka-python's describe_configs drops per-resource errors; the streambus CLI shows them.)
    completed = _streambus_cli(broker, "producer-app", "configs", "describe", "--topic",
                               "events")
    assert completed.returncode == 1, completed
    assert "TOPIC_AUTHORIZATION_FAILED" in completed.stderr, completed.stderr
    allowed = _streambus_cli(broker, "admin", "configs", "describe", "--topic", "events")
    assert allowed.returncode == 0, allowed.stderr


def _streambus_cli(broker: Broker, user: str, *argv: str):
    import os
    import subprocess
    import sys

    from compat_clients import REPO_ROOT

    env = {**os.environ, "STREAMBUS_PASSWORD": PASSWORDS[user],
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                      os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-m", "streambus.cli.admin", "--bootstrap-server", broker.bootstrap,
         "--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "SCRAM-SHA-256",
         "--username", user, *argv],
        capture_output=True, text=True, timeout=60, env=env)


def test_streambus_cli_manages_users_and_acls(broker: Broker) -> None:
    """`streambus users` and `streambus acls` over SASL: a user added by the CLI logs in, an
    ACL added by the CLI lets it write, removing it takes the right away again."""
    import json
    import os
    import subprocess
    import sys

    from compat_clients import REPO_ROOT

    topic = f"cli-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "NEW_PASSWORD": "dana-secret-1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                      os.environ.get("PYTHONPATH")]))}
    added = subprocess.run(
        [sys.executable, "-m", "streambus.cli.admin", "--bootstrap-server", broker.bootstrap,
         "--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "SCRAM-SHA-256",
         "--username", "admin", "--password-env", "ADMIN_PASSWORD", "users", "add", "dana",
         "--new-password-env", "NEW_PASSWORD"],
        capture_output=True, text=True, timeout=60,
        env={**env, "ADMIN_PASSWORD": PASSWORDS["admin"]})
    assert added.returncode == 0, added.stderr
    listed = _streambus_cli(broker, "admin", "--output", "json", "users", "list", "dana")
    assert json.loads(listed.stdout)["users"][0]["name"] == "dana"
    assert _streambus_cli(broker, "admin", "topics", "create", topic).returncode == 0
    grant = _streambus_cli(broker, "admin", "acls", "add", "--principal", "User:dana",
                           "--operation", "write", "--topic", topic)
    assert grant.returncode == 0, grant.stderr
    assert _produce(broker, "dana", topic, password="dana-secret-1") == 0
    acls = json.loads(_streambus_cli(broker, "admin", "--output", "json", "acls", "list",
                                     "--principal", "User:dana").stdout)["acls"]
    assert [(a["operation"], a["resource_name"]) for a in acls] == [("WRITE", topic)]
    removed = _streambus_cli(broker, "admin", "acls", "remove", "--principal", "User:dana")
    assert removed.returncode == 0 and "Removed 1 ACL(s)." in removed.stdout
    from kafka.errors import TopicAuthorizationFailedError

    with pytest.raises(TopicAuthorizationFailedError):
        _produce(broker, "dana", topic, idempotent=False, password="dana-secret-1")
    assert _streambus_cli(broker, "admin", "users", "delete", "dana").returncode == 0
    denied = _streambus_cli(broker, "consumer-app", "acls", "list")
    assert denied.returncode == 1 and "CLUSTER_AUTHORIZATION_FAILED" in denied.stderr
