"""One small module per Kafka API; this table says which versions each one serves.

Minimum versions follow Kafka 4's KIP-896 baselines, except where real clients need older
versions *advertised* (CLIENT_COMPATIBILITY.md §3.1): Produce is advertised from v0 (old
librdkafka compresses only when v0 is in range) but v0-v2 are rejected by the handler.
"""

from __future__ import annotations

from streambus.broker.cluster import controller_api
from streambus.broker.dispatch import HandlerSpec
from streambus.broker.handlers import (
    add_offsets_to_txn,
    add_partitions_to_txn,
    describe_producers,
    describe_transactions,
    end_txn,
    list_transactions,
    txn_offset_commit,
    write_txn_markers,
    alter_configs,
    api_versions,
    alter_user_scram_credentials,
    create_acls,
    delete_acls,
    describe_acls,
    describe_user_scram_credentials,
    sasl_authenticate,
    sasl_handshake,
    consumer_group_describe,
    consumer_group_heartbeat,
    create_partitions,
    create_topics,
    delete_groups,
    delete_records,
    delete_topics,
    describe_cluster,
    describe_configs,
    describe_quorum,
    describe_groups,
    describe_log_dirs,
    incremental_alter_configs,
    fetch,
    find_coordinator,
    heartbeat,
    init_producer_id,
    join_group,
    leave_group,
    list_groups,
    list_offsets,
    metadata,
    offset_commit,
    offset_delete,
    offset_fetch,
    produce,
    sync_group,
)
from streambus.protocol.api_keys import ApiKey

__all__ = ["all_handlers"]


def all_handlers() -> list[HandlerSpec]:
    table = [
        (ApiKey.PRODUCE, 0, 11, produce.handle, "Produce"),
        (ApiKey.FETCH, 4, 17, fetch.handle, "Fetch"),
        (ApiKey.LIST_OFFSETS, 1, 10, list_offsets.handle, "ListOffsets"),
        (ApiKey.METADATA, 0, 12, metadata.handle, "Metadata"),
        (ApiKey.FIND_COORDINATOR, 0, 6, find_coordinator.handle, "FindCoordinator"),
        (ApiKey.API_VERSIONS, 0, 4, api_versions.handle, "ApiVersions"),
        (ApiKey.CREATE_TOPICS, 2, 7, create_topics.handle, "CreateTopics"),
        (ApiKey.DELETE_TOPICS, 1, 6, delete_topics.handle, "DeleteTopics"),
        (ApiKey.INIT_PRODUCER_ID, 0, 5, init_producer_id.handle, "InitProducerId"),
        (ApiKey.DESCRIBE_CONFIGS, 1, 4, describe_configs.handle, "DescribeConfigs"),
        (ApiKey.DESCRIBE_CLUSTER, 0, 1, describe_cluster.handle, "DescribeCluster"),
        # Security: SaslHandshake v0 for librdkafka < 2.11, SaslAuthenticate v0 for kcat.
        (ApiKey.SASL_HANDSHAKE, 0, 1, sasl_handshake.handle, "SaslHandshake"),
        (ApiKey.SASL_AUTHENTICATE, 0, 2, sasl_authenticate.handle, "SaslAuthenticate"),
        (ApiKey.DESCRIBE_ACLS, 1, 3, describe_acls.handle, "DescribeAcls"),
        (ApiKey.CREATE_ACLS, 1, 3, create_acls.handle, "CreateAcls"),
        (ApiKey.DELETE_ACLS, 1, 3, delete_acls.handle, "DeleteAcls"),
        (ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS, 0, 0, describe_user_scram_credentials.handle,
         "DescribeUserScramCredentials"),
        (ApiKey.ALTER_USER_SCRAM_CREDENTIALS, 0, 0, alter_user_scram_credentials.handle,
         "AlterUserScramCredentials"),
        # Group coordinator: Kafka 4.1's ranges (JoinGroup v0-1 are back since KAFKA-19444).
        (ApiKey.OFFSET_COMMIT, 2, 9, offset_commit.handle, "OffsetCommit"),
        (ApiKey.OFFSET_FETCH, 1, 9, offset_fetch.handle, "OffsetFetch"),
        (ApiKey.JOIN_GROUP, 0, 9, join_group.handle, "JoinGroup"),
        (ApiKey.HEARTBEAT, 0, 4, heartbeat.handle, "Heartbeat"),
        (ApiKey.LEAVE_GROUP, 0, 5, leave_group.handle, "LeaveGroup"),
        (ApiKey.SYNC_GROUP, 0, 5, sync_group.handle, "SyncGroup"),
        (ApiKey.DESCRIBE_GROUPS, 0, 5, describe_groups.handle, "DescribeGroups"),
        (ApiKey.LIST_GROUPS, 0, 5, list_groups.handle, "ListGroups"),
        (ApiKey.DELETE_GROUPS, 0, 2, delete_groups.handle, "DeleteGroups"),
        (ApiKey.OFFSET_DELETE, 0, 0, offset_delete.handle, "OffsetDelete"),
        (ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, 1, consumer_group_heartbeat.handle,
         "ConsumerGroupHeartbeat"),
        (ApiKey.CONSUMER_GROUP_DESCRIBE, 0, 0, consumer_group_describe.handle,
         "ConsumerGroupDescribe"),
        (ApiKey.DELETE_RECORDS, 0, 2, delete_records.handle, "DeleteRecords"),
        (ApiKey.ALTER_CONFIGS, 0, 2, alter_configs.handle, "AlterConfigs"),
        (ApiKey.DESCRIBE_LOG_DIRS, 1, 4, describe_log_dirs.handle, "DescribeLogDirs"),
        (ApiKey.CREATE_PARTITIONS, 0, 3, create_partitions.handle, "CreatePartitions"),
        (ApiKey.INCREMENTAL_ALTER_CONFIGS, 0, 1, incremental_alter_configs.handle,
         "IncrementalAlterConfigs"),
        # Transactions (KIP-98/447/664/890): Kafka 4's ranges; WriteTxnMarkers is inter-broker.
        (ApiKey.ADD_PARTITIONS_TO_TXN, 0, 5, add_partitions_to_txn.handle, "AddPartitionsToTxn"),
        (ApiKey.ADD_OFFSETS_TO_TXN, 0, 4, add_offsets_to_txn.handle, "AddOffsetsToTxn"),
        (ApiKey.END_TXN, 0, 5, end_txn.handle, "EndTxn"),
        (ApiKey.WRITE_TXN_MARKERS, 1, 1, write_txn_markers.handle, "WriteTxnMarkers"),
        (ApiKey.TXN_OFFSET_COMMIT, 0, 4, txn_offset_commit.handle, "TxnOffsetCommit"),
        (ApiKey.DESCRIBE_PRODUCERS, 0, 0, describe_producers.handle, "DescribeProducers"),
        (ApiKey.DESCRIBE_TRANSACTIONS, 0, 0, describe_transactions.handle,
         "DescribeTransactions"),
        (ApiKey.LIST_TRANSACTIONS, 0, 1, list_transactions.handle, "ListTransactions"),
    ]
    # The metadata quorum: DescribeQuorum (KIP-595/836), and the requests that change metadata
    # run on the active controller in a cluster (streambus/broker/cluster.py).
    table.append((ApiKey.DESCRIBE_QUORUM, 0, 2, describe_quorum.handle, "DescribeQuorum"))
    return [HandlerSpec(int(key), low, high, _route(int(key), fn), name)
            for key, low, high, fn, name in table]


#: Requests whose records the active controller must write (Kafka's controller APIs).
_CONTROLLER_APIS = frozenset(int(key) for key in (
    ApiKey.CREATE_TOPICS, ApiKey.DELETE_TOPICS, ApiKey.CREATE_PARTITIONS,
    ApiKey.ALTER_CONFIGS, ApiKey.INCREMENTAL_ALTER_CONFIGS, ApiKey.CREATE_ACLS,
    ApiKey.DELETE_ACLS, ApiKey.ALTER_USER_SCRAM_CREDENTIALS))


def _route(api_key: int, handle):  # type: ignore[no-untyped-def]
    if api_key in _CONTROLLER_APIS:
        return controller_api(handle)
    if api_key == ApiKey.INIT_PRODUCER_ID:
        # Producer-id blocks come from the controller (Kafka's AllocateProducerIds).
        return controller_api(handle, applies=lambda request: request.transactional_id is None)
    return handle
