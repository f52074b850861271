"""Scripted scenarios (etcd-raft's datadriven ``testdata/*.txt``) for the Raft core.

Method: each ``scenarios/*.txt`` file is a list of commands for an InteractionEnv with the
expected output stored below each one.  Run with ``STREAMBUS_REWRITE=1`` to regenerate the
expectations after an intended change, then review the diff like any other code change.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streambus.testing.interaction import run_script

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.txt"))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda path: path.stem)
def test_scenario(path: Path) -> None:
    rewrite = os.environ.get("STREAMBUS_REWRITE") == "1"
    for command, expected, actual in run_script(path, rewrite=rewrite):
        if not rewrite:
            assert actual == expected, f"{path.name}: {command}\n--- expected\n{expected}\n--- actual\n{actual}"
