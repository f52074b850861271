"""The records package re-exports exactly its public names, and stays sans-I/O.

Method: compare ``__all__`` with the package's public attributes (as httpx's
``test_exported_members`` does), and scan the modules' imports for I/O modules.
"""

from __future__ import annotations

import ast
import types
from pathlib import Path

import streambus.protocol.records as records

FORBIDDEN_IMPORTS = {"asyncio", "socket", "os", "selectors", "threading"}


def test_all_lists_every_public_name() -> None:
    public = {
        name
        for name, value in vars(records).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }

    assert set(records.__all__) == public
    assert len(records.__all__) == len(set(records.__all__))


def test_records_modules_import_no_io() -> None:
    package_dir = Path(records.__file__).parent
    imported: set[str] = set()
    for path in package_dir.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])

    assert imported & FORBIDDEN_IMPORTS == set()
