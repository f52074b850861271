"""Test helpers shipped with the package (trio's ``trio.testing``): simulated time, network
and cluster for the pure Raft core, and contract suites any implementation must pass.

Nothing here is used by a running broker.
"""

from streambus.testing.clock import ManualClock as ManualClock
from streambus.testing.network import LinkFaults as LinkFaults
from streambus.testing.network import SimNetwork as SimNetwork
from streambus.testing.storage_contract import check_raft_storage as check_raft_storage

__all__ = ["ManualClock", "LinkFaults", "SimNetwork", "check_raft_storage"]
