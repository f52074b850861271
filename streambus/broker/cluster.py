"""A node in a multi-node cluster: the quorum, the active controller's duties, broker liveness.

This module owns what a node does only when ``--voters`` names a quorum of several nodes
(a single node never builds a :class:`ClusterRuntime`, so the quick start is untouched):

* the **controller listener** (``--controller-listen``) carrying the KRaft RPCs of
  ``streambus.raft`` plus the controller APIs: Envelope (KIP-590 forwarding),
  BrokerRegistration / BrokerHeartbeat (KIP-631), DescribeQuorum and ApiVersions;
* **controller requests** (CreateTopics, DeleteTopics, CreatePartitions, config and ACL
  changes, producer-id blocks): the active controller runs the handler and answers once the
  records it proposed have committed; any other node forwards the request in an Envelope to
  the active controller and relays the answer, or — when no controller can be reached — answers
  NOT_CONTROLLER (41) on every entry, so clients refresh metadata and retry, as Kafka does;
* **broker registration and heartbeats**: each broker registers (starting fenced), is
  unfenced once its metadata caught up with its registration, and is fenced again when its
  heartbeats stop for ``broker.session.timeout.ms``; partitions it leads then have no leader
  until it returns.

It holds no protocol rules of its own: handlers build responses, ``streambus.raft`` decides
consensus, ``streambus.metadata`` owns the records.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import inspect
import ipaddress
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable

from streambus.broker.context import RequestContext
from streambus.metadata.store import NotControllerError, proposal_scope
from streambus.protocol import codec
from streambus.protocol.api_keys import VALID_VERSIONS, ApiKey
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.headers import (
    decode_request_header,
    decode_response_header,
    encode_request_header,
    encode_response_header,
    response_header_version,
)
from streambus.protocol.messages.allocate_producer_ids import (
    AllocateProducerIdsRequest,
    AllocateProducerIdsResponse,
)
from streambus.protocol.messages.api_versions import ApiVersionsResponse
from streambus.protocol.messages.broker_heartbeat import (
    BrokerHeartbeatRequest,
    BrokerHeartbeatResponse,
)
from streambus.protocol.messages.broker_registration import (
    BrokerRegistrationRequest,
    BrokerRegistrationResponse,
)
from streambus.protocol.messages.default_principal_data import DefaultPrincipalData
from streambus.protocol.messages.describe_quorum import (
    DescribeQuorumRequest,
    DescribeQuorumResponse,
)
from streambus.protocol.messages.envelope import EnvelopeRequest, EnvelopeResponse
from streambus.protocol.metadata_records import (
    FeatureLevelRecord,
    FenceBrokerRecord,
    PartitionChangeRecord,
    RegisterBrokerRecord,
    UnfenceBrokerRecord,
)
from streambus.raft.settings import QuorumSettings
from streambus.raft.state import Role
from streambus.raft.transport import ControllerListener, PeerClient, RaftChannel, RequestFailed
from streambus.raft.wire import METADATA_TOPIC, RAFT_API_VERSIONS

if TYPE_CHECKING:
    from streambus.broker.node import BrokerNode
    from streambus.metadata.store import MetadataStore

__all__ = ["ClusterRuntime", "controller_api", "quorum_settings", "cluster_id_for_voters",
           "describe_quorum_response", "CONTROLLER_LISTENER_NAME"]

logger = logging.getLogger(__name__)

CONTROLLER_LISTENER_NAME = "CONTROLLER"
#: metadata.version written by the first active controller (Kafka 3.9-era KRaft).
METADATA_VERSION = 21
#: How long a forwarded request may look for an active controller before NOT_CONTROLLER.
FORWARD_TIMEOUT_S = 10.0
#: How long a controller request waits for its records to commit.
COMMIT_TIMEOUT_S = 15.0
#: A forwarding node waits at most this long for its own image to show the change.
CATCH_UP_AFTER_FORWARD_S = 2.0
CONTROLLER_DUTY_INTERVAL_S = 0.25
_ENVELOPE_VERSION = 0
_HEARTBEAT_VERSION = 1
_REGISTRATION_VERSION = 4
_DESCRIBE_QUORUM_VERSION = 2
_CONNECTION_ID_FORWARDED = -1


def cluster_id_for_voters(voters: tuple[str, ...]) -> str:
    """A cluster id every node derives alike from the voter list (Kafka makes the operator
    format storage with one id; deriving it keeps ``--voters`` the only thing to agree on)."""
    digest = hashlib.sha256(",".join(sorted(voters)).encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def quorum_settings(config: Any) -> QuorumSettings:
    """The quorum a node's config describes (one voter when ``voters`` is empty)."""
    if not config.voters:
        return dataclasses.replace(
            QuorumSettings.single(config.node_id),
            snapshot_record_bytes=config.metadata_log_max_record_bytes_between_snapshots)
    return QuorumSettings(
        node_id=config.node_id, voters=config.voter_addresses,
        election_timeout_ms=config.quorum_election_timeout_ms,
        fetch_timeout_ms=config.quorum_fetch_timeout_ms,
        election_backoff_max_ms=config.quorum_election_backoff_max_ms,
        snapshot_record_bytes=config.metadata_log_max_record_bytes_between_snapshots)


# ===================================================================== controller requests


def controller_api(handle: Callable[[RequestContext, Any], Any], *,
                   applies: Callable[[Any], bool] = lambda request: True
                   ) -> Callable[[RequestContext, Any], Any]:
    """Wrap a handler whose request changes metadata: in a cluster it runs on the active
    controller (forwarded there if need be) and answers after its records commit.  On a
    single node the handler runs unchanged."""

    def gated(ctx: RequestContext, request: Any) -> Any:
        cluster = getattr(ctx.node, "cluster", None)
        if cluster is None or not applies(request):
            return handle(ctx, request)
        return cluster.run_controller_request(ctx, request, handle)

    gated.__name__ = getattr(handle, "__name__", "handle")
    gated.__wrapped__ = handle  # type: ignore[attr-defined]
    return gated


def _set_not_controller(value: Any, message: str) -> None:
    """Put NOT_CONTROLLER in every error field of a response, recursively (Kafka fails the
    whole request with NotControllerException)."""
    if isinstance(value, list):
        for item in value:
            _set_not_controller(item, message)
        return
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return
    for field in dataclasses.fields(value):
        name = field.name
        if name == "error_code":
            value.error_code = int(ErrorCode.NOT_CONTROLLER)
        elif name == "error_message":
            value.error_message = message
        elif name in ("producer_id", "producer_epoch"):
            setattr(value, name, -1)
        else:
            _set_not_controller(getattr(value, name), message)


def _not_controller(response: Any, message: str) -> Any:
    _set_not_controller(response, message)
    return response


# ===================================================================== DescribeQuorum


def describe_quorum_response(store: "MetadataStore", voters: dict[int, tuple[str, int]],
                             version: int) -> DescribeQuorumResponse:
    """DescribeQuorum answered by the quorum leader (NOT_LEADER_OR_FOLLOWER elsewhere)."""
    driver = store.driver
    info = driver.describe_quorum() if driver is not None else None
    if info is None:
        message = "this node is not the metadata quorum leader"
        partition = DescribeQuorumResponse.PartitionData(
            error_code=int(ErrorCode.NOT_LEADER_OR_FOLLOWER), error_message=message,
            leader_id=driver.node.leader_id if driver is not None else -1,
            leader_epoch=driver.node.epoch if driver is not None else -1)
        return DescribeQuorumResponse(topics=[DescribeQuorumResponse.TopicData(
            topic_name=METADATA_TOPIC, partitions=[partition])], error_message=None)

    def replica(state: Any) -> DescribeQuorumResponse.ReplicaState:
        return DescribeQuorumResponse.ReplicaState(
            replica_id=state.replica_id, log_end_offset=state.log_end_offset,
            last_fetch_timestamp=state.last_fetch_tick,
            last_caught_up_timestamp=state.last_caught_up_tick)

    partition = DescribeQuorumResponse.PartitionData(
        error_code=0, error_message=None, leader_id=info.leader_id,
        leader_epoch=info.leader_epoch, high_watermark=info.high_watermark,
        current_voters=[replica(v) for v in info.voters],
        observers=[replica(o) for o in info.observers])
    nodes = [] if version < 2 else [
        DescribeQuorumResponse.Node(node_id=node_id, listeners=[DescribeQuorumResponse.Listener(
            name=CONTROLLER_LISTENER_NAME, host=host, port=port)])
        for node_id, (host, port) in sorted(voters.items())]
    return DescribeQuorumResponse(error_code=0, error_message=None, nodes=nodes, topics=[
        DescribeQuorumResponse.TopicData(topic_name=METADATA_TOPIC, partitions=[partition])])


# ===================================================================== the runtime


class ClusterRuntime:
    """The cluster half of a :class:`~streambus.broker.node.BrokerNode`.

    Args:
        node: the node, read through its public attributes.
    """

    def __init__(self, node: "BrokerNode") -> None:
        config = node.config
        self.node = node
        self.config = config
        self.node_id = config.node_id
        self.is_broker = "broker" in config.process_roles
        self.is_controller = "controller" in config.process_roles
        self.voters = config.voter_addresses
        self.client = PeerClient()
        self.listener: ControllerListener | None = None
        self.channel: RaftChannel | None = None
        self.broker_epoch = -1
        self.fenced = True
        self.incarnation_id = uuid.uuid4()
        self._tasks: set[asyncio.Task] = set()
        self._stopping = False
        # Active-controller state: last heartbeat per broker (monotonic seconds), and the
        # last one actually received, with the broker epoch it carried.
        self._sessions: dict[int, float] = {}
        self._heard: dict[int, tuple[float, int]] = {}
        self._was_active = False
        self._auto_create_pending: set[str] = set()

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def store(self) -> "MetadataStore":
        store = self.node.metadata
        assert store is not None and store.driver is not None
        return store

    async def start_quorum(self) -> None:
        """Bind the controller listener, join the quorum and wait until caught up."""
        store = self.store
        driver = store.driver
        assert driver is not None
        tick_ms = store.quorum.tick_ms
        address = self.config.controller_host_port
        endpoint = None if address is None else (CONTROLLER_LISTENER_NAME, *address)
        self.channel = RaftChannel(self.node_id, self.node.cluster_id, self.voters,
                                   tick_ms=tick_ms, wall_ms=self.node.clock_ms,
                                   client=self.client, endpoint=endpoint)
        self.channel.deliver = driver.step
        driver.attach(self.channel.send)
        if address is not None:
            self.listener = ControllerListener(
                address[0], address[1], raft_request=self.channel.receive_request,
                handlers={
                    int(ApiKey.API_VERSIONS): self._on_api_versions,
                    int(ApiKey.ENVELOPE): self._on_envelope,
                    int(ApiKey.BROKER_REGISTRATION): self._on_broker_registration,
                    int(ApiKey.BROKER_HEARTBEAT): self._on_broker_heartbeat,
                    int(ApiKey.DESCRIBE_QUORUM): self._on_describe_quorum,
                    int(ApiKey.ALLOCATE_PRODUCER_IDS): self._on_allocate_producer_ids,
                })
            await self.listener.start()
            logger.info("controller listener on %s:%d", address[0], self.listener.port)
        driver.start()
        self._spawn(self._controller_duties())
        await self._wait_caught_up()

    async def _wait_caught_up(self) -> None:
        driver = self.store.driver
        assert driver is not None
        waited_s = 0.0
        while not driver.is_caught_up():
            await driver.changed(1.0)
            waited_s += 1.0
            if waited_s % 10 == 0:
                node = driver.node
                logger.info("waiting for the metadata quorum (%s, epoch %d, leader %d, "
                            "applied %d)", node.role.value, node.epoch, node.leader_id,
                            driver.applied_offset)
        logger.info("metadata caught up at offset %d", driver.applied_offset)

    async def start_broker(self) -> None:
        """Register this broker and wait until the controller unfences it."""
        if not self.is_broker:
            return
        self._spawn(self._broker_lifecycle())
        while self.fenced and not self._stopping:
            await self.store.driver.changed(0.2)

    async def stop(self) -> None:
        self._stopping = True
        if self.is_broker and self.broker_epoch >= 0:
            try:  # KIP-631 controlled shutdown: the controller fences us now, not in 9 s
                await asyncio.wait_for(self._send_heartbeat(want_shut_down=True, timeout_s=1.0),
                                       1.0)
            except (RequestFailed, NotControllerError, asyncio.TimeoutError):
                pass
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        driver = self.store.driver
        if driver is not None:
            await driver.stop(resign=True)  # EndQuorumEpoch goes out now
            await asyncio.sleep(0.05)  # let the transport write it
        if self.listener is not None:
            await self.listener.stop()
        self.client.close()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- views ----------------------------------------------------------------------------

    def is_active_controller(self) -> bool:
        return self.store.is_active_controller()

    def controller_id(self) -> int:
        """The id Metadata and DescribeCluster report as controller: the quorum leader when
        it is a live broker (clients then send admin requests straight to it), else this
        node, which forwards."""
        leader = self.store.driver.node.leader_id
        broker = self.node.image.brokers.get(leader)
        if broker is not None and not broker.fenced:
            return leader
        return self.node_id

    def quorum_view(self) -> dict[str, Any]:
        driver = self.store.driver
        node = driver.node
        return {"role": node.role.value, "epoch": node.epoch, "leader_id": node.leader_id,
                "high_watermark": node.high_watermark, "applied_offset": driver.applied_offset,
                "broker_epoch": self.broker_epoch, "fenced": self.fenced}

    async def describe_quorum(self, version: int) -> DescribeQuorumResponse:
        """DescribeQuorum from any node: answered by the leader (forwarded there)."""
        driver = self.store.driver
        leader = driver.node.leader_id
        address = self.voters.get(leader)
        if driver.node.role is Role.LEADER or address is None:
            return describe_quorum_response(self.store, self.voters, version)
        request = DescribeQuorumRequest(topics=[DescribeQuorumRequest.TopicData(
            topic_name=METADATA_TOPIC,
            partitions=[DescribeQuorumRequest.PartitionData(partition_index=0)])])
        try:
            return await self.client.request(address, int(ApiKey.DESCRIBE_QUORUM), version,
                                             request, DescribeQuorumResponse, timeout_s=5.0)
        except RequestFailed:
            return describe_quorum_response(self.store, self.voters, version)

    # -- controller requests --------------------------------------------------------------

    def run_controller_request(self, ctx: RequestContext, request: Any,
                               handle: Callable[[RequestContext, Any], Any]) -> Any:
        """Run a metadata-changing request where it belongs (see module docstring)."""
        if self.is_active_controller():
            with proposal_scope() as proposals:
                response = handle(ctx, request)
            if inspect.isawaitable(response):
                return self._await_handler(response)
            if not proposals:
                return response
            return self._after_commit(proposals, response)
        if ctx.connection_id == _CONNECTION_ID_FORWARDED:
            return self._refuse(ctx, request, handle)  # forwarded here, but we lost the lead
        return self._forward(ctx, request, handle)

    async def _await_handler(self, awaitable: Any) -> Any:
        with proposal_scope() as proposals:
            response = await awaitable
        return await self._after_commit(proposals, response) if proposals else response

    async def _after_commit(self, proposals: list, response: Any) -> Any:
        for proposal in proposals:
            if not await proposal.wait(COMMIT_TIMEOUT_S):
                return _not_controller(response, "the controller lost its leadership before "
                                                 "the change committed; retry")
        return response

    def _refuse(self, ctx: RequestContext, request: Any,
                handle: Callable[[RequestContext, Any], Any]) -> Any:
        with proposal_scope(dry_run=True):
            response = handle(ctx, request)
        leader = self.store.driver.node.leader_id
        return _not_controller(response, f"This node is not the active controller (leader: "
                                         f"{leader}).")

    async def _forward(self, ctx: RequestContext, request: Any,
                       handle: Callable[[RequestContext, Any], Any]) -> Any:
        api_key, version = ctx.header.api_key, ctx.api_version
        inner = (encode_request_header(api_key, version, ctx.header.correlation_id,
                                       ctx.header.client_id)
                 + codec.encode_request(api_key, version, request))
        envelope = EnvelopeRequest(request_data=inner,
                                   request_principal=_encode_principal(ctx.principal),
                                   client_host_address=_encode_host(ctx.client_host))
        deadline = time.monotonic() + FORWARD_TIMEOUT_S
        driver = self.store.driver
        while time.monotonic() < deadline:
            if self.is_active_controller():
                result = self.run_controller_request(ctx, request, handle)
                return await result if inspect.isawaitable(result) else result
            leader = driver.node.leader_id
            address = self.voters.get(leader)
            if address is not None and leader != self.node_id:
                try:
                    answer = await self.client.request(
                        address, int(ApiKey.ENVELOPE), _ENVELOPE_VERSION, envelope,
                        EnvelopeResponse, timeout_s=max(0.1, deadline - time.monotonic()))
                except RequestFailed:
                    answer = None
                if answer is not None and answer.error_code == 0 and answer.response_data:
                    data = answer.response_data
                    _, offset = decode_response_header(
                        data, response_header_version(api_key, version))
                    response = codec.decode_response(api_key, version, data, offset)
                    await self._catch_up_with_leader(CATCH_UP_AFTER_FORWARD_S)
                    return response
            await driver.changed(0.2)
        return self._refuse(ctx, request, handle)

    async def _catch_up_with_leader(self, timeout_s: float) -> None:
        """Wait until this node applied what the leader committed when it answered, so the
        client sees its own change here too (read-your-writes through any node)."""
        driver = self.store.driver
        deadline = time.monotonic() + timeout_s
        target = max(driver.node.leader_high_watermark, 0)
        await driver.changed(0.05)  # the Fetch that carries the new high watermark
        target = max(target, driver.node.leader_high_watermark)
        while driver.applied_offset < target and time.monotonic() < deadline:
            await driver.changed(0.05)
            target = max(target, driver.node.leader_high_watermark)

    def request_topic_creation(self, name: str, *, num_partitions: int = -1,
                               replication_factor: int = -1,
                               configs: dict[str, str] | None = None) -> None:
        """Metadata auto-creation on a node that is not the controller: forward a
        CreateTopics in the background (Kafka's AutoTopicCreationManager).  The coordinators
        create ``__consumer_offsets`` and ``__transaction_state`` this way too, with their
        own partition count and configs, and answer COORDINATOR_NOT_AVAILABLE until the
        topic is in the image."""
        if name in self._auto_create_pending or self._stopping:
            return
        self._auto_create_pending.add(name)
        self._spawn(self._auto_create(name, num_partitions, replication_factor, configs or {}))

    async def _auto_create(self, name: str, num_partitions: int = -1,
                           replication_factor: int = -1,
                           configs: dict[str, str] | None = None) -> None:
        from streambus.protocol.messages.create_topics import CreateTopicsRequest

        try:
            request = CreateTopicsRequest(timeout_ms=int(FORWARD_TIMEOUT_S * 1000), topics=[
                CreateTopicsRequest.CreatableTopic(
                    name=name, num_partitions=num_partitions,
                    replication_factor=replication_factor,
                    configs=[CreateTopicsRequest.CreatableTopicConfig(name=key, value=value)
                             for key, value in sorted((configs or {}).items())])])
            header = decode_request_header(encode_request_header(
                int(ApiKey.CREATE_TOPICS), 7, 0, "auto-create"))[0]
            ctx = RequestContext(header=header, api_version=7, client_host="127.0.0.1",
                                 node=self.node, connection_id=0)
            spec = self.node.dispatcher.handlers[int(ApiKey.CREATE_TOPICS)]
            result = spec.handle(ctx, request)
            if inspect.isawaitable(result):
                result = await result
            for topic in getattr(result, "topics", ()):
                if topic.error_code not in (0, int(ErrorCode.TOPIC_ALREADY_EXISTS)):
                    logger.warning("auto-creating topic %s failed: %s %s", name,
                                   ErrorCode.for_code(topic.error_code).name,
                                   topic.error_message)
        except Exception:
            logger.exception("auto-creating topic %s failed", name)
        finally:
            self._auto_create_pending.discard(name)

    # -- controller listener handlers -----------------------------------------------------

    def _on_api_versions(self, header: Any, request: Any, connection: Any) -> Any:
        keys = dict(RAFT_API_VERSIONS)
        for api_key in (ApiKey.API_VERSIONS, ApiKey.ENVELOPE, ApiKey.BROKER_REGISTRATION,
                        ApiKey.BROKER_HEARTBEAT, ApiKey.DESCRIBE_QUORUM,
                        ApiKey.ALLOCATE_PRODUCER_IDS):
            keys[int(api_key)] = VALID_VERSIONS[api_key]
        return ApiVersionsResponse(error_code=0, api_keys=[
            ApiVersionsResponse.ApiVersion(api_key=key, min_version=low, max_version=high)
            for key, (low, high) in sorted(keys.items())])

    def _on_describe_quorum(self, header: Any, request: DescribeQuorumRequest,
                            connection: Any) -> DescribeQuorumResponse:
        return describe_quorum_response(self.store, self.voters, header.api_version)

    async def _on_envelope(self, header: Any, request: EnvelopeRequest,
                           connection: Any) -> EnvelopeResponse:
        """KIP-590: run a forwarded request as the client that sent it."""
        if not self.is_active_controller():
            return EnvelopeResponse(error_code=int(ErrorCode.NOT_CONTROLLER))
        data = bytes(request.request_data)
        inner_header, offset = decode_request_header(data)
        spec = self.node.dispatcher.handlers.get(inner_header.api_key)
        version = inner_header.api_version
        if spec is None or not spec.min_version <= version <= spec.max_version:
            return EnvelopeResponse(error_code=int(ErrorCode.INVALID_REQUEST))
        inner = codec.decode_request(inner_header.api_key, version, data, offset)
        ctx = RequestContext(header=inner_header, api_version=version,
                             client_host=_decode_host(request.client_host_address),
                             node=self.node, connection_id=_CONNECTION_ID_FORWARDED,
                             principal=_decode_principal(request.request_principal))
        response = spec.handle(ctx, inner)
        if inspect.isawaitable(response):
            response = await response
        head = encode_response_header(inner_header.correlation_id,
                                      response_header_version(inner_header.api_key, version))
        body = codec.encode_response(inner_header.api_key, version, response)
        return EnvelopeResponse(error_code=0, response_data=head + body)

    async def _on_allocate_producer_ids(self, header: Any, request: AllocateProducerIdsRequest,
                                        connection: Any) -> AllocateProducerIdsResponse:
        """KIP-730: reserve the next block of producer ids for a broker (its transaction
        coordinator hands them out without a round trip per InitProducerId)."""
        from streambus.metadata import controller

        store = self.store
        if not store.is_active_controller():
            return AllocateProducerIdsResponse(error_code=int(ErrorCode.NOT_CONTROLLER))
        broker = store.image.brokers.get(request.broker_id)
        if broker is None or broker.broker_epoch != request.broker_epoch:
            return AllocateProducerIdsResponse(error_code=int(ErrorCode.STALE_BROKER_EPOCH))
        records, first = controller.allocate_producer_ids(store.image, request.broker_id)
        if not await self._commit(records):
            return AllocateProducerIdsResponse(error_code=int(ErrorCode.NOT_CONTROLLER))
        return AllocateProducerIdsResponse(error_code=0, producer_id_start=first,
                                           producer_id_len=controller.PRODUCER_ID_BLOCK_SIZE)

    async def allocate_producer_ids(self) -> tuple[int, int]:
        """A block of producer ids for this broker from the active controller.

        Returns:
            (first id, length).

        Raises:
            RequestFailed: no controller answered, or it refused.
        """
        request = AllocateProducerIdsRequest(broker_id=self.node_id,
                                             broker_epoch=self.broker_epoch)
        if self.is_active_controller():
            response = await self._on_allocate_producer_ids(None, request, None)
        else:
            response = await self._to_controller(int(ApiKey.ALLOCATE_PRODUCER_IDS), 0, request,
                                                 AllocateProducerIdsResponse)
        if response.error_code != 0:
            raise RequestFailed(f"AllocateProducerIds: {ErrorCode.for_code(response.error_code).name}")
        return response.producer_id_start, response.producer_id_len

    async def _on_broker_registration(self, header: Any, request: BrokerRegistrationRequest,
                                      connection: Any) -> BrokerRegistrationResponse:
        return await self.register_broker(request)

    async def _on_broker_heartbeat(self, header: Any, request: BrokerHeartbeatRequest,
                                   connection: Any) -> BrokerHeartbeatResponse:
        return await self.broker_heartbeat(request)

    # -- active controller: brokers -------------------------------------------------------

    async def register_broker(self, request: BrokerRegistrationRequest
                              ) -> BrokerRegistrationResponse:
        """KIP-631 BrokerRegistration: the broker starts fenced; its epoch is the offset of
        its RegisterBrokerRecord."""
        def error(code: ErrorCode) -> BrokerRegistrationResponse:
            return BrokerRegistrationResponse(error_code=int(code), broker_epoch=-1)

        store = self.store
        if not store.is_active_controller():
            return error(ErrorCode.NOT_CONTROLLER)
        if request.cluster_id != self.node.cluster_id:
            return error(ErrorCode.INCONSISTENT_CLUSTER_ID)
        existing = store.image.brokers.get(request.broker_id)
        now = time.monotonic()
        # Another incarnation that is still heartbeating owns the id (Kafka's
        # DUPLICATE_BROKER_REGISTRATION).  "Still" means within two heartbeat intervals, not
        # the whole session: a broker restarted after kill -9 re-registers in seconds.
        alive_s = min(self.config.broker_session_timeout_ms,
                      2 * self.config.broker_heartbeat_interval_ms + 1000) / 1000
        heard_at, heard_epoch = self._heard.get(request.broker_id, (0.0, -1))
        if (existing is not None and existing.incarnation_id != request.incarnation_id
                and not existing.fenced and heard_epoch == existing.broker_epoch
                and now - heard_at < alive_s):
            return error(ErrorCode.DUPLICATE_BROKER_REGISTRATION)
        broker_epoch = store.driver.node.log_end_offset
        record = RegisterBrokerRecord(
            broker_id=request.broker_id, incarnation_id=request.incarnation_id,
            broker_epoch=broker_epoch, rack=request.rack, fenced=True,
            end_points=[RegisterBrokerRecord.BrokerEndpoint(
                name=listener.name, host=listener.host, port=listener.port,
                security_protocol=listener.security_protocol)
                for listener in request.listeners])
        if not await self._commit([record]):
            return error(ErrorCode.NOT_CONTROLLER)
        self._sessions[request.broker_id] = now
        logger.info("registered broker %d with epoch %d", request.broker_id, broker_epoch)
        return BrokerRegistrationResponse(error_code=0, broker_epoch=broker_epoch)

    async def broker_heartbeat(self, request: BrokerHeartbeatRequest) -> BrokerHeartbeatResponse:
        def answer(code: ErrorCode, fenced: bool = True, caught_up: bool = False,
                   shut_down: bool = False) -> BrokerHeartbeatResponse:
            return BrokerHeartbeatResponse(error_code=int(code), is_caught_up=caught_up,
                                           is_fenced=fenced, should_shut_down=shut_down)

        store = self.store
        if not store.is_active_controller():
            return answer(ErrorCode.NOT_CONTROLLER)
        broker = store.image.brokers.get(request.broker_id)
        if broker is None or broker.broker_epoch != request.broker_epoch:
            return answer(ErrorCode.STALE_BROKER_EPOCH)
        self._sessions[request.broker_id] = time.monotonic()
        self._heard[request.broker_id] = (time.monotonic(), request.broker_epoch)
        caught_up = request.current_metadata_offset >= broker.broker_epoch
        if request.want_shut_down or request.want_fence:
            if not broker.fenced:
                await self._commit(self._fence_records(request.broker_id, broker.broker_epoch))
            self._sessions.pop(request.broker_id, None)
            return answer(ErrorCode.NONE, True, caught_up, request.want_shut_down)
        if broker.fenced and caught_up:
            if not await self._commit(self._unfence_records(request.broker_id,
                                                            broker.broker_epoch)):
                return answer(ErrorCode.NOT_CONTROLLER)
            logger.info("unfenced broker %d", request.broker_id)
            return answer(ErrorCode.NONE, False, True)
        return answer(ErrorCode.NONE, broker.fenced, caught_up)

    def _fence_records(self, broker_id: int, broker_epoch: int) -> list[object]:
        """Fence a broker and take away the leadership of every partition it leads (with one
        replica per partition there is no one to hand it to: the partition goes offline)."""
        records: list[object] = [FenceBrokerRecord(id=broker_id, epoch=broker_epoch)]
        for topic in self.store.image.topics_by_name.values():
            for partition in topic.partitions.values():
                if partition.leader == broker_id:
                    others = [r for r in partition.replicas if r != broker_id
                              and self._is_live_broker(r)]
                    records.append(PartitionChangeRecord(
                        partition_id=partition.partition_index, topic_id=topic.topic_id,
                        leader=others[0] if others else -1))
        return records

    def _unfence_records(self, broker_id: int, broker_epoch: int) -> list[object]:
        records: list[object] = [UnfenceBrokerRecord(id=broker_id, epoch=broker_epoch)]
        for topic in self.store.image.topics_by_name.values():
            for partition in topic.partitions.values():
                if partition.leader == -1 and broker_id in partition.replicas:
                    records.append(PartitionChangeRecord(
                        partition_id=partition.partition_index, topic_id=topic.topic_id,
                        leader=broker_id))
        return records

    def _is_live_broker(self, broker_id: int) -> bool:
        broker = self.store.image.brokers.get(broker_id)
        return broker is not None and not broker.fenced

    async def _commit(self, records: list[object]) -> bool:
        try:
            with proposal_scope() as proposals:
                self.store.commit(records)
        except NotControllerError:
            return False
        for proposal in proposals:
            if not await proposal.wait(COMMIT_TIMEOUT_S):
                return False
        return True

    async def _controller_duties(self) -> None:
        """While active: bootstrap the cluster's features, and fence brokers whose
        heartbeats stopped (KIP-631 ``broker.session.timeout.ms``)."""
        while not self._stopping:
            await asyncio.sleep(CONTROLLER_DUTY_INTERVAL_S)
            try:
                await self._controller_duty_pass()
            except Exception:  # duties must never stop for good
                logger.exception("controller duty pass failed")

    async def _controller_duty_pass(self) -> None:
        store = self.store
        active = store.is_active_controller()
        if not active:
            self._was_active = False
            return
        now = time.monotonic()
        image = store.image
        if not self._was_active:
            self._was_active = True
            # A new controller gives every broker a full session before fencing it.
            self._sessions = {broker_id: now for broker_id in image.brokers}
            logger.info("node %d is the active controller (epoch %d)", self.node_id,
                        store.driver.node.epoch)
            if "metadata.version" not in image.features:
                await self._commit([FeatureLevelRecord(name="metadata.version",
                                                       feature_level=METADATA_VERSION)])
        session_s = self.config.broker_session_timeout_ms / 1000
        for broker in sorted(image.brokers.values(), key=lambda b: b.broker_id):
            last = self._sessions.setdefault(broker.broker_id, now)
            if not broker.fenced and now - last > session_s:
                logger.warning("fencing broker %d: no heartbeat for %.1f s", broker.broker_id,
                               now - last)
                await self._commit(self._fence_records(broker.broker_id, broker.broker_epoch))

    # -- this broker's registration and heartbeats ----------------------------------------

    async def _broker_lifecycle(self) -> None:
        interval_s = self.config.broker_heartbeat_interval_ms / 1000
        while not self._stopping:
            try:
                if self.broker_epoch < 0:
                    await self._register()
                else:
                    await self._send_heartbeat()
            except (RequestFailed, NotControllerError, asyncio.TimeoutError) as exc:
                logger.debug("broker heartbeat: %s", exc)
            except Exception:
                logger.exception("broker lifecycle step failed")
            # Heartbeat quickly until unfenced so a new broker serves soon (Kafka does the
            # same with its initial registration retries).
            await asyncio.sleep(interval_s if not self.fenced else min(interval_s, 0.2))

    def _registration_request(self) -> BrokerRegistrationRequest:
        from streambus.config import SECURITY_PROTOCOL_IDS

        node = self.node
        listeners = [
            BrokerRegistrationRequest.Listener(
                name=spec.name, host=node.advertised_endpoints[spec.name][0],
                port=node.advertised_endpoints[spec.name][1],
                security_protocol=SECURITY_PROTOCOL_IDS[spec.security_protocol])
            for spec in node.listener_specs]
        return BrokerRegistrationRequest(
            broker_id=self.node_id, cluster_id=node.cluster_id,
            incarnation_id=self.incarnation_id, listeners=listeners, rack=None,
            features=[BrokerRegistrationRequest.Feature(
                name="metadata.version", min_supported_version=1,
                max_supported_version=METADATA_VERSION)])

    async def _register(self) -> None:
        request = self._registration_request()
        if self.is_active_controller():
            response = await self.register_broker(request)
        else:
            response = await self._to_controller(int(ApiKey.BROKER_REGISTRATION),
                                                 _REGISTRATION_VERSION, request,
                                                 BrokerRegistrationResponse)
        if response.error_code == 0:
            self.broker_epoch = response.broker_epoch
            self.fenced = True
            logger.info("broker %d registered with epoch %d", self.node_id, self.broker_epoch)
            await self._send_heartbeat()
        elif response.error_code == ErrorCode.DUPLICATE_BROKER_REGISTRATION:
            logger.info("broker %d: the controller still sees our previous incarnation; "
                        "retrying once its session expires", self.node_id)

    async def _send_heartbeat(self, *, want_shut_down: bool = False,
                              timeout_s: float = 5.0) -> None:
        driver = self.store.driver
        request = BrokerHeartbeatRequest(
            broker_id=self.node_id, broker_epoch=self.broker_epoch,
            current_metadata_offset=max(driver.applied_offset - 1, 0),
            want_fence=False, want_shut_down=want_shut_down)
        if self.is_active_controller():
            response = await self.broker_heartbeat(request)
        else:
            response = await self._to_controller(int(ApiKey.BROKER_HEARTBEAT),
                                                 _HEARTBEAT_VERSION, request,
                                                 BrokerHeartbeatResponse, timeout_s)
        if response.error_code == ErrorCode.STALE_BROKER_EPOCH:
            self.broker_epoch = -1  # the controller forgot us (or fenced a former incarnation)
            self.fenced = True
            return
        if response.error_code == 0:
            was_fenced, self.fenced = self.fenced, response.is_fenced
            if was_fenced and not self.fenced:
                logger.info("broker %d unfenced", self.node_id)
                self.store.driver.process()  # wake waiters in start_broker

    async def _to_controller(self, api_key: int, version: int, request: Any,
                             response_class: type, timeout_s: float = 5.0) -> Any:
        leader = self.store.driver.node.leader_id
        address = self.voters.get(leader)
        if address is None:
            raise RequestFailed("no known controller")
        return await self.client.request(address, api_key, version, request, response_class,
                                         timeout_s)


def _encode_principal(principal: str) -> bytes:
    principal_type, _, name = principal.partition(":")
    return codec.encode(DefaultPrincipalData(type=principal_type, name=name,
                                             token_authenticated=False), 0)


def _decode_principal(data: bytes | None) -> str:
    if not data:
        return "User:ANONYMOUS"
    principal, _ = codec.decode(DefaultPrincipalData, 0, bytes(data))
    return f"{principal.type}:{principal.name}"


def _encode_host(host: str) -> bytes:
    try:
        return ipaddress.ip_address(host).packed
    except ValueError:
        return b""


def _decode_host(data: bytes) -> str:
    try:
        return str(ipaddress.ip_address(bytes(data)))
    except ValueError:
        return "?"
