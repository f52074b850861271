"""Idempotent producers through PartitionLog: retries are acknowledged, not appended.

Method: append batches carrying a producer id, epoch and sequence, as an idempotent producer
sends them, then resend the same bytes (a retry after a lost response) and check the log
reports the original offsets and stays unchanged, also across clean and unclean restarts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from logtest_support import ManualClock, append, batch, open_log, record_values
from streambus.log.config import LogConfig
from streambus.log.partition_log import AppendResult
from streambus.log.producer_state import OutOfOrderSequenceError

CONFIG = LogConfig(segment_bytes=400, index_interval_bytes=64)
PRODUCER_ID = 4_000


def producer_batch(base_sequence: int, values: list[bytes], epoch: int = 0) -> bytearray:
    return batch(values, producer_id=PRODUCER_ID, producer_epoch=epoch, base_sequence=base_sequence)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def test_retried_batch_is_not_appended_and_reports_original_offsets(tmp_path: Path, clock: ManualClock) -> None:
    log = open_log(tmp_path / "t-0", clock, CONFIG)
    append(log, batch([b"other"]))
    first = append(log, producer_batch(0, [b"a", b"b"]))
    append(log, producer_batch(2, [b"c"]))
    retry = append(log, producer_batch(0, [b"a", b"b"]))
    assert first == AppendResult(1, 2, -1, 0, False)
    assert retry == AppendResult(1, 2, -1, 0, True)
    assert log.log_end_offset == 4
    assert [v for _, v in record_values(log.read(0, 100_000).records)] == [b"other", b"a", b"b", b"c"]


def test_sequence_gap_is_rejected_with_out_of_order_error(tmp_path: Path, clock: ManualClock) -> None:
    log = open_log(tmp_path / "t-0", clock, CONFIG)
    append(log, producer_batch(0, [b"a"]))
    with pytest.raises(OutOfOrderSequenceError) as caught:
        append(log, producer_batch(5, [b"b"]))
    assert caught.value.error_code == 45
    assert log.log_end_offset == 1


@pytest.mark.parametrize("clean", [True, False], ids=["clean", "unclean"])
def test_duplicates_are_still_detected_after_restart(tmp_path: Path, clock: ManualClock, clean: bool) -> None:
    directory = tmp_path / "t-0"
    log = open_log(directory, clock, CONFIG)
    for sequence in range(12):  # enough to roll several segments (and snapshot at each)
        append(log, producer_batch(sequence, [b"value-%02d" % sequence]))
    log.close(clean=clean)
    reopened = open_log(directory, clock, CONFIG, clean_shutdown=clean)
    assert append(reopened, producer_batch(11, [b"value-11"])) == AppendResult(11, 11, -1, 0, True)
    assert append(reopened, producer_batch(12, [b"value-12"])).base_offset == 12


def test_truncation_forgets_the_removed_batches(tmp_path: Path, clock: ManualClock) -> None:
    log = open_log(tmp_path / "t-0", clock, CONFIG)
    for sequence in range(6):
        append(log, producer_batch(sequence, [b"v"]))
    log.truncate_to(4)
    # Sequence 4 was removed with the log tail, so it is new again rather than a duplicate.
    result = append(log, producer_batch(4, [b"again"]))
    assert (result.base_offset, result.duplicate) == (4, False)
