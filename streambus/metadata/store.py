"""The node-local metadata log: persists metadata records and publishes the image.

This module owns the ``__cluster_metadata-0`` partition on this node and the current
:class:`~streambus.metadata.image.MetadataImage`.  Each committed change is one record batch
whose records carry KRaft-framed metadata records (value = uvarint frame version, uvarint
record type, uvarint record version, record body — Kafka's ``MetadataRecordSerde``).

The log is a Raft log (``streambus.raft``): :meth:`MetadataStore.commit` proposes a batch and
the image changes only when the quorum commits it.  With one voter (a single node, no
``--voters``) that happens inside ``commit`` — fsync, commit, apply, publish — exactly as
before the quorum existed.  With several voters the active controller (the quorum leader)
sees its own proposals at once in :attr:`MetadataStore.image` (Kafka's controller applies
uncommitted records to its timeline state too) while listeners and followers see only
committed records; callers that must answer after commit collect their proposals with
:func:`proposal_scope` and wait for them.  On start the committed prefix is replayed (from the
latest snapshot, if any) to rebuild the image.
"""

from __future__ import annotations

import logging
import os
import random
import time
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Callable, Iterable, Iterator

from streambus.metadata.image import EMPTY_IMAGE, MetadataImage, apply_records
from streambus.protocol import codec
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.metadata_records import METADATA_RECORDS
from streambus.raft.driver import Proposal, RaftDriver
from streambus.raft.messages import Batch, SnapshotId
from streambus.raft.node import RaftNode
from streambus.raft.ready import Snapshot
from streambus.raft.settings import QuorumSettings
from streambus.raft.state import Role
from streambus.raft.storage import FileRaftStorage

__all__ = ["MetadataStore", "encode_metadata_record", "decode_metadata_record", "METADATA_TOPIC",
           "NotControllerError", "proposal_scope"]

METADATA_TOPIC = "__cluster_metadata"
_FRAME_VERSION = 1
_RECORD_TYPE_BY_CLASS = {cls: api_key for api_key, cls in METADATA_RECORDS.items()}

logger = logging.getLogger(__name__)

#: Proposals made by ``MetadataStore.commit`` in the current request (see proposal_scope).
_PROPOSALS: ContextVar[list[Proposal] | None] = ContextVar("streambus_metadata_proposals",
                                                           default=None)
_DRY_RUN: ContextVar[bool] = ContextVar("streambus_metadata_dry_run", default=False)


class NotControllerError(Exception):
    """A metadata write on a node that is not the active controller (NOT_CONTROLLER, 41)."""

    error_code = ErrorCode.NOT_CONTROLLER

    def __init__(self, leader_id: int) -> None:
        super().__init__(f"this node is not the active controller (quorum leader: {leader_id})")
        self.leader_id = leader_id


@contextmanager
def proposal_scope(*, dry_run: bool = False) -> Iterator[list[Proposal]]:
    """Collect the proposals ``MetadataStore.commit`` makes inside the block.

    With ``dry_run`` nothing is proposed at all: commit() returns the current image, so a
    handler can be run only to shape an error response.
    """
    proposals: list[Proposal] = []
    token = _PROPOSALS.set(proposals)
    dry_token = _DRY_RUN.set(dry_run)
    try:
        yield proposals
    finally:
        _DRY_RUN.reset(dry_token)
        _PROPOSALS.reset(token)


def _monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_uvarint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data) or shift > 28:
            raise ValueError("malformed metadata record frame")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def encode_metadata_record(record: object) -> bytes:
    record_type = _RECORD_TYPE_BY_CLASS[type(record)]
    version = type(record).VALID_VERSIONS[1]
    return (
        _uvarint(_FRAME_VERSION)
        + _uvarint(record_type)
        + _uvarint(version)
        + codec.encode(record, version)
    )


def decode_metadata_record(data: bytes) -> object:
    frame_version, position = _read_uvarint(data, 0)
    if frame_version != _FRAME_VERSION:
        raise ValueError(f"unknown metadata frame version {frame_version}")
    record_type, position = _read_uvarint(data, position)
    version, position = _read_uvarint(data, position)
    cls = METADATA_RECORDS[record_type]
    record, _ = codec.decode(cls, version, data, position)
    return record


class MetadataStore:
    """Owns the metadata log, the committed image and the active controller's view.

    Args:
        directory: the ``__cluster_metadata-0`` directory.
        clock_ms: wall clock in ms.
        quorum: the voters; default: this directory's node is the only voter.
        monotonic_ms: the clock Raft timers run on.
    """

    def __init__(self, directory: Path, clock_ms: Callable[[], int], *,
                 quorum: QuorumSettings | None = None,
                 monotonic_ms: Callable[[], int] | None = None) -> None:
        self._directory = directory
        self._clock_ms = clock_ms
        self._monotonic_ms = monotonic_ms or _monotonic_ms
        self.quorum = quorum or QuorumSettings.single(1)
        self._storage: FileRaftStorage | None = None
        self.driver: RaftDriver | None = None
        self._committed: MetadataImage = EMPTY_IMAGE
        self._speculative: MetadataImage | None = None
        self._pending: list[Proposal] = []
        self._listeners: list[Callable[[MetadataImage, MetadataImage], None]] = []
        self._record_bytes_since_snapshot = 0

    @property
    def image(self) -> MetadataImage:
        """The committed image; on the active controller, with its own pending writes."""
        return self._committed if self._speculative is None else self._speculative

    @property
    def committed_image(self) -> MetadataImage:
        return self._committed

    def open(self, *, clean_shutdown: bool) -> MetadataImage:
        self._directory.mkdir(parents=True, exist_ok=True)
        self._storage = FileRaftStorage(self._directory, self._clock_ms,
                                        clean_shutdown=clean_shutdown)
        # The only randomness Raft uses is election jitter; seed it per process.
        rng = random.Random(int.from_bytes(os.urandom(8), "big"))
        node = RaftNode(self.quorum.raft_config(), self._storage, rng)
        self.driver = RaftDriver(
            node, self._storage, tick_ms=self.quorum.tick_ms, monotonic_ms=self._monotonic_ms,
            wall_ms=self._clock_ms, send=None, apply_committed=self._apply_committed,
            load_snapshot=self._load_snapshot, on_change=self._on_raft_change)
        # A lone voter elects itself and commits its whole log right here (the replay).
        self.driver.process()
        image = self._committed
        logger.info("metadata log replayed to offset %d: %d topics (epoch %d, %s)",
                    image.offset, len(image.topics_by_name), node.epoch, node.role.value)
        return image

    def subscribe(self, listener: Callable[[MetadataImage, MetadataImage], None]) -> None:
        """Call ``listener(old_image, new_image)`` after each published change."""
        self._listeners.append(listener)

    def is_active_controller(self) -> bool:
        """Leader of the quorum with every earlier record applied: may validate and write."""
        driver = self.driver
        if driver is None:
            return False
        node = driver.node
        return (node.role is Role.LEADER and node.is_leader_ready
                and driver.applied_offset > node.epoch_start_offset)

    def commit(self, records: Iterable[object]) -> MetadataImage:
        """Propose ``records`` as one batch.

        Returns:
            With one voter: the image after the batch was fsynced, committed, applied and
            published.  With several: the active controller's image including the batch,
            which commits later (see :func:`proposal_scope`).

        Raises:
            NotControllerError: this node is not the active controller.
        """
        assert self.driver is not None, "open() first"
        records = list(records)
        if not records or _DRY_RUN.get():
            return self.image
        if not self.is_active_controller():
            raise NotControllerError(self.driver.node.leader_id)
        base = self.image
        proposal = self.driver.propose([encode_metadata_record(r) for r in records])
        if proposal.result is True:
            return self._committed  # a one-voter quorum commits synchronously
        if proposal.result is False:
            raise NotControllerError(self.driver.node.leader_id)
        self._speculative = apply_records(base, records, proposal.end_offset - 1)
        self._pending.append(proposal)
        scope = _PROPOSALS.get()
        if scope is not None:
            scope.append(proposal)
        return self._speculative

    # -- the Raft state machine -----------------------------------------------------------

    def _apply_committed(self, batches: list[Batch]) -> None:
        for batch in batches:
            old = self._committed
            if batch.control:
                self._committed = apply_records(old, (), batch.end_offset - 1)
                continue
            records = [decode_metadata_record(value) for value in batch.records]
            self._committed = apply_records(old, records, batch.end_offset - 1)
            self._record_bytes_since_snapshot += sum(len(v) for v in batch.records)
            for listener in self._listeners:
                listener(old, self._committed)
        committed_end = self._committed.offset + 1
        self._pending = [p for p in self._pending if p.end_offset > committed_end]
        if not self._pending:
            self._speculative = None

    def _load_snapshot(self, snapshot_id: SnapshotId) -> None:
        from streambus.raft.metadata.snapshot import decode_snapshot

        assert self._storage is not None
        data = self._storage.snapshot_data(snapshot_id)
        old = self._committed
        self._committed = decode_snapshot(data, snapshot_id.end_offset - 1,
                                          decode_metadata_record)
        self._speculative = None
        self._pending = []
        self._record_bytes_since_snapshot = 0
        logger.info("metadata image loaded from snapshot %d-%d: %d topics",
                    snapshot_id.end_offset, snapshot_id.epoch, len(self._committed.topics_by_name))
        for listener in self._listeners:
            listener(old, self._committed)

    def _on_raft_change(self) -> None:
        assert self.driver is not None
        if self.driver.node.role is not Role.LEADER:
            # Kafka's renounce(): the controller's uncommitted view is dropped.
            self._speculative = None
            self._pending = []
        self.maybe_snapshot()

    def maybe_snapshot(self) -> SnapshotId | None:
        """Snapshot the committed image once enough records were applied since the last
        (``metadata.log.max.record.bytes.between.snapshots``); the log then starts there."""
        from streambus.raft.metadata.snapshot import encode_snapshot

        driver = self.driver
        if (driver is None or self._storage is None
                or self._record_bytes_since_snapshot < self.quorum.snapshot_record_bytes):
            return None
        end_offset = self._committed.offset + 1
        node = driver.node
        if end_offset <= node.log_start_offset or end_offset > node.high_watermark:
            return None
        snapshot_id = SnapshotId(end_offset, node.epoch_of(end_offset - 1))
        data = encode_snapshot(self._committed, snapshot_id.epoch, self._clock_ms(),
                               encode_metadata_record)
        self._storage.save_snapshot(Snapshot(snapshot_id, data))
        node.snapshot_saved(snapshot_id)
        self._record_bytes_since_snapshot = 0
        logger.info("metadata snapshot at offset %d (%d bytes)", end_offset, len(data))
        driver.process()
        return snapshot_id

    def close(self, *, clean: bool = True) -> None:
        if self._storage is not None:
            self._storage.close(clean=clean)
            self._storage = None
