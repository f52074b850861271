"""Seeded randomized histories of many interleaved transactional producers, then checked.

Goal: the partition side (LSO, markers, aborted-transaction index, producer state, restarts)
and the coordinator side (epochs, fencing, timeouts, markers after a coordinator restart)
together keep read_committed exact.  After every history:

* no record of an aborted transaction is visible to read_committed;
* no record of a committed transaction (nor a plain write) is missing;
* no record appears twice (producer retries are deduplicated);
* offsets are dense: every offset below the log end holds a data record or a marker.

Method: a pure ``TransactionCoordinatorShard`` and real ``PartitionLog``s in a temp dir,
driven by one ``random.Random(seed)``: producers begin, add partitions, send (sometimes
retrying the same batch), commit or abort; a second instance of a transactional id fences the
first; the clock passes a producer's timeout and the coordinator aborts it; zombies write
with old epochs; markers are written late and in random order; partitions reopen after a
clean or unclean close; the coordinator is rebuilt from its records and finishes what was
decided.  Produce follows the broker's rules (KIP-890 verification, then the log's checks).
The read_committed reader filters fetches exactly as a Kafka consumer does, with small fetch
sizes so aborted-transaction lists are cut at many offsets.  A failure names its seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from streambus.coordinator.txn.coordinator import MarkerJob, TransactionCoordinatorShard, TxnConfig
from streambus.log.config import LogConfig
from streambus.log.partition_log import PartitionLog
from streambus.log.producer_state import ProducerStateError
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.records.batch import iter_batch_headers, validate_batches
from streambus.protocol.records.control import ControlRecordType, parse_control_record
from streambus.protocol.records.record import build_batch, decode_records

PARTITIONS = 3
TXN_TIMEOUT_MS = 10_000
START_MS = 1_700_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now_ms = START_MS

    def __call__(self) -> int:
        return self.now_ms


@dataclass
class Producer:
    transactional_id: str
    producer_id: int = -1
    producer_epoch: int = -1
    sequences: dict[int, int] = field(default_factory=dict)
    in_txn: bool = False
    partitions: set[int] = field(default_factory=set)
    pending: list[tuple[int, bytes]] = field(default_factory=list)
    last_batch: tuple[int, bytearray, list[bytes]] | None = None
    fenced: bool = False


class History:
    """One simulated broker: coordinator shard, partition logs, marker queue, model."""

    def __init__(self, seed: int, directory: Path) -> None:
        self.rng = random.Random(seed)
        self.directory = directory
        self.clock = Clock()
        self.config = LogConfig(segment_bytes=2048)
        self.logs = [self._open(p, clean=True) for p in range(PARTITIONS)]
        self.records: list = []  # the coordinator's __transaction_state, in order
        next_id = iter(range(5000, 10**6))
        self.next_producer_id = lambda: next(next_id)
        self.shard = TransactionCoordinatorShard(TxnConfig(), self.next_producer_id)
        self.jobs: list[MarkerJob] = []
        self.committed: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
        self.aborted: set[bytes] = set()
        self.decided: dict[str, list[tuple[int, bytes]]] = {}
        self.value_count = 0
        self.plain_sequences = [0] * PARTITIONS
        self.plain_producer_id = 1

    # -- infrastructure -----------------------------------------------------------------------

    def _open(self, partition: int, clean: bool) -> PartitionLog:
        return PartitionLog.open(self.directory / f"t-{partition}", self.config,
                                 clock_ms=self.clock, clean_shutdown=clean)

    def run(self, outcome) -> ErrorCode:
        """The runtime's contract, synchronously: persist, complete, queue markers."""
        if outcome.transit is None:
            return outcome.error
        self.records.extend(outcome.records)
        if outcome.transit.state.name == "DEAD":
            self.shard.remove_dead(outcome.transactional_id)
            return ErrorCode.NONE
        job = self.shard.complete_transition(outcome.transactional_id, outcome.transit)
        if job is not None:
            self.jobs.append(job)
        return outcome.error

    def write_markers(self, job: MarkerJob) -> None:
        for topic, partition in sorted(job.partitions):
            log = self.logs[partition]
            log.append_control_marker(producer_id=job.producer_id,
                                      producer_epoch=job.producer_epoch,
                                      coordinator_epoch=job.coordinator_epoch,
                                      commit=job.commit, leader_epoch=0)
            log.high_watermark = log.log_end_offset
        assert self.run(self.shard.prepare_complete(job, now_ms=self.clock())) == ErrorCode.NONE

    def restart_coordinator(self) -> None:
        """Rebuild from the records; decided-but-incomplete transactions get new jobs."""
        shard = TransactionCoordinatorShard(TxnConfig(), self.next_producer_id)
        for record in self.records:
            shard.replay(record)
        self.shard = shard
        self.jobs = shard.on_loaded(0)

    def restart_partition(self, partition: int) -> None:
        clean = self.rng.random() < 0.5
        self.logs[partition].close(clean=clean)
        self.logs[partition] = self._open(partition, clean)
        self.logs[partition].high_watermark = self.logs[partition].log_end_offset

    # -- producer actions ---------------------------------------------------------------------

    def decide(self, producer: Producer, commit: bool) -> None:
        """The coordinator accepted the producer's decision: the model follows it."""
        values = producer.pending
        if commit:
            for partition, value in values:
                self.committed[partition].append(value)
        else:
            self.aborted.update(value for _, value in values)
        producer.pending = []
        producer.in_txn = False
        producer.partitions = set()

    def init(self, producer: Producer) -> None:
        for _ in range(10):
            outcome = self.shard.init_producer_id(producer.transactional_id, TXN_TIMEOUT_MS,
                                                  expected=None, now_ms=self.clock())
            error = self.run(outcome)
            if error == ErrorCode.NONE:
                producer.producer_id = outcome.producer_id
                producer.producer_epoch = outcome.producer_epoch
                producer.sequences = {}
                producer.fenced = False
                producer.last_batch = None
                return
            assert error == ErrorCode.CONCURRENT_TRANSACTIONS, error
            self.flush_markers()
        raise AssertionError("InitProducerId never succeeded")

    def fence_by_new_instance(self, producer: Producer, others: list[Producer]) -> None:
        """A second instance with the same id: its init aborts the first one's transaction."""
        if producer.in_txn:
            self.decide(producer, commit=False)
        self.init(producer)

    def send(self, producer: Producer) -> None:
        partition = self.rng.randrange(PARTITIONS)
        if partition not in producer.partitions:
            error = self.run(self.shard.add_partitions(
                producer.transactional_id, producer.producer_id, producer.producer_epoch,
                [("t", partition)], now_ms=self.clock()))
            if error == ErrorCode.PRODUCER_FENCED:
                self.zombie(producer)
                return
            if error == ErrorCode.CONCURRENT_TRANSACTIONS:
                return  # a previous decision's markers are still being written
            assert error == ErrorCode.NONE, error
            producer.partitions.add(partition)
            producer.in_txn = True
        count = self.rng.randint(1, 3)
        values = []
        for _ in range(count):
            self.value_count += 1
            values.append(f"{producer.transactional_id}/{self.value_count}".encode())
        sequence = producer.sequences.get(partition, 0)
        batch = bytearray(build_batch(
            [(None, v, [], self.clock()) for v in values], producer_id=producer.producer_id,
            producer_epoch=producer.producer_epoch, base_sequence=sequence,
            is_transactional=True))
        if self.produce(producer, partition, batch) is None:
            self.zombie(producer)
            return
        producer.sequences[partition] = sequence + count
        producer.pending += [(partition, v) for v in values]
        producer.last_batch = (partition, batch, values)
        if self.rng.random() < 0.2:
            # The producer did not see the answer and retries: deduplicated, not re-written.
            first = self.produce(producer, partition, bytearray(batch))
            assert first is not None and first.duplicate

    def produce(self, producer: Producer, partition: int, batch: bytearray):
        """The broker's Produce path for one partition; None when refused."""
        log = self.logs[partition]
        headers = validate_batches(batch)
        if not log.has_ongoing_transaction(producer.producer_id):
            verified = self.shard.verify_partitions(producer.transactional_id,
                                                    producer.producer_id,
                                                    producer.producer_epoch, [("t", partition)])
            if verified[("t", partition)] != ErrorCode.NONE:
                return None
        try:
            result = log.append_as_leader(batch, headers, leader_epoch=0)
        except ProducerStateError:
            return None
        log.high_watermark = log.log_end_offset
        return result

    def zombie(self, producer: Producer) -> None:
        """A fenced producer: its writes are refused; it re-initialises (a new epoch)."""
        if producer.last_batch is not None:
            partition, batch, _ = producer.last_batch
            stale = bytearray(batch)
            assert self.produce(producer, partition, stale) is None or \
                self.logs[partition].has_ongoing_transaction(producer.producer_id)
        producer.pending = []  # whatever it had was aborted by the coordinator already
        producer.in_txn = False
        producer.partitions = set()
        self.init(producer)

    def end(self, producer: Producer, commit: bool) -> None:
        if not producer.in_txn:
            return
        error = self.run(self.shard.end_txn(producer.transactional_id, producer.producer_id,
                                            producer.producer_epoch, commit,
                                            now_ms=self.clock()))
        if error == ErrorCode.NONE:
            self.decide(producer, commit)
        elif error in (ErrorCode.PRODUCER_FENCED, ErrorCode.INVALID_PRODUCER_ID_MAPPING):
            self.zombie(producer)
        else:
            assert error == ErrorCode.CONCURRENT_TRANSACTIONS, error

    def plain_write(self) -> None:
        partition = self.rng.randrange(PARTITIONS)
        self.value_count += 1
        value = f"plain/{self.value_count}".encode()
        batch = bytearray(build_batch([(None, value, [], self.clock())],
                                      producer_id=self.plain_producer_id, producer_epoch=0,
                                      base_sequence=self.plain_sequences[partition]))
        log = self.logs[partition]
        log.append_as_leader(batch, validate_batches(batch), leader_epoch=0)
        log.high_watermark = log.log_end_offset
        self.plain_sequences[partition] += 1
        self.committed[partition].append(value)

    def time_out(self, producers: list[Producer]) -> None:
        self.clock.now_ms += TXN_TIMEOUT_MS + 1
        timed_out = {o.transactional_id for o in self.shard.timed_out_transactions(self.clock())
                     if self.run(o) == ErrorCode.NONE}
        for producer in producers:
            if producer.transactional_id in timed_out:
                self.decide(producer, commit=False)
                producer.fenced = True

    def flush_markers(self) -> None:
        while self.jobs:
            self.write_markers(self.jobs.pop(0))

    # -- the history --------------------------------------------------------------------------

    def play(self, steps: int, producer_count: int) -> None:
        producers = [Producer(f"txn-{i}") for i in range(producer_count)]
        for producer in producers:
            self.init(producer)
        for _ in range(steps):
            self.clock.now_ms += self.rng.randint(0, 50)
            producer = self.rng.choice(producers)
            action = self.rng.random()
            if producer.fenced:
                self.zombie(producer)
            elif action < 0.45:
                self.send(producer)
            elif action < 0.60:
                self.end(producer, commit=True)
            elif action < 0.70:
                self.end(producer, commit=False)
            elif action < 0.78 and self.jobs:
                # Markers land late and out of order.
                self.write_markers(self.jobs.pop(self.rng.randrange(len(self.jobs))))
            elif action < 0.83:
                self.plain_write()
            elif action < 0.86:
                self.fence_by_new_instance(producer, producers)
            elif action < 0.88:
                self.time_out(producers)
            elif action < 0.91:
                self.restart_partition(self.rng.randrange(PARTITIONS))
            elif action < 0.93:
                self.restart_coordinator()
            self.check_lso_invariant()
        for producer in producers:  # decide everything still open, then write every marker
            if producer.fenced:
                self.zombie(producer)
            self.end(producer, commit=self.rng.random() < 0.5)
        self.flush_markers()

    # -- checks -------------------------------------------------------------------------------

    def check_lso_invariant(self) -> None:
        for log in self.logs:
            assert log.log_start_offset <= log.last_stable_offset <= log.high_watermark
            first_unstable = log.first_unstable_offset()
            if first_unstable is not None:
                assert log.last_stable_offset == first_unstable

    def read_committed(self, partition: int) -> list[tuple[int, bytes]]:
        """A Kafka consumer's read_committed loop over small fetches."""
        log = self.logs[partition]
        offset = log.log_start_offset
        seen: list[tuple[int, bytes]] = []
        for _ in range(100_000):
            if offset >= log.last_stable_offset:
                break
            result = log.read(offset, self.rng.choice([200, 500, 4096]),
                              max_offset=log.last_stable_offset)
            data = result.records
            assert data, f"no progress at {offset}"
            headers = list(iter_batch_headers(data))
            upper = headers[-1].next_offset
            aborted = sorted(log.collect_aborted_transactions(offset, upper),
                             key=lambda e: e.first_offset)
            aborted_producers: set[int] = set()
            for header in headers:
                while aborted and aborted[0].first_offset <= header.last_offset:
                    aborted_producers.add(aborted.pop(0).producer_id)
                batch = bytes(data[header.position:header.position + header.size_bytes])
                if header.is_control:
                    marker, _ = parse_control_record(batch)
                    if marker == ControlRecordType.ABORT:
                        aborted_producers.discard(header.producer_id)
                elif not (header.is_transactional and header.producer_id in aborted_producers):
                    for record in decode_records(batch):
                        if record.offset >= offset:
                            seen.append((record.offset, record.value))
            offset = upper
        return seen

    def check(self) -> None:
        for partition in range(PARTITIONS):
            log = self.logs[partition]
            assert log.last_stable_offset == log.high_watermark == log.log_end_offset
            visible = self.read_committed(partition)
            values = [value for _, value in visible]
            assert len(values) == len(set(values)), "a record is visible twice"
            assert not set(values) & self.aborted, "an aborted record is visible"
            assert sorted(values) == sorted(self.committed[partition]), \
                "committed records missing or extra"
            # Dense offsets: every offset holds a data record or a marker.
            everything = log.read(0, 1 << 30, max_offset=log.log_end_offset).records
            offsets = []
            for header in iter_batch_headers(everything):
                if header.is_control:
                    offsets.append(header.base_offset)
                else:
                    batch = everything[header.position:header.position + header.size_bytes]
                    offsets += [r.offset for r in decode_records(bytes(batch))]
            assert offsets == list(range(log.log_end_offset)), "offsets are not dense"


@pytest.mark.parametrize("seed", range(12))
def test_random_transactional_history_is_exact_for_read_committed(tmp_path: Path,
                                                                  seed: int) -> None:
    history = History(seed, tmp_path)
    try:
        history.play(steps=400, producer_count=6)
        history.check()
    except AssertionError as exc:
        raise AssertionError(f"seed {seed}: {exc}") from exc
    finally:
        for log in history.logs:
            log.close(clean=True)
