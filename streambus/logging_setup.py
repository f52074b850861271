"""Process logging: one timestamped line per event on stderr.

This module owns the root logging configuration of the ``streambus-broker`` process. Library
modules only call ``logging.getLogger(__name__)``; they never configure handlers.

Line format: ``2025-11-10T12:00:00.123Z INFO streambus.broker.server: message``. Timestamps
are UTC with milliseconds. A traceback is folded into the same line (newlines escaped as
``\\n``), because log shippers (journald, Filebeat, Fluentd) split events on newlines.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

__all__ = ["OneLineFormatter", "configure_logging"]


class OneLineFormatter(logging.Formatter):
    """Formats each record, traceback included, on a single line."""

    converter = time.gmtime

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        seconds = time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created))
        return f"{seconds}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", "\\n")


def configure_logging(level: str, stream: TextIO | None = None) -> None:
    """Send every logger's records at `level` or above to `stream` (default stderr)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(OneLineFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
