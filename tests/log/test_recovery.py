"""Partition log recovery: after a crash or damaged files, everything up to the last valid
batch is readable at its offsets and appends continue right after it.

Method: append 30 one-record batches across several small segments, close without the clean
flag (a crash: the data is in the kernel but nothing was fsynced or snapshotted), inject one
fault into the files, reopen with ``clean_shutdown=False`` and compare reads with the expected
surviving prefix.  Index faults are also checked after a clean shutdown, where only the
open-time sanity check can notice them.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Callable

import pytest

from logtest_support import ManualClock, append, batch, open_log, record_values
from streambus.log.config import LogConfig
from streambus.protocol.records.batch import validate_batches

CONFIG = LogConfig(segment_bytes=400, index_interval_bytes=64)
BATCH_COUNT = 30


def values() -> list[tuple[int, bytes]]:
    return [(offset, b"value-%03d" % offset) for offset in range(BATCH_COUNT)]


def write_log(directory: Path, clock: ManualClock, *, clean: bool) -> None:
    log = open_log(directory, clock, CONFIG)
    for offset, value in values():
        append(log, batch([value], timestamp_ms=offset))
    log.close(clean=clean)


def segment_files(directory: Path, suffix: str) -> list[Path]:
    return sorted(directory.glob("*" + suffix))


def batch_ends(path: Path) -> list[int]:
    """End position of every batch in a .log file."""
    return [h.position + h.size_bytes for h in validate_batches(path.read_bytes())]


def check_recovered(directory: Path, clock: ManualClock, surviving_count: int, *, clean: bool) -> None:
    log = open_log(directory, clock, CONFIG, clean_shutdown=clean)
    assert log.log_end_offset == surviving_count
    assert record_values(log.read(0, 1_000_000).records) == values()[:surviving_count]
    for offset in range(surviving_count):
        assert record_values(log.read(offset, 1).records) == [values()[offset]]
    assert append(log, batch([b"after"])).base_offset == surviving_count
    log.close(clean=True)
    reopened = open_log(directory, clock, CONFIG)
    assert record_values(reopened.read(0, 1_000_000).records)[-1] == (surviving_count, b"after")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def test_torn_tail_is_cut_back_to_the_last_whole_batch(tmp_path: Path, clock: ManualClock) -> None:
    directory = tmp_path / "t-0"
    write_log(directory, clock, clean=False)
    last = segment_files(directory, ".log")[-1]
    ends = batch_ends(last)
    with open(last, "r+b") as file:
        file.truncate(ends[-1] - 7)  # cut inside the last batch
    check_recovered(directory, clock, BATCH_COUNT - 1, clean=False)


def test_garbage_after_the_last_batch_is_removed(tmp_path: Path, clock: ManualClock) -> None:
    directory = tmp_path / "t-0"
    write_log(directory, clock, clean=False)
    with open(segment_files(directory, ".log")[-1], "ab") as file:
        file.write(b"\x00\x00\x00\x00\x00\x00\x00\x1e\x00\x00\x01\x00garbage" * 10)
    check_recovered(directory, clock, BATCH_COUNT, clean=False)


def test_flipped_byte_in_a_middle_segment_truncates_it_and_drops_later_segments(
    tmp_path: Path, clock: ManualClock
) -> None:
    directory = tmp_path / "t-0"
    write_log(directory, clock, clean=False)
    logs = segment_files(directory, ".log")
    assert len(logs) >= 4
    middle = logs[1]
    base_offset = int(middle.name.split(".")[0])
    ends = batch_ends(middle)
    data = bytearray(middle.read_bytes())
    data[ends[1] + 30] ^= 0x40  # inside the third batch's CRC scope
    middle.write_bytes(data)
    check_recovered(directory, clock, base_offset + 2, clean=False)
    remaining = segment_files(directory, ".log")
    assert [int(p.name.split(".")[0]) for p in remaining][: 2] == [0, base_offset]


@pytest.mark.parametrize("clean", [False, True], ids=["unclean", "clean"])
@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda path: path.unlink(), id="deleted"),
        pytest.param(lambda path: path.write_bytes(bytes(path.stat().st_size or 24)), id="zeroed"),
        pytest.param(lambda path: path.write_bytes(path.read_bytes()[:-3]), id="torn"),
    ],
)
@pytest.mark.parametrize("suffix", [".index", ".timeindex"])
def test_damaged_index_files_are_rebuilt(
    tmp_path: Path, clock: ManualClock, clean: bool, damage: Callable[[Path], None], suffix: str
) -> None:
    directory = tmp_path / "t-0"
    write_log(directory, clock, clean=clean)
    for path in segment_files(directory, suffix):
        if path.stat().st_size:
            damage(path)
    check_recovered(directory, clock, BATCH_COUNT, clean=clean)
    log = open_log(directory, clock, CONFIG)
    assert log.offset_for_timestamp(17) == (17, 17)


def test_stale_index_pointing_past_a_shortened_log_is_rebuilt(tmp_path: Path, clock: ManualClock) -> None:
    directory = tmp_path / "t-0"
    write_log(directory, clock, clean=True)
    first = segment_files(directory, ".log")[0]
    ends = batch_ends(first)
    with open(first, "r+b") as file:
        file.truncate(ends[0])  # the index still describes the removed batches
    log = open_log(directory, clock, CONFIG, clean_shutdown=True)
    # The lost batches leave a gap; reads step over it into the next segment.
    next_segment_base = len(ends)
    assert record_values(log.read(0, 1_000_000).records) == values()[:1] + values()[next_segment_base:]
    assert record_values(log.read(1, 1).records) == [values()[next_segment_base]]


def test_unclean_reopen_without_damage_loses_nothing(tmp_path: Path, clock: ManualClock) -> None:
    directory = tmp_path / "t-0"
    write_log(directory, clock, clean=False)
    check_recovered(directory, clock, BATCH_COUNT, clean=False)


def test_leftover_temporary_files_are_removed_on_open(tmp_path: Path, clock: ManualClock) -> None:
    directory = tmp_path / "t-0"
    write_log(directory, clock, clean=True)
    for name in ("00000000000000000007.log.deleted", "00000000000000000007.log.swap",
                 "00000000000000000007.log.cleaned", "00000000000000009999.index"):
        (directory / name).write_bytes(b"junk")
    check_recovered(directory, clock, BATCH_COUNT, clean=True)
    assert not list(directory.glob("*.deleted")) and not list(directory.glob("*9999*"))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork to kill a real process")
def test_killed_process_loses_no_acknowledged_append(tmp_path: Path, clock: ManualClock) -> None:
    """A child process appends, reports each returned offset, then SIGKILLs itself; every
    reported (acknowledged) record must be readable after an unclean reopen."""
    directory = tmp_path / "t-0"
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no pytest machinery may run here, so exit only by the kill
        try:
            os.close(read_end)
            log = open_log(directory, clock, CONFIG)
            for offset, value in values():
                result = append(log, batch([value], timestamp_ms=offset))
                os.write(write_end, b"%d\n" % result.base_offset)
        finally:
            os.kill(os.getpid(), signal.SIGKILL)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        acknowledged = [int(line) for line in pipe.read().split()]
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert acknowledged == list(range(BATCH_COUNT))
    check_recovered(directory, clock, BATCH_COUNT, clean=False)
