"""The Ray runner's worker: owns a fixed group of Kafka partitions, one ModelHost per partition.

A plain class, so it runs (and is tested) without Ray; `pipelines.ray_runner` makes it a Ray
actor at the edge. Ray re-runs only the constructor when it restarts an actor, so the
constructor is where each partition's checkpoint is loaded and the consumer seeks to its offset.

Checkpoint order, per the design (state before offsets, never the other way round):
flush the producer (and check every send since the last checkpoint succeeded), write each
partition's checkpoint (model snapshot + next offset, one sealed blob, atomically), then commit
the offsets to Kafka. Model state is therefore updated exactly once per record across crashes;
predictions are written at least once (records after the last checkpoint are read again).

With ``exactly_once`` the outputs and the offsets go into one Kafka transaction per checkpoint
(read them with ``isolation_level="read_committed"``), so predictions are exactly once too. The
checkpoint is written before the transaction commits, so the previous one is kept as
``p{n}.prev.ckpt``; on start the worker takes whichever of the two matches the offset that
Kafka committed (the old one when the crash came before the commit, as the outputs were aborted).
"""
from __future__ import annotations

import os
import pickle
import time
from dataclasses import dataclass
from typing import Any

from pipelines import _kafka_io as kio
from pipelines.checkpoint import read_bytes, seal, unseal, write_atomic
from pipelines.host import ModelHost, Prediction
from pipelines.model import AdaptiveModel, make_model
from pipelines.records import DeadLetter
from pipelines.validation import JsonDecoder

CHECKPOINT_SCHEMA = "driftflow.ray-partition/1"
# One poll returns at most this many messages: ~0.3 s of model work at ~600 us a record, so a
# stop request or a timed checkpoint is never far off, while the fetch overhead stays amortised.
POLL_MAX_RECORDS = 500
# How long one poll waits when nothing is there; short so an idle bounded run notices its end.
POLL_TIMEOUT_MS = 200
# Producer flush bound: a one-node broker acknowledges a batch in milliseconds; 60 s only
# guards against a broker that went away (the checkpoint then fails instead of hanging).
FLUSH_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class KafkaJob:
    """Settings of one Kafka job; every worker gets the same copy.

    ``checkpoint_every`` is in records per partition, ``checkpoint_seconds`` in seconds (a
    checkpoint is taken when either is reached); ``checkpoint_dir`` None disables checkpoints
    (a restarted worker then starts its partitions again from the beginning).
    """

    bootstrap: str
    topic: str
    model: str = "adaptive"
    seed: int = 0
    target: str = "y"
    group_id: str | None = None
    checkpoint_dir: str | None = None
    checkpoint_every: int = 1000
    checkpoint_seconds: float = 30.0
    output_prefix: str | None = None
    exactly_once: bool = False

    def __post_init__(self) -> None:
        if self.exactly_once and not self.checkpoint_dir:
            raise ValueError("exactly-once output needs a checkpoint directory")

    @property
    def group(self) -> str:
        return self.group_id or f"driftflow-{self.topic}"

    def output_topic(self, kind: str) -> str:
        """``<prefix>.predictions``, ``.drift`` or ``.dead-letter`` (prefix: the input topic)."""
        return f"{self.output_prefix or self.topic}.{kind}"

    def checkpoint_uri(self, partition: int, previous: bool = False) -> str:
        assert self.checkpoint_dir is not None
        suffix = ".prev.ckpt" if previous else ".ckpt"
        return f"{self.checkpoint_dir.rstrip('/')}/{self.topic}/p{partition}{suffix}"


@dataclass
class _PartitionState:
    host: ModelHost
    decoder: JsonDecoder
    next_offset: int | None          # None: start at the beginning of the partition
    since_checkpoint: int = 0


def save_partition(job: KafkaJob, partition: int, state: _PartitionState) -> bytes:
    """One partition's checkpoint: model snapshot, host counters, decoder schema, next offset."""
    host = state.host
    body = pickle.dumps({
        "topic": job.topic, "partition": partition, "next_offset": state.next_offset,
        "model": host.model.snapshot(),
        "host": {"metrics": host.metrics, "records": host.records,
                 "dead_letters": host.dead_letters, "skipped": host.skipped,
                 "drift_positions": host.drift_positions},
        "validator": state.decoder._validator,
    }, protocol=5)
    return seal(body, schema=CHECKPOINT_SCHEMA,
                meta={"topic": job.topic, "partition": partition, "next_offset": state.next_offset})


def load_partition(blob: bytes, target: str) -> _PartitionState:
    """Rebuild a partition's state from `save_partition`'s blob (checked before unpickling)."""
    _, body = unseal(blob, schema=CHECKPOINT_SCHEMA)
    doc = pickle.loads(body)
    host = ModelHost(AdaptiveModel.restore(doc["model"]), **doc["host"])
    decoder = JsonDecoder(target=target)
    decoder._validator = doc["validator"]
    return _PartitionState(host, decoder, doc["next_offset"])


class PartitionWorker:
    """Consumes ``partitions`` of ``job.topic`` (manual assignment), runs the data path, produces
    predictions, drift events and dead letters, and checkpoints each partition."""

    def __init__(self, job: KafkaJob, partitions: list[int]) -> None:
        from kafka import KafkaConsumer, KafkaProducer, TopicPartition

        self.job = job
        self.partitions = list(partitions)
        self.started_at = time.time()
        self.first_output_at: float | None = None
        self.checkpoints = 0
        self._stop = False
        self._tps = {p: TopicPartition(job.topic, p) for p in self.partitions}
        self._consumer = KafkaConsumer(
            bootstrap_servers=job.bootstrap, group_id=job.group, enable_auto_commit=False,
            auto_offset_reset="earliest", client_id=f"driftflow-{os.getpid()}",
            isolation_level="read_committed" if job.exactly_once else "read_uncommitted")
        self._consumer.assign(list(self._tps.values()))
        self._producer = KafkaProducer(
            bootstrap_servers=job.bootstrap, acks="all", linger_ms=20,
            # one stable id per partition group: a restarted worker fences its dead incarnation
            transactional_id=(f"driftflow-{job.group}-{job.topic}-"
                              + "-".join(map(str, self.partitions))) if job.exactly_once else None)
        if job.exactly_once:
            self._producer.init_transactions()   # aborts what the previous incarnation left open
        self._state = {p: self._restore(p) for p in self.partitions}
        for p, tp in self._tps.items():
            offset = self._state[p].next_offset
            if offset is None:
                self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, offset)
        self._pending: list[Any] = []   # send futures since the last checkpoint
        self._last_checkpoint = time.monotonic()

    def _restore(self, p: int) -> _PartitionState:
        """The partition's last checkpoint, or a fresh model (from the beginning) without one."""
        job = self.job
        blobs = ([read_bytes(job.checkpoint_uri(p, previous)) for previous in (False, True)]
                 if job.checkpoint_dir else [])
        states = [load_partition(b, job.target) for b in blobs if b is not None]
        if job.exactly_once and states:
            committed = self._consumer.committed(self._tps[p])
            states = [s for s in states if s.next_offset == committed]
            if not states and committed is not None:
                raise RuntimeError(f"partition {p}: no checkpoint matches the committed offset "
                                   f"{committed} of group {job.group!r}")
        if states:
            return states[0]
        return _PartitionState(ModelHost(make_model(job.model, seed=job.seed + p)),
                               JsonDecoder(target=job.target), None)

    # -- small remote-callable helpers ------------------------------------------------------------
    def pid(self) -> int:
        return os.getpid()

    def progress(self) -> dict[str, Any]:
        """Where each partition is (next offset), checkpoints taken, start and first-output times
        (epoch seconds) of this incarnation of the worker."""
        return {"pid": os.getpid(), "started_at": self.started_at,
                "first_output_at": self.first_output_at, "checkpoints": self.checkpoints,
                "next_offsets": {p: s.next_offset for p, s in self._state.items()}}

    def stop(self) -> None:
        """Ask `run` to finish at the next poll (final checkpoint included)."""
        self._stop = True

    # -- the loop --------------------------------------------------------------------------------
    def run(self, until_end: bool = True) -> dict[int, dict[str, Any]]:
        """Consume until every partition reached the end offsets seen now (``until_end``) or
        until `stop`; then checkpoint, flush and return per-partition results."""
        t0 = time.perf_counter()
        ends = {tp.partition: off for tp, off in
                self._consumer.end_offsets(list(self._tps.values())).items()}
        for p, tp in self._tps.items():
            if self._state[p].next_offset is None:
                self._state[p].next_offset = self._consumer.position(tp)
        if self.job.exactly_once:
            self._producer.begin_transaction()
        while not self._stop:
            if until_end and all(self._state[p].next_offset >= ends[p] for p in self.partitions):
                break
            batches = self._consumer.poll(timeout_ms=POLL_TIMEOUT_MS, max_records=POLL_MAX_RECORDS)
            for tp, messages in batches.items():
                self._handle(tp.partition, messages)
            self._maybe_checkpoint()
        self.checkpoint(final=True)
        seconds = time.perf_counter() - t0
        return {p: {"summary": s.host.summary(seconds), "metrics": s.host.metrics,
                    "next_offset": s.next_offset} for p, s in self._state.items()}

    def _handle(self, partition: int, messages: list[Any]) -> None:
        state = self._state[partition]
        send = self._producer.send
        for m in messages:
            item = state.decoder(m.value, m.offset, m.partition, key=kio.key_text(m.key),
                                 ts=m.timestamp / 1000 if m.timestamp is not None else None)
            result = state.host.process(item)
            if isinstance(result, Prediction):
                value = kio.prediction_message(result, state.host.model.n_learned)
                self._pending.append(send(self.job.output_topic("predictions"), value=value,
                                          key=m.key, partition=partition))
            elif isinstance(result, DeadLetter):
                self._pending.append(send(self.job.output_topic("dead-letter"), key=m.key,
                                          value=kio.dead_letter_message(result, self.job.topic),
                                          partition=partition))
            for event in state.host.take_events():
                self._pending.append(send(self.job.output_topic("drift"), partition=partition,
                                          value=kio.event_message(event, self.job.topic)))
            state.next_offset = m.offset + 1
            state.since_checkpoint += 1
        if messages and self.first_output_at is None:
            self.first_output_at = time.time()

    def _maybe_checkpoint(self) -> None:
        due_time = time.monotonic() - self._last_checkpoint >= self.job.checkpoint_seconds
        if any(s.since_checkpoint >= self.job.checkpoint_every or (due_time and s.since_checkpoint)
               for s in self._state.values()):
            self.checkpoint()

    def checkpoint(self, final: bool = False) -> None:
        """Flush sinks, save state, then commit offsets (in that order); with ``exactly_once``
        the commit is the transaction's, and a new one begins unless this is the ``final``."""
        from kafka.structs import OffsetAndMetadata

        self._producer.flush(timeout=FLUSH_TIMEOUT_S)
        failed = [f for f in self._pending if not f.is_done or f.failed()]
        if failed:
            exc = failed[0].exception if failed[0].is_done else "not acknowledged in time"
            raise RuntimeError(f"{len(failed)} output message(s) were not delivered: {exc}")
        self._pending = []
        offsets = {}
        for p, state in self._state.items():
            if state.next_offset is None:
                continue
            if self.job.checkpoint_dir and state.since_checkpoint:
                if self.job.exactly_once:   # keep the state the open transaction started from
                    old = read_bytes(self.job.checkpoint_uri(p))
                    if old is not None:
                        write_atomic(self.job.checkpoint_uri(p, previous=True), old)
                write_atomic(self.job.checkpoint_uri(p), save_partition(self.job, p, state))
            state.since_checkpoint = 0
            offsets[self._tps[p]] = OffsetAndMetadata(state.next_offset, "", -1)
        if self.job.exactly_once:
            if offsets:
                self._producer.send_offsets_to_transaction(offsets, self.job.group)
            self._producer.commit_transaction()
            if not final:
                self._producer.begin_transaction()
        elif offsets:
            self._consumer.commit(offsets)
        self._last_checkpoint = time.monotonic()
        self.checkpoints += 1

    def close(self) -> None:
        self._producer.close(timeout=FLUSH_TIMEOUT_S)
        self._consumer.close()
