"""Seeded crash simulation: no batch fully written before a crash is ever lost or moved.

Method: for each seed, a ``random.Random`` drives a partition log with tiny segments through
appends of random batches (1-5 records of 0-300 bytes, sometimes several batches per
request), occasional flushes and crashes.  A crash closes the log without the clean flag and
sometimes also cuts the active segment's ``.log`` at a random position or damages an index,
as a power loss could.  The model of expected records is trimmed to the batches that end at or
before the cut.  After each reopen every surviving record must read back at its offset, and
appends must continue at the new log end.  A failure names the seed, which replays it.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from logtest_support import ManualClock, append, batch, open_log, record_values
from streambus.log.config import LogConfig
from streambus.protocol.records.batch import validate_batches

CONFIG = LogConfig(segment_bytes=1_500, index_interval_bytes=200, segment_index_bytes=120)
STEP_COUNT = 150


def cut_active_segment(directory: Path, rng: random.Random) -> tuple[int, int] | None:
    """Truncate the last .log file at a random position; return (base_offset, kept offsets end)."""
    path = sorted(directory.glob("*.log"))[-1]
    data = path.read_bytes()
    if not data:
        return None
    cut = rng.randrange(len(data))
    headers = validate_batches(data)
    next_offset = int(path.name.split(".")[0])
    for header in headers:
        if header.position + header.size_bytes > cut:
            break
        next_offset = header.next_offset
    with open(path, "r+b") as file:
        file.truncate(cut)
    return int(path.name.split(".")[0]), next_offset


@pytest.mark.parametrize("seed", range(15))
def test_records_written_before_a_crash_survive_at_their_offsets(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    clock = ManualClock()
    directory = tmp_path / "sim-0"
    log = open_log(directory, clock, CONFIG)
    expected: list[tuple[int, bytes]] = []
    for step in range(STEP_COUNT):
        action = rng.random()
        if action < 0.75:
            buffers = [
                batch([rng.randbytes(rng.randrange(300)) for _ in range(rng.randint(1, 5))],
                      timestamp_ms=clock.now_ms)
                for _ in range(rng.choice([1, 1, 1, 2, 3]))
            ]
            result = append(log, *buffers)
            values = [value for buffer in buffers for _, value in record_values(bytes(buffer))]
            assert result.base_offset == len(expected), f"seed {seed} step {step}"
            expected.extend((result.base_offset + i, value) for i, value in enumerate(values))
            clock.advance(rng.randrange(1_000))
        elif action < 0.85:
            log.flush()
        else:
            recovery_point = log.recovery_point
            log.close(clean=False)
            fault = rng.choice(["none", "cut", "cut", "index"])
            if fault == "cut":
                cut = cut_active_segment(directory, rng)
                if cut is not None:
                    expected = [item for item in expected if item[0] < cut[1]]
            elif fault == "index":
                for path in directory.glob("*.index"):
                    path.write_bytes(bytes(path.stat().st_size))
            log = open_log(directory, clock, CONFIG, clean_shutdown=False, recovery_point=recovery_point)
            assert log.log_end_offset == len(expected), f"seed {seed} step {step} fault {fault}"
            assert record_values(log.read(0, 10**9).records) == expected, f"seed {seed} step {step}"
    log.close(clean=True)
    reopened = open_log(directory, clock, CONFIG)
    assert record_values(reopened.read(0, 10**9).records) == expected, f"seed {seed}"
    for offset, value in expected[:: max(1, len(expected) // 20)]:
        # A one-byte budget returns exactly the batch holding the offset.
        assert (offset, value) in record_values(reopened.read(offset, 1).records), f"seed {seed}"
