"""Test helpers shipped with the package (trio's ``trio.testing``): simulated time, network
and cluster for the pure Raft core, and contract suites any implementation must pass.

Nothing here is used by a running broker.
"""

from streambus.testing.clock import ManualClock as ManualClock
from streambus.testing.network import LinkFaults as LinkFaults
from streambus.testing.network import SimNetwork as SimNetwork

__all__ = ["ManualClock", "LinkFaults", "SimNetwork"]
