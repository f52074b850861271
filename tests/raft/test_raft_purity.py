"""The Raft core stays pure: no I/O, clocks, threads or global randomness (DESIGN §8).

Method: parse every core module's source with ``ast`` and fail on imports of modules that do
I/O or read time, and on any use of the ``random`` module other than the ``random.Random``
type that callers inject.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import streambus.raft

CORE_MODULES = ("node", "state", "quorum", "progress", "ready", "messages", "log_view")
FORBIDDEN_MODULES = {"asyncio", "socket", "time", "threading", "os", "select", "selectors",
                     "subprocess", "datetime", "multiprocessing", "concurrent", "io",
                     "pathlib", "uuid", "secrets", "signal", "logging"}
RAFT_DIR = Path(streambus.raft.__file__).parent


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
            if node.module == "random":
                names.add("random:from")
    return names


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_imports_no_io_clock_or_threads(module: str) -> None:
    tree = ast.parse((RAFT_DIR / f"{module}.py").read_text())
    assert not (_imports(tree) & FORBIDDEN_MODULES)


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_uses_random_only_as_an_injected_type(module: str) -> None:
    tree = ast.parse((RAFT_DIR / f"{module}.py").read_text())
    assert "random:from" not in _imports(tree)
    uses = {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == "random"}
    assert uses <= {"Random"}


def test_core_modules_import_only_protocol_and_raft_from_streambus() -> None:
    for module in CORE_MODULES:
        tree = ast.parse((RAFT_DIR / f"{module}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                    "streambus."):
                assert node.module.startswith(("streambus.raft", "streambus.protocol")), (
                    module, node.module)
                assert node.module not in ("streambus.raft.driver", "streambus.raft.transport")
