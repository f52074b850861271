"""Every transaction API at every advertised version, through the real handlers and node.

Goal: no response carries a field its version cannot (the codec raises on a non-ignorable
field a version lacks), the advertised ranges are Kafka 4's, and a whole transaction —
InitProducerId, AddPartitionsToTxn (client and v4+ broker forms), a transactional Produce,
AddOffsetsToTxn, TxnOffsetCommit, EndTxn, markers — works at each version, with fencing errors
shown as each version expects (INVALID_PRODUCER_EPOCH before KIP-588's PRODUCER_FENCED).
Method: an in-process BrokerNode on a temp dir; each request is encoded and decoded at the
version (as a client sends it), handled, and its response encoded and decoded back.
"""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

import pytest

from streambus.broker.context import RequestContext
from streambus.broker.handlers import (
    add_offsets_to_txn,
    add_partitions_to_txn,
    all_handlers,
    create_topics,
    describe_producers,
    describe_transactions,
    end_txn,
    init_producer_id,
    list_transactions,
    produce,
    txn_offset_commit,
    write_txn_markers,
)
from streambus.broker.node import BrokerNode
from streambus.config import BrokerConfig
from streambus.protocol import codec
from streambus.protocol.api_keys import ApiKey
from streambus.protocol.error_codes import ErrorCode as E
from streambus.protocol.messages.add_offsets_to_txn import AddOffsetsToTxnRequest
from streambus.protocol.messages.add_partitions_to_txn import AddPartitionsToTxnRequest
from streambus.protocol.messages.create_topics import CreateTopicsRequest
from streambus.protocol.messages.describe_producers import DescribeProducersRequest
from streambus.protocol.messages.describe_transactions import DescribeTransactionsRequest
from streambus.protocol.messages.end_txn import EndTxnRequest
from streambus.protocol.messages.init_producer_id import InitProducerIdRequest
from streambus.protocol.messages.list_transactions import ListTransactionsRequest
from streambus.protocol.messages.produce import ProduceRequest
from streambus.protocol.messages.txn_offset_commit import TxnOffsetCommitRequest
from streambus.protocol.messages.write_txn_markers import WriteTxnMarkersRequest
from streambus.protocol.records.record import build_batch

SPECS = {spec.api_key: spec for spec in all_handlers()}
TXN_APIS = {
    "INIT_PRODUCER_ID": (0, 5), "ADD_PARTITIONS_TO_TXN": (0, 5), "ADD_OFFSETS_TO_TXN": (0, 4),
    "END_TXN": (0, 5), "WRITE_TXN_MARKERS": (1, 1), "TXN_OFFSET_COMMIT": (0, 4),
    "DESCRIBE_PRODUCERS": (0, 0), "DESCRIBE_TRANSACTIONS": (0, 0), "LIST_TRANSACTIONS": (0, 1),
}


def versions(name: str) -> list[int]:
    spec = SPECS[ApiKey[name]]
    return list(range(spec.min_version, spec.max_version + 1))


def pick(name: str, index: int) -> int:
    choices = versions(name)
    return choices[index % len(choices)]


@pytest.fixture
def node(tmp_path: Path):
    loop = asyncio.new_event_loop()
    instance = BrokerNode(BrokerConfig(**{
        "data_dir": tmp_path, "listen": "127.0.0.1:0", "http_listen": "127.0.0.1:0",
        "transaction.state.log.num.partitions": 2, "offsets.topic.num.partitions": 2}))
    loop.run_until_complete(instance.start())
    instance.test_loop = loop  # type: ignore[attr-defined]
    create_topics.handle(context(instance, 5), CreateTopicsRequest(topics=[
        CreateTopicsRequest.CreatableTopic(name="orders", num_partitions=2,
                                           replication_factor=1)]))
    yield instance
    loop.run_until_complete(instance.stop())
    loop.close()


def context(node: BrokerNode, version: int) -> RequestContext:
    return RequestContext(header=None, api_version=version, client_host="127.0.0.1",  # type: ignore[arg-type]
                          node=node, connection_id=1)


def call(node: BrokerNode, api_key: int, version: int, handler: Any, request: Any) -> Any:
    """Encode/decode the request at ``version``, handle it, round-trip the response."""
    request = codec.decode_request(api_key, version, codec.encode_request(api_key, version, request))
    response = handler(context(node, version), request)
    if inspect.isawaitable(response):
        response = node.test_loop.run_until_complete(response)  # type: ignore[attr-defined]
    return codec.decode_response(api_key, version, codec.encode_response(api_key, version, response))


def settle(node: BrokerNode) -> None:
    """Let the coordinator's marker tasks run."""
    node.test_loop.run_until_complete(asyncio.sleep(0.2))  # type: ignore[attr-defined]


def test_advertised_ranges_are_kafka_4s() -> None:
    assert {name: (SPECS[ApiKey[name]].min_version, SPECS[ApiKey[name]].max_version)
            for name in TXN_APIS} == TXN_APIS


def init(node: BrokerNode, version: int, transactional_id: str) -> tuple[int, int]:
    response = call(node, ApiKey.INIT_PRODUCER_ID, version, init_producer_id.handle,
                    InitProducerIdRequest(transactional_id=transactional_id,
                                          transaction_timeout_ms=60_000))
    assert response.error_code == E.NONE
    return response.producer_id, response.producer_epoch


def add_partitions(node, version, transactional_id, producer_id, epoch, partitions=(0,)):
    topics = [AddPartitionsToTxnRequest.AddPartitionsToTxnTopic(name="orders",
                                                                partitions=list(partitions))]
    if version <= 3:
        request = AddPartitionsToTxnRequest(
            v3_and_below_transactional_id=transactional_id, v3_and_below_producer_id=producer_id,
            v3_and_below_producer_epoch=epoch, v3_and_below_topics=topics)
        response = call(node, ApiKey.ADD_PARTITIONS_TO_TXN, version,
                        add_partitions_to_txn.handle, request)
        return [p.partition_error_code for t in response.results_by_topic_v3_and_below
                for p in t.results_by_partition]
    request = AddPartitionsToTxnRequest(transactions=[
        AddPartitionsToTxnRequest.AddPartitionsToTxnTransaction(
            transactional_id=transactional_id, producer_id=producer_id, producer_epoch=epoch,
            verify_only=False, topics=topics)])
    response = call(node, ApiKey.ADD_PARTITIONS_TO_TXN, version, add_partitions_to_txn.handle,
                    request)
    assert response.error_code == E.NONE
    return [p.partition_error_code for r in response.results_by_transaction
            for t in r.topic_results for p in t.results_by_partition]


def produce_transactional(node, transactional_id, producer_id, epoch, sequence=0) -> int:
    batch = build_batch([(None, b"v", [], 1)], producer_id=producer_id, producer_epoch=epoch,
                        base_sequence=sequence, is_transactional=True)
    request = ProduceRequest(transactional_id=transactional_id, acks=-1, timeout_ms=1000,
                             topic_data=[ProduceRequest.TopicProduceData(name="orders", partition_data=[
                                 ProduceRequest.PartitionProduceData(index=0, records=batch)])])
    response = call(node, ApiKey.PRODUCE, 9, produce.handle, request)
    return response.responses[0].partition_responses[0].error_code


@pytest.mark.parametrize("index", range(6))
def test_a_transaction_at_each_version(node: BrokerNode, index: int) -> None:
    transactional_id = f"app-{index}"
    producer_id, epoch = init(node, pick("INIT_PRODUCER_ID", index), transactional_id)
    # A write to a partition not added to the transaction is refused (KIP-890).
    assert produce_transactional(node, transactional_id, producer_id, epoch) == \
        E.INVALID_TXN_STATE
    assert add_partitions(node, pick("ADD_PARTITIONS_TO_TXN", index), transactional_id,
                          producer_id, epoch) == [E.NONE]
    assert produce_transactional(node, transactional_id, producer_id, epoch) == E.NONE
    version = pick("ADD_OFFSETS_TO_TXN", index)
    response = call(node, ApiKey.ADD_OFFSETS_TO_TXN, version, add_offsets_to_txn.handle,
                    AddOffsetsToTxnRequest(transactional_id=transactional_id,
                                           producer_id=producer_id, producer_epoch=epoch,
                                           group_id="g"))
    assert response.error_code == E.NONE
    version = pick("TXN_OFFSET_COMMIT", index)
    response = call(node, ApiKey.TXN_OFFSET_COMMIT, version, txn_offset_commit.handle,
                    TxnOffsetCommitRequest(
                        transactional_id=transactional_id, group_id="g", producer_id=producer_id,
                        producer_epoch=epoch, topics=[
                            TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic(name="orders", partitions=[
                                TxnOffsetCommitRequest.TxnOffsetCommitRequestPartition(
                                    partition_index=0, committed_offset=1,
                                    committed_metadata="m")])]))
    assert [p.error_code for t in response.topics for p in t.partitions] == [E.NONE]
    partition = node.replica_manager.get("orders", 0)
    assert partition.log.last_stable_offset < partition.log.high_watermark
    version = pick("END_TXN", index)
    response = call(node, ApiKey.END_TXN, version, end_txn.handle, EndTxnRequest(
        transactional_id=transactional_id, producer_id=producer_id, producer_epoch=epoch,
        committed=True))
    assert response.error_code == E.NONE
    if version >= 5:
        assert (response.producer_id, response.producer_epoch) == (producer_id, epoch + 1)
    settle(node)
    assert partition.log.last_stable_offset == partition.log.high_watermark
    [state] = call(node, ApiKey.DESCRIBE_TRANSACTIONS, 0, describe_transactions.handle,
                   DescribeTransactionsRequest(transactional_ids=[transactional_id])
                   ).transaction_states
    assert (state.error_code, state.transaction_state) == (E.NONE, "CompleteCommit")
    offsets = node.group_coordinator.shard_for("g", create_topic=False)[1].offsets
    assert offsets["g"][("orders", 0)].committed_offset == 1
    # The old epoch is fenced now, in the words each version knows.
    version = pick("END_TXN", index)
    if version < 5:
        init(node, pick("INIT_PRODUCER_ID", index), transactional_id)
        response = call(node, ApiKey.END_TXN, version, end_txn.handle, EndTxnRequest(
            transactional_id=transactional_id, producer_id=producer_id, producer_epoch=epoch,
            committed=True))
        assert response.error_code == (E.PRODUCER_FENCED if version >= 2
                                       else E.INVALID_PRODUCER_EPOCH)


def test_admin_apis_and_markers(node: BrokerNode) -> None:
    producer_id, epoch = init(node, 4, "admin-app")
    add_partitions(node, 3, "admin-app", producer_id, epoch, partitions=(1,))
    batch = build_batch([(None, b"v", [], 1)], producer_id=producer_id, producer_epoch=epoch,
                        base_sequence=0, is_transactional=True)
    request = ProduceRequest(transactional_id="admin-app", acks=-1, timeout_ms=1000, topic_data=[
        ProduceRequest.TopicProduceData(name="orders", partition_data=[
            ProduceRequest.PartitionProduceData(index=1, records=batch)])])
    assert call(node, ApiKey.PRODUCE, 9, produce.handle, request
                ).responses[0].partition_responses[0].error_code == E.NONE
    for version in versions("LIST_TRANSACTIONS"):
        response = call(node, ApiKey.LIST_TRANSACTIONS, version, list_transactions.handle,
                        ListTransactionsRequest(state_filters=["Ongoing", "Bogus"]))
        assert response.unknown_state_filters == ["Bogus"]
        assert [(t.transactional_id, t.transaction_state) for t in response.transaction_states] \
            == [("admin-app", "Ongoing")]
    response = call(node, ApiKey.DESCRIBE_PRODUCERS, 0, describe_producers.handle,
                    DescribeProducersRequest(topics=[DescribeProducersRequest.TopicRequest(
                        name="orders", partition_indexes=[1, 9])]))
    [found, missing] = response.topics[0].partitions
    assert missing.error_code == E.UNKNOWN_TOPIC_OR_PARTITION
    [producer] = found.active_producers
    assert (producer.producer_id, producer.current_txn_start_offset) == (producer_id, 0)
    # An operator's abort of the hanging transaction (streambus transactions abort).
    marker = WriteTxnMarkersRequest.WritableTxnMarker(
        producer_id=producer_id, producer_epoch=epoch, transaction_result=False,
        coordinator_epoch=0, topics=[WriteTxnMarkersRequest.WritableTxnMarkerTopic(
            name="orders", partition_indexes=[1])])
    response = call(node, ApiKey.WRITE_TXN_MARKERS, 1, write_txn_markers.handle,
                    WriteTxnMarkersRequest(markers=[marker]))
    assert response.markers[0].topics[0].partitions[0].error_code == E.NONE
    log = node.replica_manager.get("orders", 1).log
    assert log.last_stable_offset == log.high_watermark == 2
    assert [(a.producer_id, a.first_offset) for a in log.aborted_transactions()] == \
        [(producer_id, 0)]
    [missing_state] = call(node, ApiKey.DESCRIBE_TRANSACTIONS, 0, describe_transactions.handle,
                           DescribeTransactionsRequest(transactional_ids=["nobody"])
                           ).transaction_states
    assert missing_state.error_code == E.TRANSACTIONAL_ID_NOT_FOUND
