"""The KRaft-style metadata quorum: a pure Raft core plus the asyncio shell that drives it.

Layering (DESIGN §8): ``messages``, ``state``, ``quorum``, ``progress``, ``ready``,
``log_view`` and ``node`` are the pure core — no I/O, clock, threads or global randomness
(``tests/raft/test_raft_purity.py`` enforces it).  ``storage`` holds the storage protocol and
implementations, ``transport`` the Kafka-wire controller listener, ``driver`` the asyncio loop
that feeds ticks and messages to a :class:`RaftNode` and carries out its :class:`Ready`.
"""

from streambus.raft.messages import Batch as Batch
from streambus.raft.messages import SnapshotId as SnapshotId
from streambus.raft.node import NotLeaderError as NotLeaderError
from streambus.raft.node import QuorumInfo as QuorumInfo
from streambus.raft.node import RaftConfig as RaftConfig
from streambus.raft.node import RaftNode as RaftNode
from streambus.raft.ready import Ready as Ready
from streambus.raft.ready import Snapshot as Snapshot
from streambus.raft.state import QuorumState as QuorumState
from streambus.raft.state import Role as Role
from streambus.raft.storage import MemoryRaftStorage as MemoryRaftStorage

__all__ = ["Batch", "SnapshotId", "NotLeaderError", "QuorumInfo", "RaftConfig", "RaftNode",
           "Ready", "Snapshot", "QuorumState", "Role", "MemoryRaftStorage"]
