"""Topic administration over one broker connection: Metadata, CreateTopics, DeleteTopics,
DescribeConfigs, IncrementalAlterConfigs, CreatePartitions, DescribeLogDirs.

This module owns turning admin intentions into version-correct requests (the fields that differ
between versions are chosen here and nowhere else) and returning the broker's responses in one
version-independent shape. It never formats output and never raises for per-topic errors: those
stay in each result's ``error_code``, as Kafka's responses carry them, so callers decide which
ones matter (``--if-exists``). Whole-request failures raise ``streambus.client.errors``.

The transport is anything with ``version_for(api_key)`` and ``send(request, version)``
(:class:`streambus.client.connection.BrokerConnection`, or a fake in tests).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from streambus.client.connection import BrokerConnection, parse_bootstrap_servers
from streambus.client.errors import KafkaConnectionError, KafkaProtocolError
from streambus.client.groups import GroupAdminMixin
from streambus.client.security import ClientSecurity
from streambus.protocol.api_keys import ApiKey
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.create_partitions import (
    CreatePartitionsRequest,
    CreatePartitionsResponse,
)
from streambus.protocol.messages.create_topics import CreateTopicsRequest, CreateTopicsResponse
from streambus.protocol.messages.delete_topics import DeleteTopicsRequest
from streambus.protocol.messages.describe_configs import (
    DescribeConfigsRequest,
    DescribeConfigsResponse,
)
from streambus.protocol.messages.describe_log_dirs import (
    DescribeLogDirsRequest,
    DescribeLogDirsResponse,
)
from streambus.protocol.messages.incremental_alter_configs import (
    IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
)
from streambus.protocol.messages.metadata import MetadataRequest, MetadataResponse
from streambus.protocol.messages.alter_user_scram_credentials import (
    AlterUserScramCredentialsRequest,
)
from streambus.protocol.messages.create_acls import CreateAclsRequest
from streambus.protocol.messages.delete_acls import DeleteAclsRequest
from streambus.protocol.messages.describe_acls import DescribeAclsRequest, DescribeAclsResponse
from streambus.protocol.messages.describe_user_scram_credentials import (
    DescribeUserScramCredentialsRequest,
)

__all__ = [
    "CONFIG_RESOURCE_BROKER",
    "CONFIG_RESOURCE_TOPIC",
    "AdminClient",
    "DeletedTopic",
    "Transport",
    "connect_admin",
]

#: DescribeConfigs ``resource_type`` for topics (Kafka's ConfigResource.Type.TOPIC).
CONFIG_RESOURCE_TOPIC = 2
#: ... and for brokers; resource name "" is the cluster-wide default (ConfigResource.Type.BROKER).
CONFIG_RESOURCE_BROKER = 4


class Transport(Protocol):
    def version_for(self, api_key: int) -> int: ...

    def send(self, request: Any, version: int | None = None) -> Any: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class DeletedTopic:
    """One DeleteTopics result, the same for every version."""

    name: str
    topic_id: uuid.UUID
    error_code: int
    error_message: str | None = None


@dataclass(slots=True)
class AdminClient(GroupAdminMixin):
    """Admin requests against one broker.

    Args:
        transport: a negotiated connection (see module docstring).
        timeout_ms: the ``timeout_ms`` put into CreateTopics and DeleteTopics requests.
    """

    transport: Transport
    timeout_ms: int = 30000
    _closed: bool = field(default=False, repr=False)

    def metadata(self, topics: Sequence[str] | None = None) -> MetadataResponse:
        """Metadata for ``topics`` (all topics when None), never auto-creating any.

        Unknown topics come back with UNKNOWN_TOPIC_OR_PARTITION in their ``error_code``.
        """
        version = self.transport.version_for(ApiKey.METADATA)
        request = MetadataRequest()
        if topics is None:
            # v0 has no null array: an empty list meant "all topics" (KIP-4 changed this).
            request.topics = [] if version == 0 else None
        else:
            if version == 0 and not topics:
                raise ValueError("Metadata v0 cannot ask for zero topics")
            request.topics = [MetadataRequest.MetadataRequestTopic(name=name) for name in topics]
        if version >= 4:
            request.allow_auto_topic_creation = False
        return self.transport.send(request, version)

    def create_topics(self, topics: Sequence[CreateTopicsRequest.CreatableTopic],
                      validate_only: bool = False) -> list[CreateTopicsResponse.CreatableTopicResult]:
        """Create ``topics``; returns one result per topic, errors in ``error_code``."""
        version = self.transport.version_for(ApiKey.CREATE_TOPICS)
        request = CreateTopicsRequest(topics=list(topics), timeout_ms=self.timeout_ms)
        if validate_only:
            if version < 1:
                raise ValueError("CreateTopics v0 has no validate_only")
            request.validate_only = True
        response = self.transport.send(request, version)
        return list(response.topics)

    def delete_topics(self, names: Sequence[str]) -> list[DeletedTopic]:
        """Delete topics by name; returns one result per topic, errors in ``error_code``."""
        version = self.transport.version_for(ApiKey.DELETE_TOPICS)
        request = DeleteTopicsRequest(timeout_ms=self.timeout_ms)
        if version >= 6:
            # KIP-516: v6 names topics by name or id in DeleteTopicState.
            request.topics = [DeleteTopicsRequest.DeleteTopicState(name=name) for name in names]
        else:
            request.topic_names = list(names)
        response = self.transport.send(request, version)
        return [
            DeletedTopic(name=result.name or "", topic_id=result.topic_id,
                         error_code=result.error_code, error_message=result.error_message)
            for result in response.responses
        ]

    def describe_topic_configs(
        self, names: Sequence[str]
    ) -> dict[str, DescribeConfigsResponse.DescribeConfigsResult]:
        """Every config of each named topic, keyed by topic name.

        Raises:
            KafkaProtocolError: the broker left out a topic we asked about.
        """
        if not names:
            return {}
        version = self.transport.version_for(ApiKey.DESCRIBE_CONFIGS)
        request = DescribeConfigsRequest(resources=[
            DescribeConfigsRequest.DescribeConfigsResource(
                resource_type=CONFIG_RESOURCE_TOPIC, resource_name=name, configuration_keys=None)
            for name in names
        ])
        response = self.transport.send(request, version)
        results = {result.resource_name: result for result in response.results}
        missing = [name for name in names if name not in results]
        if missing:
            raise KafkaProtocolError(f"DescribeConfigs response lacks topics {missing}")
        return results

    def describe_configs(
        self, resources: Sequence[tuple[int, str]], include_synonyms: bool = True
    ) -> list[DescribeConfigsResponse.DescribeConfigsResult]:
        """Every config of each (resource type, name), in request order, with sources and
        (v1+) synonyms; errors stay in each result's ``error_code``."""
        version = self.transport.version_for(ApiKey.DESCRIBE_CONFIGS)
        request = DescribeConfigsRequest(resources=[
            DescribeConfigsRequest.DescribeConfigsResource(
                resource_type=resource_type, resource_name=name, configuration_keys=None)
            for resource_type, name in resources
        ])
        if version >= 1:
            request.include_synonyms = include_synonyms
        return list(self.transport.send(request, version).results)

    def incremental_alter_configs(
        self, resource_type: int, resource_name: str,
        operations: Sequence[tuple[str, int, str | None]], validate_only: bool = False,
    ) -> IncrementalAlterConfigsResponse.AlterConfigsResourceResponse:
        """Apply (name, operation, value) changes to one resource (KIP-339 operations:
        0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT); the result carries the error, if any."""
        version = self.transport.version_for(ApiKey.INCREMENTAL_ALTER_CONFIGS)
        request = IncrementalAlterConfigsRequest(
            resources=[IncrementalAlterConfigsRequest.AlterConfigsResource(
                resource_type=resource_type, resource_name=resource_name,
                configs=[IncrementalAlterConfigsRequest.AlterableConfig(
                    name=name, config_operation=operation, value=value)
                    for name, operation, value in operations])],
            validate_only=validate_only)
        [result] = self.transport.send(request, version).responses
        return result

    def create_partitions(
        self, name: str, count: int, validate_only: bool = False
    ) -> CreatePartitionsResponse.CreatePartitionsTopicResult:
        """Grow topic ``name`` to ``count`` partitions, placed by the broker."""
        version = self.transport.version_for(ApiKey.CREATE_PARTITIONS)
        request = CreatePartitionsRequest(
            topics=[CreatePartitionsRequest.CreatePartitionsTopic(name=name, count=count,
                                                                  assignments=None)],
            timeout_ms=self.timeout_ms, validate_only=validate_only)
        [result] = self.transport.send(request, version).results
        return result

    def describe_log_dirs(self, topics: Sequence[str] | None = None) -> DescribeLogDirsResponse:
        """Log directories with each partition's size (all partitions when ``topics`` is
        None; otherwise every partition of the named topics, found through Metadata)."""
        version = self.transport.version_for(ApiKey.DESCRIBE_LOG_DIRS)
        request = DescribeLogDirsRequest(topics=None)
        if topics is not None:
            metadata = self.metadata(list(topics))
            request.topics = [
                DescribeLogDirsRequest.DescribableLogDirTopic(
                    topic=topic.name or "",
                    partitions=sorted(p.partition_index for p in topic.partitions))
                for topic in metadata.topics if topic.partitions
            ]
        return self.transport.send(request, version)

    # -- ACLs and SCRAM users (KIP-140, KIP-554) ----------------------------------------------

    def create_acls(self, creations: Sequence[CreateAclsRequest.AclCreation]) -> list[Any]:
        """One AclCreationResult per creation, errors in ``error_code``."""
        response = self.transport.send(CreateAclsRequest(creations=list(creations)))
        return list(response.results)

    def describe_acls(self, acl_filter: DescribeAclsRequest) -> DescribeAclsResponse:
        """The ACLs matching ``acl_filter``; a request-level error stays in ``error_code``."""
        return self.transport.send(acl_filter)

    def delete_acls(self, filters: Sequence[DeleteAclsRequest.DeleteAclsFilter]) -> list[Any]:
        """One DeleteAclsFilterResult per filter, with the ACLs it removed."""
        response = self.transport.send(DeleteAclsRequest(filters=list(filters)))
        return list(response.filter_results)

    def describe_user_scram_credentials(self, users: Sequence[str] | None = None) -> Any:
        """Mechanisms and iterations of ``users`` (every user when None)."""
        request = DescribeUserScramCredentialsRequest(
            users=None if users is None else
            [DescribeUserScramCredentialsRequest.UserName(name=name) for name in users])
        return self.transport.send(request)

    def alter_user_scram_credentials(
        self,
        upsertions: Sequence[AlterUserScramCredentialsRequest.ScramCredentialUpsertion] = (),
        deletions: Sequence[AlterUserScramCredentialsRequest.ScramCredentialDeletion] = (),
    ) -> list[Any]:
        """One result per user. Build upsertions with `scram_upsertion` (salts locally, so the
        password never leaves this process)."""
        response = self.transport.send(AlterUserScramCredentialsRequest(
            upsertions=list(upsertions), deletions=list(deletions)))
        return list(response.results)

    # -- transactions (KIP-664) -------------------------------------------------------------

    def list_transactions(self, states: Sequence[str] = (), producer_ids: Sequence[int] = (),
                          duration_ms: int = -1) -> Any:
        """ListTransactions of this broker's coordinator (errors stay in ``error_code``)."""
        from streambus.protocol.messages.list_transactions import ListTransactionsRequest

        version = self.transport.version_for(ApiKey.LIST_TRANSACTIONS)
        request = ListTransactionsRequest(state_filters=list(states),
                                          producer_id_filters=list(producer_ids))
        if duration_ms >= 0:
            if version < 1:
                raise ValueError("ListTransactions v0 has no duration filter")
            request.duration_filter = duration_ms
        return self.transport.send(request, version)

    def describe_transactions(self, transactional_ids: Sequence[str]) -> list[Any]:
        """One TransactionState per id, errors in ``error_code``."""
        from streambus.protocol.messages.describe_transactions import DescribeTransactionsRequest

        response = self.transport.send(
            DescribeTransactionsRequest(transactional_ids=list(transactional_ids)))
        return list(response.transaction_states)

    def describe_producers(self, topic: str, partitions: Sequence[int]) -> list[Any]:
        """DescribeProducers: one PartitionResponse per partition of ``topic``."""
        from streambus.protocol.messages.describe_producers import DescribeProducersRequest

        response = self.transport.send(DescribeProducersRequest(topics=[
            DescribeProducersRequest.TopicRequest(name=topic,
                                                  partition_indexes=list(partitions))]))
        return [p for t in response.topics for p in t.partitions]

    def abort_transaction(self, topic: str, partition: int, producer_id: int,
                          producer_epoch: int, coordinator_epoch: int) -> int:
        """Write an ABORT marker for a hanging transaction (Kafka's ``abortTransaction``):
        WriteTxnMarkers to the partition's leader.  Returns the partition's error code."""
        from streambus.protocol.messages.write_txn_markers import WriteTxnMarkersRequest

        marker = WriteTxnMarkersRequest.WritableTxnMarker(
            producer_id=producer_id, producer_epoch=producer_epoch, transaction_result=False,
            coordinator_epoch=coordinator_epoch,
            topics=[WriteTxnMarkersRequest.WritableTxnMarkerTopic(
                name=topic, partition_indexes=[partition])])
        response = self.transport.send(WriteTxnMarkersRequest(markers=[marker]))
        return next((p.error_code for m in response.markers for t in m.topics
                     for p in t.partitions), ErrorCode.UNKNOWN_SERVER_ERROR)

    def describe_cluster(self) -> Any:
        """DescribeCluster (KIP-700): cluster id, controller id and the live brokers."""
        from streambus.protocol.messages.describe_cluster import DescribeClusterRequest

        version = self.transport.version_for(ApiKey.DESCRIBE_CLUSTER)
        request = DescribeClusterRequest(include_cluster_authorized_operations=False)
        if version >= 1:
            request.endpoint_type = 1  # brokers
        return self.transport.send(request, version)

    def describe_quorum(self) -> Any:
        """DescribeQuorum (KIP-595/836) of ``__cluster_metadata``-0; any broker forwards it
        to the quorum leader."""
        from streambus.protocol.messages.describe_quorum import DescribeQuorumRequest

        version = self.transport.version_for(ApiKey.DESCRIBE_QUORUM)
        request = DescribeQuorumRequest(topics=[DescribeQuorumRequest.TopicData(
            topic_name="__cluster_metadata",
            partitions=[DescribeQuorumRequest.PartitionData(partition_index=0)])])
        return self.transport.send(request, version)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.transport.close()

    def __enter__(self) -> "AdminClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def scram_upsertion(name: str, mechanism: str, password: str, *, iterations: int = 8192
                    ) -> AlterUserScramCredentialsRequest.ScramCredentialUpsertion:
    """An upsertion carrying a fresh salt and the salted password (KIP-554): the broker
    derives StoredKey/ServerKey and never sees the password."""
    import hashlib
    import os

    from streambus.security.users import MECHANISM_CODES

    digest = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}[mechanism]
    salt = os.urandom(32)
    salted = hashlib.pbkdf2_hmac(digest, password.encode("utf-8"), salt, iterations)
    return AlterUserScramCredentialsRequest.ScramCredentialUpsertion(
        name=name, mechanism=MECHANISM_CODES[mechanism], iterations=iterations, salt=salt,
        salted_password=salted)


def connect_admin(bootstrap_servers: str, *, timeout_ms: int,
                  client_id: str = "streambus-cli",
                  security: ClientSecurity | None = None) -> AdminClient:
    """Connect to the first reachable broker of ``host:port[,host:port...]``.

    Raises:
        ValueError: ``bootstrap_servers`` is malformed.
        KafkaConnectionError: no broker could be reached; the message lists every attempt.
    """
    failures = []
    for address in parse_bootstrap_servers(bootstrap_servers):
        try:
            connection = BrokerConnection.open(address, timeout_ms=timeout_ms, client_id=client_id,
                                               security=security)
        except KafkaConnectionError as exc:
            failures.append(str(exc))
            continue
        return AdminClient(connection, timeout_ms=timeout_ms)
    raise KafkaConnectionError("no broker reachable: " + "; ".join(failures))
