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
"""
from __future__ import annotations

import glob
import hashlib
import os
import pickle
import time
import zlib
from typing import Any, Hashable, Iterator

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
from pipelines.models import make_model
from pipelines.records import DeadLetter
from pipelines.runners.kafka_job import KafkaJob
from pipelines.sinks import kafka_messages as formats
from pipelines.validation import JsonDecoder

# The end of a bounded input: Flink emits the largest watermark, which fires this timer.
END_OF_INPUT_MS = 2**63 - 2
# Test-only hook: "N:PATH" makes the operator raise once, at its first record after a checkpoint
# that completed once it had processed N records (so the restore has that state to restore);
# PATH is created then, so the restarted task does not raise again.
FAIL_ONCE_ENV = "DRIFTFLOW_FLINK_FAIL_ONCE"


class InjectedFailure(RuntimeError):
    """The test-only failure of `FAIL_ONCE_ENV`."""


class LiveState:
    """A key's live `PartitionState`; pickles as its sealed snapshot (`save_partition`) and
    nothing else (not the job: its Kafka client settings may hold secrets)."""

    def __init__(self, job: KafkaJob | None, slot: int, state: PartitionState | None,
                 blob: bytes | None = None, restored_at: int | None = None) -> None:
        self.job, self.slot, self.state, self.blob = job, slot, state, blob
        self.restored_at = restored_at   # the next offset the state was restored at

    def __getstate__(self) -> dict[str, Any]:
        blob = save_partition(self.job, self.slot, self.state) if self.state else self.blob
        return {"slot": self.slot, "blob": blob}

    def __setstate__(self, doc: dict[str, Any]) -> None:
        self.job, self.slot, self.blob, self.state = None, doc["slot"], doc["blob"], None


def model_slot(key: Hashable, seed: int) -> tuple[int, int]:
    """A key's slot (its partition, or a stable hash of a field's value) and model seed: a
    partition's model is seeded ``seed + partition``, as the Ray runner seeds it."""
    slot = key if isinstance(key, int) else zlib.crc32(str(key).encode()) & 0x7FFFFFFF
    return slot, seed + slot


def model_digest(host: ModelHost) -> str:
    """SHA-256 of the model snapshot's body: equal for equal model states."""
    return hashlib.sha256(unseal(host.model.snapshot())[1]).hexdigest()


class ModelFunction(KeyedProcessFunction):
    """Test-then-train per key; every prediction, drift event and dead letter is emitted as
    ``Row(topic, JSON text)`` (one sink writes them); at the end of a bounded input each key's summary is written
    to ``summary_dir`` (a local path or pyarrow.fs URI) for the driver's ``metrics.json``."""

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
        # Flink metrics (web UI, any Flink reporter): <operator>.driftflow.<name>
        group = runtime_context.get_metrics_group().add_group("driftflow")
        self._counters = {name: group.counter(name) for name in
                          ("records_in", "predictions", "dead_letters", "events")}

    def _state_of(self, key: Hashable, ctx: KeyedProcessFunction.Context) -> PartitionState:
        live = self._live.get(key)
        if live is None:
            stored = self._stored.value()
            slot, seed = model_slot(key, self.job.seed)
            if stored is not None:   # restored from a checkpoint or savepoint
                state = self.job.with_label_mode(load_partition(stored.blob, self.job.target))
            else:
                state = PartitionState(ModelHost(make_model(self.job.model, seed=seed),
                                                 no_labels=self.job.no_labels),
                                       JsonDecoder(target=self.job.target,
                                                   require_label=self.job.require_label), None)
            live = self._live[key] = LiveState(self.job, slot, state,
                                               restored_at=state.next_offset)
            ctx.timer_service().register_event_time_timer(END_OF_INPUT_MS)
        self._stored.update(live)
        return live.state

    def process_element(self, row: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
        key_raw, value, partition, offset = row[0], row[1], row[2], row[3]
        state = self._state_of(ctx.get_current_key(), ctx)
        item = state.decoder(value if value is not None else b"", offset, partition,
                             key=formats.key_text(key_raw))
        result = state.host.process(item)
        state.next_offset = offset + 1
        self._counters["records_in"].inc()
        if isinstance(result, Prediction):
            self._counters["predictions"].inc()
            yield Row(self._topics["predictions"],
                      formats.prediction_message(result).decode())
        elif isinstance(result, DeadLetter):
            self._counters["dead_letters"].inc()
            yield Row(self._topics["dead-letter"],
                      formats.dead_letter_message(result, self.job.topic).decode())
        for event in state.host.take_events():
            self._counters["events"].inc()
            yield Row(self._topics["drift"], formats.event_message(event, self.job.topic).decode())
        if self.fail_once:
            self._maybe_fail()

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

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Iterator[Any]:
        """End of a bounded input: this key's summary, metrics and model digest."""
        key = ctx.get_current_key()
        state = self._state_of(key, ctx)
        host = state.host
        doc = {key: {"summary": {**host.summary(time.perf_counter() - self._opened),
                                 "model_sha256": model_digest(host),
                                 "restored_at_offset": self._live[key].restored_at},
                     "metrics": host.metrics, "next_offset": state.next_offset}}
        name = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
        write_atomic(f"{self.summary_dir}/key-{name}.pkl", pickle.dumps(doc, protocol=5))
        return iter(())
