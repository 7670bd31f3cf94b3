"""The Flink runner's keyed operator: one model per key (a Kafka partition, or a record field),
the shared data path (`JsonDecoder` -> `ModelHost`) and the Ray runner's message formats.

Where the model lives. PyFlink has no checkpoint hook for Python functions, but its keyed state
is written back to Flink at the end of each bundle (process mode): before every checkpoint
barrier, and every ``python.fn-execution.bundle.size`` records or ``bundle.time`` ms. So the
operator keeps each key's live state (model, counters, decoder) in a per-key Python dict and
puts a `LiveState` holder in ValueState after every record; the holder costs nothing to put
there (the state backend's Python cache just keeps the reference), and pickling it calls
`save_partition` (the model's array snapshot plus counters, sealed) at that moment. The
snapshot is therefore taken only when Flink writes the state back, and always reflects the
records before the barrier. After a restore the holder comes back as bytes and the key's state
is rebuilt from them on first use. In thread mode every state access is (un)pickled at once,
i.e. one snapshot per record (bench/FLINK.md measures both).

With a labels topic (`label_operator.LabelledModelFunction`) the labels stream is connected
to the records, keyed alike, and each key's held records, label backlog and orphans
(`labels.KeyLabels`) ride in the same holder; `pipelines.runners.flink.labels` says how a
label is ordered against the records.

Metrics: each key's figures (`pipelines.runners.status.partition_status`, the Ray runner's
fields) are Flink gauges under ``<operator>.driftflow.key.<key>.<name>``, read at the end of
each bundle; gauges rather than counters because a key restored from a checkpoint continues
from its checkpointed counts (a Flink counter would restart at zero and count the replayed
records again). Flink's metric values from Python are integers: ``windowed_accuracy_permille``.
"""
from __future__ import annotations

import glob
import hashlib
import os
import pickle
import time
import zlib
from collections.abc import Hashable, Iterator
from typing import Any

from pyflink.common import Row, Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor

from pipelines.checkpoints import unseal, write_atomic
from pipelines.checkpoints.partition import (
    PartitionState,
    load_partition,
    save_partition,
)
from pipelines.host import ModelHost, Prediction
from pipelines.label_schedule import with_held_label
from pipelines.models import make_model
from pipelines.records import DeadLetter
from pipelines.runners.flink.labels import KeyLabels, epoch_ms
from pipelines.runners.kafka_job import KafkaJob
from pipelines.runners.status import partition_status
from pipelines.sinks import kafka_messages as formats
from pipelines.validation import JsonDecoder

# The end of a bounded input: Flink emits the largest watermark, which fires this timer.
END_OF_INPUT_MS = 2**63 - 2
# Test-only hook: "N:PATH" makes the operator raise once, at its first record after a checkpoint
# that completed once it had processed N records (so the restore has that state to restore);
# PATH is created then, so the restarted task does not raise again.
FAIL_ONCE_ENV = "DRIFTFLOW_FLINK_FAIL_ONCE"
# The per-key gauges: `partition_status` fields (integers) and the event-time lag.
GAUGES = ("records_in", "predictions", "dead_letters", "drifts", "experts")


class InjectedFailure(RuntimeError):
    """The test-only failure of `FAIL_ONCE_ENV`."""


class LiveState:
    """A key's live `PartitionState` (and its `KeyLabels` with a labels topic); pickles as its
    sealed snapshot (`save_partition`) and the labels' plain data, nothing else (not the job:
    its Kafka client settings may hold secrets)."""

    def __init__(self, job: KafkaJob | None, slot: int, state: PartitionState | None,
                 blob: bytes | None = None, restored_at: int | None = None,
                 labels: KeyLabels | None = None) -> None:
        self.job, self.slot, self.state, self.blob = job, slot, state, blob
        self.restored_at = restored_at   # the next offset the state was restored at
        self.labels = labels
        self.last_timestamp: Any = None  # the newest record's Kafka timestamp (an Instant)

    def __getstate__(self) -> dict[str, Any]:
        blob = save_partition(self.job, self.slot, self.state) if self.state else self.blob
        return {"slot": self.slot, "blob": blob, "labels": self.labels}

    def __setstate__(self, doc: dict[str, Any]) -> None:
        self.job, self.slot, self.blob, self.state = None, doc["slot"], doc["blob"], None
        self.labels, self.last_timestamp = doc.get("labels"), None


def model_slot(key: Hashable, seed: int) -> tuple[int, int]:
    """A key's slot (its partition, or a stable hash of a field's value) and model seed: a
    partition's model is seeded ``seed + partition``, as the Ray runner seeds it."""
    slot = key if isinstance(key, int) else zlib.crc32(str(key).encode()) & 0x7FFFFFFF
    return slot, seed + slot


def model_digest(host: ModelHost) -> str:
    """SHA-256 of the model snapshot's body: equal for equal model states."""
    return hashlib.sha256(unseal(host.model.snapshot())[1]).hexdigest()


class KeyModels:
    """What both operators share: each key's live state and its Flink state, outputs as
    ``Row(topic, JSON text)`` (one sink writes them), the per-key gauges and, at the end of a
    bounded input, each key's summary written to ``summary_dir`` (a local path or pyarrow.fs
    URI) for the driver's ``metrics.json``."""

    def __init__(self, job: KafkaJob, summary_dir: str, fail_once: str | None = None) -> None:
        self.job = job
        self.summary_dir = summary_dir
        self.fail_once = fail_once

    def open(self, runtime_context: RuntimeContext) -> None:
        self._stored = runtime_context.get_state(
            ValueStateDescriptor("partition-state", Types.PICKLED_BYTE_ARRAY()))
        self._live: dict[Hashable, LiveState] = {}
        self._opened = time.perf_counter()
        self._topics = {kind: self.job.output_topic(kind)
                        for kind in ("predictions", "drift", "dead-letter")}
        self._metrics = runtime_context.get_metrics_group().add_group("driftflow")

    def _new_labels(self) -> KeyLabels | None:
        return None

    def _live_of(self, key: Hashable, ctx: Any) -> LiveState:
        """The key's live state: in this task already, restored from Flink's state (a
        checkpoint or savepoint), or new; marked for Flink to write back (see module doc)."""
        live = self._live.get(key)
        if live is None:
            stored = self._stored.value()
            slot, seed = model_slot(key, self.job.seed)
            if stored is not None:   # restored from a checkpoint or savepoint
                state = self.job.with_label_mode(load_partition(stored.blob, self.job.target))
                labels = stored.labels
            else:
                state = PartitionState(ModelHost(make_model(self.job.model, seed=seed),
                                                 joiner=self.job.new_joiner(),
                                                 no_labels=self.job.no_labels),
                                       JsonDecoder(target=self.job.target,
                                                   require_label=self.job.require_label), None)
                labels = self._new_labels()
            live = self._live[key] = LiveState(self.job, slot, state,
                                               restored_at=state.next_offset, labels=labels)
            ctx.timer_service().register_event_time_timer(END_OF_INPUT_MS)
            self._register_gauges(key, live)
        self._stored.update(live)
        return live

    def _register_gauges(self, key: Hashable, live: LiveState) -> None:
        """The key's figures as Flink gauges (read at each bundle's end)."""
        group = self._metrics.add_group("key", str(key))

        def status() -> dict[str, Any]:
            return partition_status(live.state.host, live.state.next_offset, None, 0.0)

        for name in GAUGES:
            group.gauge(name, lambda name=name: int(status()[name]))
        group.gauge("windowed_accuracy_permille",
                    lambda: round(1000 * status()["windowed_accuracy"]))
        group.gauge("event_time_lag_ms", lambda: 0 if live.last_timestamp is None else
                    max(0, int(time.time() * 1000) - epoch_ms(live.last_timestamp)))

    def _record(self, live: LiveState, key_raw: bytes | None, value: bytes | None,
                partition: int, offset: int) -> Iterator[Any]:
        """Test-then-train one record; its prediction or dead letter, then its drift events."""
        state = live.state
        item = state.decoder(value, offset, partition, key=formats.key_text(key_raw))
        if live.labels is not None:   # its label came first: held as an orphan
            item = with_held_label(item, live.labels.orphans)
        result = state.host.process(item)
        state.next_offset = offset + 1
        if isinstance(result, Prediction):
            yield Row(self._topics["predictions"], formats.prediction_message(result).decode())
        elif isinstance(result, DeadLetter):
            yield self._dead_letter(result, self.job.topic)
        yield from self._events(state.host)
        if self.fail_once:
            self._maybe_fail()

    def _dead_letter(self, dead: DeadLetter, source_topic: str) -> Any:
        return Row(self._topics["dead-letter"],
                   formats.dead_letter_message(dead, source_topic).decode())

    def _events(self, host: ModelHost) -> Iterator[Any]:
        for event in host.take_events():
            yield Row(self._topics["drift"], formats.event_message(event, self.job.topic).decode())

    def _maybe_fail(self) -> None:
        at, marker = self.fail_once.split(":", 1)
        self._seen = getattr(self, "_seen", 0) + 1
        if self._seen == int(at):
            self._armed_at = time.time()
        if self._seen <= int(at) or os.path.exists(marker):
            return
        done = glob.glob(os.path.join(self.job.checkpoint_dir or "", "*", "chk-*", "_metadata"))
        if any(os.path.getmtime(path) > self._armed_at for path in done):
            open(marker, "w").close()
            raise InjectedFailure(f"injected failure at record {self._seen} ({FAIL_ONCE_ENV})")

    def _write_summary(self, key: Hashable, live: LiveState) -> None:
        """End of a bounded input: this key's summary, metrics, model digest (and label
        counts, as a Ray worker's ``worker_labels``)."""
        state = live.state
        host = state.host
        result = {"summary": {**host.summary(time.perf_counter() - self._opened),
                              "model_sha256": model_digest(host),
                              "restored_at_offset": live.restored_at},
                  "metrics": host.metrics, "next_offset": state.next_offset}
        if live.labels is not None:
            result["worker_labels"] = live.labels.counts()
        name = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
        write_atomic(f"{self.summary_dir}/key-{name}.pkl",
                     pickle.dumps({key: result}, protocol=5))


class ModelFunction(KeyModels, KeyedProcessFunction):
    """Test-then-train per key on rows ``(key, value, partition, offset, timestamp)``."""

    def process_element(self, row: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
        live = self._live_of(ctx.get_current_key(), ctx)
        live.last_timestamp = row[4]
        yield from self._record(live, row[0], row[1], row[2], row[3])

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Iterator[Any]:
        key = ctx.get_current_key()
        self._write_summary(key, self._live_of(key, ctx))
        return iter(())
