"""Helpers shared by the log tests: a manual clock and batch builders.

Named ``logtest_support`` (not ``helpers``) because test directories have no ``__init__.py``
and pytest puts each on ``sys.path``; a unique name cannot collide with another directory's.
"""

from __future__ import annotations

from pathlib import Path

from streambus.log.config import LogConfig
from streambus.log.partition_log import AppendResult, PartitionLog
from streambus.protocol.records.batch import validate_batches
from streambus.protocol.records.record import Record, build_batch, decode_records, make_batch

__all__ = ["ManualClock", "batch", "append", "decode", "open_log", "record_values"]


class ManualClock:
    """Wall-clock milliseconds that move only when a test says so."""

    def __init__(self, now_ms: int = 1_700_000_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms


def batch(
    values: list[bytes],
    *,
    timestamp_ms: int = 1_000,
    timestamps_ms: list[int] | None = None,
    **kwargs: object,
) -> bytearray:
    """One producer batch (base_offset 0) of ``values``; per-record timestamps optional."""
    if timestamps_ms is None:
        return bytearray(make_batch(values, timestamp_ms=timestamp_ms, **kwargs))
    records = [(None, value, [], ts) for value, ts in zip(values, timestamps_ms, strict=True)]
    return bytearray(build_batch(records, **kwargs))


def append(log: PartitionLog, *buffers: bytearray, leader_epoch: int = 0) -> AppendResult:
    """Append the given batches as one Produce request."""
    records = bytearray(b"".join(buffers))
    return log.append_as_leader(records, validate_batches(records), leader_epoch=leader_epoch)


def decode(records: bytes) -> list[Record]:
    """Every record of a Fetch response's ``records`` bytes."""
    result: list[Record] = []
    for header in validate_batches(records):
        result.extend(decode_records(records, header))
    return result


def record_values(records: bytes) -> list[tuple[int, bytes | None]]:
    return [(record.offset, record.value) for record in decode(records)]


def open_log(
    directory: Path,
    clock: ManualClock,
    config: LogConfig | None = None,
    *,
    clean_shutdown: bool = True,
    recovery_point: int = 0,
) -> PartitionLog:
    return PartitionLog.open(
        directory,
        config or LogConfig(),
        clock_ms=clock,
        clean_shutdown=clean_shutdown,
        recovery_point=recovery_point,
    )
