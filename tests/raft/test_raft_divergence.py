"""Log divergence cases A-G (Vanlightly, kafka-tlaplus ``3_log_divergence.md``): a follower
whose log differs from the leader's ends with exactly the leader's log, and never truncates
below its high watermark.

Method: fill the storages of a two-voter quorum (1 leads, 2 follows) with the given batches,
start both, let 1 win a fresh election, run the exchange to quiescence and compare logs.
Logs are written as epochs per offset, e.g. ``"1 1 2"`` = three one-record batches.
"""

from __future__ import annotations

import pytest

from streambus.raft.messages import Batch
from streambus.raft.state import QuorumState, Role
from streambus.testing.interaction import InteractionEnv


def _fill(env: InteractionEnv, node_id: int, epochs: str) -> None:
    storage = env.replicas[node_id].storage
    for offset, epoch in enumerate(int(e) for e in epochs.split()):
        storage.append([Batch(offset, epoch, (b"%d-%d" % (epoch, offset),))])
    storage.sync()
    last = int(epochs.split()[-1]) if epochs.split() else 0
    storage.save_quorum_state(QuorumState(max(last, 0), -1, -1))


CASES = [
    pytest.param("1 1 2 2", "1 1 2", id="A-follower-is-a-prefix"),
    pytest.param("1 1 2 3", "1 1 2 2 2", id="B-follower-has-extra-records-of-a-shared-epoch"),
    pytest.param("1 1 3 3", "1 1 2 2 2", id="C-forked-after-a-common-prefix"),
    pytest.param("1 4 4", "1 2 3 3", id="D-follower-has-epochs-the-leader-never-had"),
    pytest.param("3 3", "2 2 2", id="E-no-common-epoch-truncates-to-zero"),
    pytest.param("2 2 5", "", id="F-empty-follower"),
    pytest.param("1 1 2 2", "1 1 2 2", id="G-identical"),
]


@pytest.mark.parametrize(("leader_log", "follower_log"), CASES)
def test_follower_converges_to_the_leader_log(leader_log: str, follower_log: str) -> None:
    env = InteractionEnv([1, 2], fetch_max_bytes=1)
    env.crash(1)
    env.crash(2)
    _fill(env, 1, leader_log)
    if follower_log:
        _fill(env, 2, follower_log)
    env.start(1)
    env.start(2)
    env.node(1).campaign()
    env.process(1)
    for _ in range(40):
        env.stabilize()
        if env.node(1).role is Role.LEADER and env.node(2).high_watermark == env.node(
                1).log_end_offset:
            break
        env.tick_all()
    assert env.node(1).role is Role.LEADER
    leader_batches = env.replicas[1].storage.all_batches()
    assert env.replicas[2].storage.all_batches() == leader_batches
    assert env.node(2).high_watermark == env.node(1).high_watermark == leader_batches[-1].end_offset
