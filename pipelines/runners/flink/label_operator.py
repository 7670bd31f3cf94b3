"""The Flink runner's keyed operator with delayed labels: `LabelledModelFunction`, the records
(input 1) connected to their labels (input 2), keyed alike; `labels` says how a label is
ordered against the records, `operator` holds what it shares with the label-less operator."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pyflink.datastream import KeyedCoProcessFunction, TimeDomain

from pipelines.label_schedule import (
    InvalidLabel,
    invalid_label_letter,
    parse_label_message,
)
from pipelines.records import DeadLetter
from pipelines.runners.flink.labels import LABEL_WAIT_S, KeyLabels, epoch_ms
from pipelines.runners.flink.operator import KeyModels, LiveState
from pipelines.runners.kafka_job import KafkaJob


class LabelledModelFunction(KeyModels, KeyedCoProcessFunction):
    """Records (input 1, as `ModelFunction`'s) and their delayed labels (input 2: ``(key,
    value, partition, offset, timestamp ms)``, every label to every key, see
    `labels.ToEveryKey`), joined by id per key on the Ray runner's schedule. ``label_bounds``:
    the labels partitions' first and end offsets of a bounded job (None: unbounded). An invalid
    label message reaches every key; only ``reporting_key`` sends its dead letter."""

    def __init__(self, job: KafkaJob, summary_dir: str, label_partitions: list[int],
                 label_bounds: dict[int, tuple[int, int]] | None, reporting_key: int,
                 fail_once: str | None = None) -> None:
        super().__init__(job, summary_dir, fail_once)
        self.label_partitions = list(label_partitions)
        self.label_bounds = label_bounds
        self.reporting_key = reporting_key

    def _new_labels(self) -> KeyLabels:
        return KeyLabels(self.job.new_joiner(), self.label_bounds, self.label_partitions)

    def process_element1(self, row: Any, ctx: KeyedCoProcessFunction.Context) -> Iterator[Any]:
        live = self._live_of(ctx.get_current_key(), ctx)
        live.last_timestamp = row[4]
        live.labels.hold((row[0], row[1], row[2], row[3], epoch_ms(row[4])))
        yield from self._release(live, ctx)

    def process_element2(self, row: Any, ctx: KeyedCoProcessFunction.Context) -> Iterator[Any]:
        live = self._live_of(ctx.get_current_key(), ctx)
        live.labels.add_label(row[2], row[3], row[4], row[1])
        yield from self._release(live, ctx)

    def _release(self, live: LiveState, ctx: Any, force: bool = False) -> Iterator[Any]:
        """Apply the labels due, then process each held record whose labels are all here
        (every one when ``force``), each followed by the labels it makes due; a record still
        held arms the `LABEL_WAIT_S` timer."""
        labels = live.labels
        yield from self._apply_labels(live, labels.due_labels())
        while (record := labels.next_record(force)) is not None:
            yield from self._record(live, *record[:4])
            yield from self._apply_labels(live, labels.due_labels())
        if labels.pending and labels.wait_timer is None:
            labels.wait_timer = int(ctx.timer_service().current_processing_time()
                                    + LABEL_WAIT_S * 1000)
            ctx.timer_service().register_processing_time_timer(labels.wait_timer)

    def _apply_labels(self, live: LiveState, due: Iterator[tuple[int, int, bytes]]
                      ) -> Iterator[Any]:
        """Route each label by id to its waiting record (learned, its prediction scored), else
        hold it as an orphan; an invalid one is counted (and sent once as a dead letter)."""
        labels, host = live.labels, live.state.host
        for partition, offset, value in due:
            labels.read += 1
            try:
                id, y = parse_label_message(value, self.job.target)
            except InvalidLabel as exc:
                labels.invalid += 1
                if live.slot == self.reporting_key:
                    yield self._dead_letter(invalid_label_letter(exc, value, offset, partition),
                                            self.job.labels_topic)
                continue
            if host.joiner is not None and host.joiner.waiting(id):
                outcome = host.apply_label(id, y)
                if isinstance(outcome, DeadLetter):   # a label the model cannot use
                    labels.invalid += 1
                    yield self._dead_letter(outcome, self.job.topic)
                yield from self._events(host)
            else:
                labels.orphans.hold_orphan(id, y)

    def on_timer(self, timestamp: int, ctx: KeyedCoProcessFunction.OnTimerContext
                 ) -> Iterator[Any]:
        """The label wait ran out (processing time): the held records go on without the
        labels still missing. The end of a bounded input (event time): the rest, then every
        label left, then the key's summary."""
        key = ctx.get_current_key()
        live = self._live_of(key, ctx)
        labels = live.labels
        if ctx.time_domain() == TimeDomain.PROCESSING_TIME:
            if timestamp == labels.wait_timer:
                labels.wait_timer = None
                if labels.pending:
                    labels.waits_timed_out += 1
                    yield from self._release(live, ctx, force=True)
            return
        yield from self._release(live, ctx, force=True)
        yield from self._apply_labels(live, labels.due_labels(caught_up=True))
        self._write_summary(key, live)
