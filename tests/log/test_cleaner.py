"""Log compaction: the latest value per key survives with its offset, nothing else changes.

Method: write keyed records into a log with tiny segments under a manual clock, keep a model
(the latest (offset, value) of every key), run cleaning passes synchronously with
``LogCleaner.clean_now`` (or step the pass generator by hand to interleave other work), then
read the whole log back and compare with the model.  Crash tests stop a pass at a chosen step
with an exception, close the log as a kill would, and reopen it.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from logtest_support import ManualClock, open_log
from streambus.log import cleaner as cleaner_module
from streambus.log.cleaner import CleanerConfig, CompactionConfig, LogCleaner
from streambus.log.compacted_batch import DELETE_HORIZON_MASK, delete_horizon_ms
from streambus.log.config import LogConfig
from streambus.log.errors import LogError
from streambus.log.offset_map import OffsetMap
from streambus.log.partition_log import PartitionLog
from streambus.log.segment_swap import install_cleaned_segment
from streambus.protocol.records.batch import (
    COMPRESSION_MASK,
    BatchHeader,
    iter_batch_headers,
    validate_batches,
)
from streambus.protocol.records.compression import CompressionType
from streambus.protocol.records.control import ControlRecordType, build_control_batch
from streambus.protocol.records.record import TimestampType, build_batch, decode_records

NOW_MS = 1_700_000_000_000
DAY_MS = 86_400_000
COMPACT = CompactionConfig(compact=True, delete_retention_ms=DAY_MS)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW_MS)


def _log(tmp_path: Path, clock: ManualClock, segment_bytes: int = 1024,
         name: str = "changelog-0") -> PartitionLog:
    config = LogConfig(segment_bytes=segment_bytes, cleanup_policy=frozenset({"compact"}))
    return open_log(tmp_path / name, clock, config)


def _append(log: PartitionLog, data: bytes) -> int:
    records = bytearray(data)
    headers = validate_batches(records, verify_crc=True)
    result = log.append_as_leader(records, headers, leader_epoch=0)
    log.high_watermark = log.log_end_offset
    return result.base_offset


def _put(log: PartitionLog, clock: ManualClock, *pairs: tuple[bytes | None, bytes | None],
         **kwargs: object) -> int:
    """Append one batch of (key, value) records; returns its base offset."""
    return _append(log, build_batch([(k, v, [], clock()) for k, v in pairs], **kwargs))


def _read_all(log: PartitionLog) -> list[tuple[int, bytes | None, bytes | None]]:
    """(offset, key, value) of every record from the log start, as a consumer sees them."""
    return [(r.offset, r.key, r.value) for _, records in _read_batches(log) for r in records]


def _read_batches(log: PartitionLog) -> list[tuple[BatchHeader, list]]:
    batches = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        data = log.read(offset, 1 << 20).records
        if not data:
            break
        for header in iter_batch_headers(data):
            batch = memoryview(data)[header.position: header.position + header.size_bytes]
            batches.append((header, [r for r in decode_records(batch, header)
                                     if r.offset >= offset]))
            offset = header.next_offset
    return batches


def _compacted(history: list[tuple[int, bytes | None, bytes | None]], end_offset: int,
               keep_tombstones: bool = True) -> list[tuple[int, bytes | None, bytes | None]]:
    """The model: below ``end_offset`` the latest record of each key, then everything."""
    latest = {key: offset for offset, key, _ in history if offset < end_offset}
    return [(offset, key, value) for offset, key, value in history
            if offset >= end_offset or (latest[key] == offset
                                        and (value is not None or keep_tombstones))]


def _write_random(log: PartitionLog, clock: ManualClock, count: int, keys: int,
                  seed: int = 7) -> list[tuple[int, bytes | None, bytes | None]]:
    rng = random.Random(seed)
    history = []
    for index in range(count):
        key = b"key-%d" % rng.randrange(keys)
        value = None if rng.random() < 0.1 else b"value-%d" % index
        offset = _put(log, clock, (key, value))
        history.append((offset, key, value))
    return history


def test_latest_value_per_key_survives_with_its_offset(tmp_path: Path,
                                                       clock: ManualClock) -> None:
    """One pass: every non-active segment keeps exactly each key's latest record, at its
    original offset; the active segment is untouched."""
    log = _log(tmp_path, clock)
    history = _write_random(log, clock, 600, keys=40)
    active_base = log.active_segment.base_offset
    cleaner = LogCleaner(None, clock)
    stats = cleaner.clean_now(log, COMPACT)
    assert stats is not None and stats.end_offset == active_base
    assert _read_all(log) == _compacted(history, active_base)
    assert log.log_end_offset == len(history)
    assert log.active_segment.base_offset == active_base
    assert stats.records_read == active_base and stats.records_kept < 80


def test_log_reopens_identically_after_cleaning(tmp_path: Path, clock: ManualClock) -> None:
    """Cleaned segments carry rebuilt indexes and survive both a clean and an unclean reopen."""
    log = _log(tmp_path, clock)
    _write_random(log, clock, 300, keys=20)
    LogCleaner(None, clock).clean_now(log, COMPACT)
    expected = _read_all(log)
    log.close(clean=False)
    reopened = open_log(tmp_path / "changelog-0", clock, log.config, clean_shutdown=False)
    reopened.high_watermark = reopened.log_end_offset
    assert _read_all(reopened) == expected
    for offset, _, _ in expected:
        assert reopened.read(offset, 100).records  # every kept offset is readable directly


def test_small_segments_are_merged_by_later_passes(tmp_path: Path, clock: ManualClock) -> None:
    """Groups are formed from segment sizes before cleaning, so shrunken segments merge in the
    next pass (Kafka's groupSegmentsBySize)."""
    log = _log(tmp_path, clock)
    history = _write_random(log, clock, 600, keys=10)
    cleaner = LogCleaner(None, clock)
    cleaner.clean_now(log, COMPACT)
    segments_after_first = len(log.segments)
    _put(log, clock, (b"key-0", b"new"))
    log.roll()
    history.append((log.log_end_offset - 1, b"key-0", b"new"))
    cleaner.clean_now(log, CompactionConfig(compact=True, min_cleanable_dirty_ratio=0.0))
    assert len(log.segments) < segments_after_first
    assert _read_all(log) == _compacted(history, log.active_segment.base_offset)


def test_tombstones_are_kept_until_delete_retention_passes(tmp_path: Path,
                                                          clock: ManualClock) -> None:
    """The first pass removes the deleted key's values and stamps the tombstone's batch with a
    delete horizon (KIP-534); once the clock passes it, the next pass removes the tombstone."""
    log = _log(tmp_path, clock, segment_bytes=300)
    _put(log, clock, (b"gone", b"v1"))
    _put(log, clock, (b"kept", b"v1"))
    _put(log, clock, (b"gone", b"v2"))
    tombstone_offset = _put(log, clock, (b"gone", None))
    log.roll()
    cleaner = LogCleaner(None, clock)
    cleaner.clean_now(log, COMPACT)
    assert _read_all(log) == [(1, b"kept", b"v1"), (3, b"gone", None)]
    [header] = [h for h, _ in _read_batches(log) if h.base_offset == tombstone_offset]
    assert delete_horizon_ms(header) == NOW_MS + DAY_MS
    # The record's own timestamp is unchanged although the batch's base timestamp moved.
    [(_, [record])] = [(h, r) for h, r in _read_batches(log) if h.base_offset == tombstone_offset]
    assert record.timestamp == NOW_MS
    assert cleaner.plan(log, COMPACT) is None
    clock.advance(DAY_MS - 1)
    assert cleaner.plan(log, COMPACT) is None  # the horizon is not reached yet
    clock.advance(1)
    plan = cleaner.plan(log, COMPACT)
    assert plan is not None and plan.reason == "delete-horizon"
    stats = cleaner.clean_now(log, COMPACT)
    assert stats.tombstones_removed == 1
    assert [(o, k, v) for o, k, v in _read_all(log)] == [(1, b"kept", b"v1")]
    assert log.log_end_offset == 4


def test_delete_horizon_is_found_again_after_a_restart(tmp_path: Path,
                                                       clock: ManualClock) -> None:
    """A new cleaner (after a restart) finds pending delete horizons in the batch headers."""
    log = _log(tmp_path, clock, segment_bytes=300)
    _put(log, clock, (b"k", b"v"))
    _put(log, clock, (b"k", None))
    log.roll()
    LogCleaner(tmp_path, clock).clean_now(log, COMPACT)
    clock.advance(DAY_MS + 1)
    restarted = LogCleaner(tmp_path, clock)
    assert restarted.first_dirty_offset(log) == 2
    plan = restarted.plan(log, COMPACT)
    assert plan is not None and plan.reason == "delete-horizon"
    restarted.clean_now(log, COMPACT)
    assert _read_all(log) == []


def test_keyless_records_are_dropped(tmp_path: Path, clock: ManualClock) -> None:
    log = _log(tmp_path, clock)
    _put(log, clock, (None, b"no key"), (b"k", b"v"))
    log.roll()
    LogCleaner(None, clock).clean_now(log, COMPACT)
    assert _read_all(log) == [(1, b"k", b"v")]


@pytest.mark.parametrize("codec", [CompressionType.GZIP, CompressionType.ZSTD,
                                   CompressionType.LZ4, CompressionType.SNAPPY],
                         ids=lambda c: c.name.lower())
def test_compressed_batches_stay_compressed_with_the_same_codec(
        tmp_path: Path, clock: ManualClock, codec: CompressionType) -> None:
    log = _log(tmp_path, clock, segment_bytes=4096)
    _put(log, clock, *[(b"k%d" % (i % 5), b"v%d" % i) for i in range(50)], compression=codec)
    log.roll()
    LogCleaner(None, clock).clean_now(log, COMPACT)
    [(header, records)] = _read_batches(log)
    assert header.attributes & COMPRESSION_MASK == codec
    assert (header.base_offset, header.last_offset, header.records_count) == (0, 49, 5)
    assert [(r.offset, r.key, r.value) for r in records] == [
        (45 + i, b"k%d" % i, b"v%d" % (45 + i)) for i in range(5)]


def test_log_append_time_batches_keep_their_timestamp(tmp_path: Path,
                                                      clock: ManualClock) -> None:
    log = _log(tmp_path, clock)
    log.update_config(LogConfig(segment_bytes=1024, cleanup_policy=frozenset({"compact"}),
                                message_timestamp_type="LogAppendTime"))
    _put(log, clock, (b"a", b"1"), (b"a", b"2"), (b"b", b"3"))
    log.roll()
    LogCleaner(None, clock).clean_now(log, COMPACT)
    [(header, records)] = _read_batches(log)
    assert header.is_log_append_time and header.max_timestamp == NOW_MS
    assert [(r.offset, r.value, r.timestamp) for r in records] == [(1, b"2", NOW_MS),
                                                                   (2, b"3", NOW_MS)]


def _txn(log: PartitionLog, clock: ManualClock, producer_id: int, *pairs: tuple[bytes, bytes],
         sequence: int = 0) -> int:
    return _put(log, clock, *pairs, producer_id=producer_id, producer_epoch=0,
                base_sequence=sequence, is_transactional=True)


def _marker(log: PartitionLog, clock: ManualClock, producer_id: int,
            control_type: ControlRecordType) -> int:
    return _append(log, build_control_batch(control_type, producer_id, 0, 0, clock()))


def test_aborted_transactions_are_removed_and_never_hide_committed_values(
        tmp_path: Path, clock: ManualClock) -> None:
    """An aborted write of a key must not shadow its committed value, and the aborted records
    go; COMMIT markers stay, ABORT markers stay until their delete horizon."""
    log = _log(tmp_path, clock, segment_bytes=4096)
    _put(log, clock, (b"k", b"committed"))                     # 0
    _txn(log, clock, 1000, (b"k", b"aborted"))                 # 1
    _txn(log, clock, 2000, (b"j", b"in txn"))                  # 2
    abort_offset = _marker(log, clock, 1000, ControlRecordType.ABORT)   # 3
    commit_offset = _marker(log, clock, 2000, ControlRecordType.COMMIT)  # 4
    log.roll()
    cleaner = LogCleaner(None, clock)
    stats = cleaner.clean_now(log, COMPACT)
    assert stats.aborted_records_removed == 1
    batches = _read_batches(log)
    assert [(r.offset, r.key, r.value) for h, rs in batches if not h.is_control for r in rs] == [
        (0, b"k", b"committed"), (2, b"j", b"in txn")]
    controls = {h.base_offset: h for h, _ in batches if h.is_control}
    assert set(controls) == {abort_offset, commit_offset}
    assert controls[abort_offset].attributes & DELETE_HORIZON_MASK
    assert not controls[commit_offset].attributes & DELETE_HORIZON_MASK
    clock.advance(DAY_MS + 1)
    cleaner.clean_now(log, COMPACT)
    assert {h.base_offset for h, _ in _read_batches(log) if h.is_control} == {commit_offset}


def test_open_transaction_bounds_the_cleanable_range(tmp_path: Path, clock: ManualClock) -> None:
    """Nothing from the first offset of an open transaction on is cleaned."""
    log = _log(tmp_path, clock, segment_bytes=100)  # one single-record batch per segment
    _put(log, clock, (b"k", b"1"))
    _txn(log, clock, 1000, (b"k", b"2"))   # open: no marker yet
    _put(log, clock, (b"k", b"3"))
    _put(log, clock, (b"k", b"4"))
    assert len(log.segments) == 4
    cleaner = LogCleaner(None, clock)
    plan = cleaner.plan(log, COMPACT)
    assert plan is not None and plan.first_uncleanable_offset == 1
    cleaner.clean_now(log, COMPACT)
    assert [v for _, _, v in _read_all(log)] == [b"1", b"2", b"3", b"4"]


def test_emptied_batch_of_an_idempotent_producer_is_kept(tmp_path: Path,
                                                         clock: ManualClock) -> None:
    """A producer's last batch survives as an empty batch, so its sequence state (and
    duplicate detection) survives compaction and a restart."""
    log = _log(tmp_path, clock, segment_bytes=100)
    _put(log, clock, (b"k", b"1"), producer_id=7, producer_epoch=0, base_sequence=0)
    _put(log, clock, (b"k", b"2"))
    _put(log, clock, (b"x", b"3"))
    LogCleaner(None, clock).clean_now(log, CompactionConfig(compact=True))
    batches = _read_batches(log)
    assert [(h.base_offset, h.records_count, h.producer_id) for h, _ in batches][:2] == [
        (0, 0, 7), (1, 1, -1)]
    log.close(clean=False)
    log = open_log(tmp_path / "changelog-0", clock, log.config, clean_shutdown=False)
    retry = bytearray(build_batch([(b"k", b"1", [], clock())], producer_id=7, producer_epoch=0,
                                  base_sequence=0))
    result = log.append_as_leader(retry, validate_batches(retry), leader_epoch=0)
    assert result.duplicate and result.base_offset == 0


def test_a_full_offset_map_ends_the_pass_and_the_next_one_continues(
        tmp_path: Path, clock: ManualClock) -> None:
    """The map's capacity bounds a pass; the first dirty offset moves to where it stopped and
    later passes finish the job with the same result."""
    log = _log(tmp_path, clock)
    history = _write_random(log, clock, 400, keys=60)
    active_base = log.active_segment.base_offset
    config = CleanerConfig(dedupe_buffer_size=128 * 25, io_buffer_load_factor=1.0)
    cleaner = LogCleaner(None, clock, config)
    assert OffsetMap(config.dedupe_buffer_size, 1.0).capacity == 25
    stats = cleaner.clean_now(log, COMPACT)
    assert 0 < stats.end_offset < active_base and stats.map_keys_count <= 25
    passes = 1
    while cleaner.first_dirty_offset(log) < active_base and passes < 50:
        cleaner.clean_now(log, CompactionConfig(compact=True, min_cleanable_dirty_ratio=0.0))
        passes += 1
    assert passes > 2
    final = LogCleaner(None, clock)
    final.clean_now(log, CompactionConfig(compact=True, min_cleanable_dirty_ratio=0.0))
    assert _read_all(log) == _compacted(history, active_base)


def test_a_map_that_cannot_hold_one_batch_marks_the_log_uncleanable(
        tmp_path: Path, clock: ManualClock) -> None:
    log = _log(tmp_path, clock, segment_bytes=4096)
    _put(log, clock, *[(b"k%d" % i, b"v") for i in range(10)])
    log.roll()
    before = _read_all(log)
    cleaner = LogCleaner(None, clock, CleanerConfig(dedupe_buffer_size=128 * 5,
                                                    io_buffer_load_factor=1.0))
    with pytest.raises(LogError, match="offset map"):
        cleaner.clean_now(log, COMPACT)
    assert cleaner.plan(log, COMPACT) is None
    assert _read_all(log) == before


def test_dirty_ratio_below_the_minimum_waits(tmp_path: Path, clock: ManualClock) -> None:
    log = _log(tmp_path, clock, segment_bytes=300)
    for i in range(20):
        _put(log, clock, (b"k%d" % i, b"v"))
    log.roll()
    cleaner = LogCleaner(None, clock)
    cleaner.clean_now(log, COMPACT)
    _put(log, clock, (b"k0", b"w"))
    log.roll()
    plan_config = CompactionConfig(compact=True, min_cleanable_dirty_ratio=0.5)
    assert cleaner.plan(log, plan_config) is None
    lag_config = CompactionConfig(compact=True, min_cleanable_dirty_ratio=0.5,
                                  max_compaction_lag_ms=1000)
    assert cleaner.plan(log, lag_config) is None
    clock.advance(1001)
    plan = cleaner.plan(log, lag_config)
    assert plan is not None and plan.reason == "max-compaction-lag"


def test_min_compaction_lag_protects_recent_segments(tmp_path: Path, clock: ManualClock) -> None:
    log = _log(tmp_path, clock, segment_bytes=100)
    _put(log, clock, (b"k", b"old"))
    clock.advance(10_000)
    _put(log, clock, (b"k", b"recent"))
    _put(log, clock, (b"k", b"active"))
    lagged = CompactionConfig(compact=True, min_compaction_lag_ms=5_000)
    cleaner = LogCleaner(None, clock)
    plan = cleaner.plan(log, lagged)
    assert plan is not None and plan.first_uncleanable_offset == 1
    cleaner.clean_now(log, lagged)
    assert [v for _, _, v in _read_all(log)] == [b"old", b"recent", b"active"]


def test_checkpoint_survives_a_new_cleaner(tmp_path: Path, clock: ManualClock) -> None:
    log = _log(tmp_path / "logs", clock)
    _write_random(log, clock, 100, keys=5)
    LogCleaner(tmp_path, clock).clean_now(log, COMPACT)
    assert (tmp_path / "cleaner-offset-checkpoint").exists()
    assert LogCleaner(tmp_path, clock).first_dirty_offset(log) == log.active_segment.base_offset


class _Crash(Exception):
    pass


@pytest.mark.parametrize("where", ["before-commit", "after-commit", "mid-delete"])
def test_a_crash_during_the_swap_loses_nothing(tmp_path: Path, clock: ManualClock,
                                               monkeypatch: pytest.MonkeyPatch,
                                               where: str) -> None:
    """Before the .swap rename the original segments win (the .cleaned file is debris);
    after it the swap is finished on open, whichever originals were already deleted."""
    log = _log(tmp_path, clock, segment_bytes=4096)
    history = _write_random(log, clock, 300, keys=10)
    active_base = log.active_segment.base_offset
    first_group_end = log.segments[1].base_offset  # every segment is a group of its own
    before = _read_all(log)

    def crashing_install(old_segments, cleaned_path, open_segment, before_delete=None,
                         **kwargs):
        if where == "before-commit":
            raise _Crash()

        def crash() -> None:
            if where == "mid-delete":
                old_segments[0].delete()
            raise _Crash()

        return install_cleaned_segment(old_segments, cleaned_path, open_segment, crash,
                                       **kwargs)

    monkeypatch.setattr(cleaner_module, "install_cleaned_segment", crashing_install)
    cleaned = tmp_path / "changelog-0" / "00000000000000000000.log.cleaned"
    if where == "before-commit":
        # Leave the .cleaned file behind as a killed process would.
        monkeypatch.setattr(Path, "unlink", lambda self, missing_ok=False: None)
    with pytest.raises(_Crash):
        LogCleaner(None, clock).clean_now(log, COMPACT)
    monkeypatch.undo()
    directory_files = {p.name for p in (tmp_path / "changelog-0").iterdir()}
    if where == "before-commit":
        assert cleaned.name in directory_files
    else:
        assert "00000000000000000000.log.swap" in directory_files
    log.close(clean=False)
    reopened = open_log(tmp_path / "changelog-0", clock, log.config, clean_shutdown=False)
    reopened.high_watermark = reopened.log_end_offset
    names = {p.name for p in (tmp_path / "changelog-0").iterdir()}
    assert not [n for n in names if n.endswith((".cleaned", ".swap", ".deleted"))]
    after = _read_all(reopened)
    if where == "before-commit":
        assert after == before
    else:
        # The crashed group is finished; the pass stopped there, so later ones are untouched.
        compacted = _compacted(history, active_base)
        assert [r for r in after if r[0] < first_group_end] == [
            r for r in compacted if r[0] < first_group_end]
        assert [r for r in after if r[0] >= first_group_end] == [
            r for r in before if r[0] >= first_group_end]
    latest = {key: (offset, value) for offset, key, value in history}
    assert {key: (offset, value) for offset, key, value in after} == latest
    assert reopened.log_end_offset == len(history)


def test_retention_during_a_pass_abandons_the_swap(tmp_path: Path, clock: ManualClock) -> None:
    """Segments deleted while the pass runs are still read through the cleaner's own
    descriptors; the swap then sees the segment list changed and gives up cleanly."""
    log = _log(tmp_path, clock, segment_bytes=4096)
    _write_random(log, clock, 300, keys=10)
    cleaner = LogCleaner(None, clock)
    plan = cleaner.plan(log, COMPACT)
    assert plan is not None
    generator = cleaner.clean(plan)
    # Phase 1 yields once per dirty batch (one record each); a few more steps are inside the
    # rewrite of the first group.
    for _ in range(log.active_segment.base_offset + 5):
        next(generator)
    log.delete_records_before(log.segments[1].base_offset)
    expected = _read_all(log)
    with pytest.raises(StopIteration) as stopped:
        while True:
            next(generator)
    stats = stopped.value.value
    assert stats.groups_abandoned == 1 and stats.groups_swapped == 0
    assert _read_all(log) == expected
    names = {p.name for p in (tmp_path / "changelog-0").iterdir()}
    assert not [n for n in names if n.endswith((".cleaned", ".swap"))]
    # The next pass starts again and succeeds.
    assert cleaner.clean_now(log, COMPACT) is not None


def test_driver_sleeps_to_stay_under_the_io_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    """With log.cleaner.io.max.bytes.per.second set, the driver sleeps so that bytes / elapsed
    never exceeds it; without it, it still yields to the event loop between slices."""
    now = [0.0]
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(cleaner_module.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(cleaner_module.asyncio, "sleep", fake_sleep)

    def work():
        for _ in range(10):
            now[0] += 0.001  # 1 ms of CPU per step
            yield 1000
        return "done"

    throttled = LogCleaner(None, lambda: 0, CleanerConfig(io_max_bytes_per_second=100_000))
    assert asyncio.run(throttled.drive(work())) == "done"
    assert now[0] == pytest.approx(0.1)  # 10,000 bytes at 100,000 bytes/s
    sleeps.clear()
    now[0] = 0.0
    unthrottled = LogCleaner(None, lambda: 0, CleanerConfig())
    assert asyncio.run(unthrottled.drive(work())) == "done"
    assert sleeps and set(sleeps) == {0}  # gave the loop a turn every few ms


def test_compact_delete_logs_get_both(tmp_path: Path, clock: ManualClock) -> None:
    """cleanup.policy=compact,delete: compaction runs, and retention still applies."""
    from streambus.log.retention import apply_retention

    log = _log(tmp_path, clock, segment_bytes=300)
    for i in range(12):
        _put(log, clock, (b"k%d" % (i % 3), b"v%d" % i))
    config = CompactionConfig.from_topic_configs({"cleanup.policy": "compact,delete"})
    assert config.compact
    LogCleaner(None, clock).clean_now(log, config)
    log.update_config(LogConfig(segment_bytes=300, retention_ms=1000,
                                cleanup_policy=frozenset({"compact", "delete"})))
    clock.advance(1001)
    segment_count = len(log.segments)
    assert apply_retention(log, clock()).deleted_segment_count == segment_count - 1


def test_timestamp_type_is_preserved_when_records_are_removed(tmp_path: Path,
                                                              clock: ManualClock) -> None:
    log = _log(tmp_path, clock)
    _append(log, build_batch([(b"a", b"1", [], NOW_MS - 5), (b"a", b"2", [], NOW_MS - 3),
                              (b"b", b"3", [], NOW_MS - 4)],
                             timestamp_type=TimestampType.CREATE_TIME))
    log.roll()
    LogCleaner(None, clock).clean_now(log, COMPACT)
    [(header, records)] = _read_batches(log)
    assert [(r.offset, r.timestamp) for r in records] == [(1, NOW_MS - 3), (2, NOW_MS - 4)]
    assert header.max_timestamp == NOW_MS - 3 and not header.is_log_append_time


@pytest.mark.parametrize("crash", [False, True], ids=["live", "crash-after-commit"])
def test_aborted_transactions_stay_indexed_while_their_marker_is_kept(
        tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch,
        crash: bool) -> None:
    """The compacted segment's .txnindex keeps the aborts whose ABORT marker it keeps, also
    when a crash after the commit point leaves recovery to install it."""
    log = _log(tmp_path, clock, segment_bytes=4096)
    _txn(log, clock, 1000, (b"k", b"aborted"))
    log.append_control_marker(producer_id=1000, producer_epoch=0, coordinator_epoch=0,
                              commit=False, leader_epoch=0)
    _put(log, clock, (b"k", b"plain"))
    log.roll()
    indexed = log.aborted_transactions()
    assert [(e.producer_id, e.first_offset, e.last_offset) for e in indexed] == [(1000, 0, 1)]
    if crash:
        def crashing_install(*args, **kwargs):
            def stop() -> None:
                args[0][0].delete()  # the original's .txnindex is gone with it
                raise _Crash()
            return install_cleaned_segment(*args[:3], stop, **kwargs)

        monkeypatch.setattr(cleaner_module, "install_cleaned_segment", crashing_install)
        with pytest.raises(_Crash):
            LogCleaner(None, clock).clean_now(log, COMPACT)
        monkeypatch.undo()
        log.close(clean=False)
        log = open_log(tmp_path / "changelog-0", clock, log.config, clean_shutdown=False)
        log.high_watermark = log.log_end_offset
    else:
        LogCleaner(None, clock).clean_now(log, COMPACT)
    data = [(r.offset, r.key, r.value) for h, rs in _read_batches(log) if not h.is_control
            for r in rs]
    assert data == [(2, b"k", b"plain")]
    assert log.aborted_transactions() == indexed
    names = {p.name for p in (tmp_path / "changelog-0").iterdir()}
    assert not [n for n in names if n.endswith((".swap", ".cleaned"))]
