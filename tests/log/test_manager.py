"""LogManager: the data directory's partitions, checkpoint files and clean-shutdown marker.

Method: drive a manager over a temporary data directory through open/create/append/close
cycles, then inspect the files it leaves (checkpoint text, marker, renamed directories) and
what a fresh manager loads from them.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from logtest_support import ManualClock, append, batch, record_values
from streambus.log.config import LogConfig
from streambus.log.manager import (
    CLEAN_SHUTDOWN_FILE_NAME,
    LOG_START_OFFSET_CHECKPOINT_FILE_NAME,
    RECOVERY_POINT_CHECKPOINT_FILE_NAME,
    LogManager,
    read_offset_checkpoint,
    write_offset_checkpoint,
)

CONFIG = LogConfig(segment_bytes=400, index_interval_bytes=64)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def test_checkpoint_file_round_trips_in_kafka_text_format(tmp_path: Path) -> None:
    path = tmp_path / RECOVERY_POINT_CHECKPOINT_FILE_NAME
    offsets = {("orders", 1): 988, ("orders", 0): 1234, ("my-topic.v2", 10): 0}
    write_offset_checkpoint(path, offsets)
    assert path.read_text() == "0\n3\nmy-topic.v2 10 0\norders 0 1234\norders 1 988\n"
    assert read_offset_checkpoint(path) == offsets
    assert read_offset_checkpoint(tmp_path / "missing") == {}


def test_checkpoint_with_wrong_count_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint"
    path.write_text("0\n2\norders 0 5\n")
    with pytest.raises(ValueError):
        read_offset_checkpoint(path)


def test_clean_close_leaves_marker_and_checkpoints_and_reopen_keeps_data(tmp_path: Path, clock: ManualClock) -> None:
    manager = LogManager(tmp_path, CONFIG, clock)
    assert manager.open() is False  # a brand-new directory has no clean-shutdown marker
    log = manager.get_or_create("orders-eu", 2, CONFIG, uuid.uuid4())
    for index in range(20):
        append(log, batch([b"v%02d" % index]))
    log.high_watermark = log.log_end_offset
    log.delete_records_before(3)
    manager.close()
    assert (tmp_path / CLEAN_SHUTDOWN_FILE_NAME).exists()
    assert read_offset_checkpoint(tmp_path / RECOVERY_POINT_CHECKPOINT_FILE_NAME) == {("orders-eu", 2): 20}
    assert read_offset_checkpoint(tmp_path / LOG_START_OFFSET_CHECKPOINT_FILE_NAME) == {("orders-eu", 2): 3}

    reopened = LogManager(tmp_path, CONFIG, clock)
    assert reopened.open() is True
    assert not (tmp_path / CLEAN_SHUTDOWN_FILE_NAME).exists()  # a crash now must look unclean
    log = reopened.get("orders-eu", 2)
    assert log is not None
    assert (log.log_start_offset, log.log_end_offset) == (3, 20)
    assert record_values(log.read(3, 1_000_000).records)[-1] == (19, b"v19")


def test_unclean_restart_recovers_from_checkpointed_recovery_point(tmp_path: Path, clock: ManualClock) -> None:
    manager = LogManager(tmp_path, CONFIG, clock)
    manager.open()
    log = manager.get_or_create("t", 0, CONFIG)
    for index in range(20):
        append(log, batch([b"v%02d" % index]))
    log.flush()
    manager.checkpoint()
    append(log, batch([b"unflushed"]))
    log.close(clean=False)  # crash: no marker, no final checkpoint
    reopened = LogManager(tmp_path, CONFIG, clock)
    assert reopened.open() is False
    log = reopened.get("t", 0)
    assert log is not None and log.log_end_offset == 21
    assert log.recovery_point == 20


def test_deleted_partition_vanishes_and_is_not_reloaded(tmp_path: Path, clock: ManualClock) -> None:
    manager = LogManager(tmp_path, CONFIG, clock)
    manager.open()
    append(manager.get_or_create("a", 0, CONFIG), batch([b"x"]))
    append(manager.get_or_create("b", 0, CONFIG), batch([b"y"]))
    manager.delete_partition("a", 0)
    assert manager.get("a", 0) is None
    assert not (tmp_path / "a-0").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith("-delete")]
    manager.close()
    reopened = LogManager(tmp_path, CONFIG, clock)
    reopened.open()
    assert sorted((log.topic, log.partition) for log in reopened.all_logs()) == [("b", 0)]
    assert read_offset_checkpoint(tmp_path / RECOVERY_POINT_CHECKPOINT_FILE_NAME) == {("b", 0): 1}


def test_open_finishes_interrupted_deletes_and_ignores_other_directories(tmp_path: Path, clock: ManualClock) -> None:
    (tmp_path / "t-0.0123abcd-delete").mkdir()
    (tmp_path / "t-0.0123abcd-delete" / "00000000000000000000.log").write_bytes(b"")
    (tmp_path / "metadata").mkdir()
    (tmp_path / "meta.properties").write_text("node.id=1\n")
    manager = LogManager(tmp_path, CONFIG, clock)
    manager.open()
    assert list(manager.all_logs()) == []
    assert not (tmp_path / "t-0.0123abcd-delete").exists()
    assert (tmp_path / "metadata").exists()


def test_update_config_reaches_every_partition_of_the_topic(tmp_path: Path, clock: ManualClock) -> None:
    manager = LogManager(tmp_path, CONFIG, clock)
    manager.open()
    logs = [manager.get_or_create("t", partition, CONFIG) for partition in range(3)]
    other = manager.get_or_create("u", 0, CONFIG)
    new_config = LogConfig(segment_bytes=10_000)
    manager.update_config("t", new_config)
    assert [log.config for log in logs] == [new_config] * 3
    assert other.config == CONFIG
