"""The config, partition, log-dir and DeleteRecords handlers on an in-process node.

Goal: every advertised version of each API can carry the responses the handlers build (the
codec raises on a non-ignorable field a version lacks), and the per-resource error rules
(duplicates, validate_only, unknown names) hold.

Method: start a BrokerNode on a temporary directory (listener bound to a free loopback port,
never used), call the handlers directly with a RequestContext per version, and encode each
response at that version.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable

import pytest

from streambus.broker.context import RequestContext
from streambus.broker.handlers import (
    all_handlers,
    alter_configs,
    create_partitions,
    create_topics,
    delete_records,
    describe_configs,
    describe_log_dirs,
    incremental_alter_configs,
)
from streambus.broker.node import BrokerNode
from streambus.config import BrokerConfig
from streambus.protocol import codec
from streambus.protocol.api_keys import ApiKey
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.alter_configs import AlterConfigsRequest
from streambus.protocol.messages.create_partitions import CreatePartitionsRequest
from streambus.protocol.messages.create_topics import CreateTopicsRequest
from streambus.protocol.messages.delete_records import DeleteRecordsRequest
from streambus.protocol.messages.describe_configs import DescribeConfigsRequest
from streambus.protocol.messages.describe_log_dirs import DescribeLogDirsRequest
from streambus.protocol.messages.incremental_alter_configs import IncrementalAlterConfigsRequest

_Alter = IncrementalAlterConfigsRequest


@pytest.fixture
def node(tmp_path: Path):
    loop = asyncio.new_event_loop()
    instance = BrokerNode(BrokerConfig(data_dir=tmp_path, listen="127.0.0.1:0",
                                       http_listen="127.0.0.1:0"))
    loop.run_until_complete(instance.start())
    create_topics.handle(_context(instance, 5), CreateTopicsRequest(topics=[
        CreateTopicsRequest.CreatableTopic(name="orders", num_partitions=1,
                                           replication_factor=1)]))
    yield instance
    loop.run_until_complete(instance.stop())
    loop.close()


def _context(node: BrokerNode, version: int) -> RequestContext:
    return RequestContext(header=None, api_version=version, client_host="127.0.0.1",  # type: ignore[arg-type]
                          node=node, connection_id=1)


def _describe() -> DescribeConfigsRequest:
    resource = DescribeConfigsRequest.DescribeConfigsResource
    return DescribeConfigsRequest(include_synonyms=True, resources=[
        resource(resource_type=2, resource_name="orders", configuration_keys=None),
        resource(resource_type=4, resource_name="1", configuration_keys=["log.retention.ms"]),
        resource(resource_type=4, resource_name="", configuration_keys=None),
        resource(resource_type=2, resource_name="missing", configuration_keys=None),
    ])


CASES: list[tuple[int, Callable[..., Any], Callable[[], Any]]] = [
    (ApiKey.DESCRIBE_CONFIGS, describe_configs.handle, _describe),
    (ApiKey.ALTER_CONFIGS, alter_configs.handle, lambda: AlterConfigsRequest(resources=[
        AlterConfigsRequest.AlterConfigsResource(resource_type=2, resource_name="orders", configs=[
            AlterConfigsRequest.AlterableConfig(name="retention.ms", value="soon")])])),
    (ApiKey.INCREMENTAL_ALTER_CONFIGS, incremental_alter_configs.handle, lambda: _Alter(
        validate_only=True, resources=[_Alter.AlterConfigsResource(
            resource_type=2, resource_name="orders", configs=[_Alter.AlterableConfig(
                name="retention.ms", config_operation=0, value="5")])])),
    (ApiKey.CREATE_PARTITIONS, create_partitions.handle, lambda: CreatePartitionsRequest(
        timeout_ms=1000, validate_only=True, topics=[
            CreatePartitionsRequest.CreatePartitionsTopic(name="orders", count=2,
                                                          assignments=None)])),
    (ApiKey.DELETE_RECORDS, delete_records.handle, lambda: DeleteRecordsRequest(
        timeout_ms=1000, topics=[DeleteRecordsRequest.DeleteRecordsTopic(name="orders", partitions=[
            DeleteRecordsRequest.DeleteRecordsPartition(partition_index=0, offset=-1),
            DeleteRecordsRequest.DeleteRecordsPartition(partition_index=7, offset=0)])])),
    (ApiKey.DESCRIBE_LOG_DIRS, describe_log_dirs.handle,
     lambda: DescribeLogDirsRequest(topics=None)),
]


@pytest.mark.parametrize("api_key,handler,request_factory", CASES,
                         ids=lambda value: getattr(value, "name", ""))
def test_every_advertised_version_carries_the_response(node: BrokerNode, api_key: int,
                                                       handler: Callable[..., Any],
                                                       request_factory: Callable[[], Any]) -> None:
    spec = {s.api_key: s for s in all_handlers()}[api_key]
    for version in range(spec.min_version, spec.max_version + 1):
        response = handler(_context(node, version), request_factory())
        assert codec.encode_response(api_key, version, response)


def test_duplicate_resources_are_refused_each(node: BrokerNode) -> None:
    resource = _Alter.AlterConfigsResource(resource_type=2, resource_name="orders", configs=[
        _Alter.AlterableConfig(name="retention.ms", config_operation=0, value="5")])
    response = incremental_alter_configs.handle(_context(node, 1), _Alter(
        resources=[resource, resource]))
    assert [r.error_code for r in response.responses] == [ErrorCode.INVALID_REQUEST] * 2
    assert node.image.topic_configs("orders") == {}


def test_validate_only_changes_nothing(node: BrokerNode) -> None:
    _, handler, factory = CASES[2]
    [result] = handler(_context(node, 1), factory()).responses
    assert result.error_code == 0 and node.image.topic_configs("orders") == {}
    [created] = create_partitions.handle(_context(node, 3), CASES[3][2]()).results
    assert created.error_code == 0 and len(node.image.topics_by_name["orders"].partitions) == 1


def test_describe_configs_sources_and_empty_key_list(node: BrokerNode) -> None:
    response = describe_configs.handle(_context(node, 4), _describe())
    topic, broker, defaults, missing = response.results
    assert len(topic.configs) > 20 and all(c.config_source == 5 for c in topic.configs)
    assert [(c.name, c.read_only) for c in broker.configs] == [("log.retention.ms", False)]
    assert defaults.configs == []  # nothing set cluster-wide yet
    assert missing.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
