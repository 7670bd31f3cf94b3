"""ModelHost: the one data path around a model, shared by every runner.

For each input item it predicts, learns when the label is known, then scores the prediction
(test-then-train: the prediction is made before learning, and it is scored only once learning
succeeded), and collects drift events. A bad record, or a record the model rejects with an
`InputError`, becomes a dead letter with its reason; any other exception from the model is a
bug and is raised. Every item therefore ends as exactly one of: a prediction, or a dead letter;
records predicted without a label are also counted as ``skipped`` (sent, not learned, not
scored), so ``predictions == records - dead_letters``.

With a `LabelJoiner` (delayed labels), a record that has an ``id`` but no label is predicted at
once and waits in the joiner; `apply_label` later learns it and scores the prediction made on
arrival against the late label (still prequential). Such records are not ``skipped``. A late
label the model cannot use becomes a dead letter too, returned for the caller to send and count
as an invalid label (not in ``dead_letters``: its record was already predicted and sent).

Every predicted record's features, labelled or not, also feed the `InputDriftMonitor` (when
``input_monitor`` is not None): its ``input_drift`` events join the model's events. With
``no_labels`` (``driftflow run --no-labels``) every record is a plain prediction (a label it
carries is ignored: nothing is learned or scored, on every runner alike), none is ``skipped``,
and the summary reports the input drifts without accuracy.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Hashable

from experts import top_class
from pipelines.evaluate import PrequentialMetrics
from pipelines.labels import Joined, LabelJoiner
from pipelines.models import AdaptiveModel
from pipelines.monitoring import InputDriftMonitor
from pipelines.records import DeadLetter, Record
from pipelines.validation import InputError, check_features, check_label

#: Scored predictions a concept drift event's evidence calls "recent" (the rest of the
#: accuracy window, up to 1,000 by default, is "before").
EVIDENCE_RECENT = 200


@dataclass(frozen=True, slots=True)
class Prediction:
    """What the model said about one record, with where the record came from."""

    offset: int
    partition: int
    id: Hashable | None
    key: Hashable | None
    y_pred: Hashable | None
    confidence: float           # probability of ``y_pred`` (0 before the model knows a class)
    y_true: Hashable | None
    model_version: int          # records the model had learned once this one was processed


@dataclass
class ModelHost:
    """Hosts one model on the data path; counts everything that passes through."""

    model: AdaptiveModel
    metrics: PrequentialMetrics = field(default_factory=PrequentialMetrics)
    records: int = 0
    dead_letters: int = 0
    skipped: int = 0
    drift_positions: list[int] = field(default_factory=list)
    joiner: LabelJoiner | None = None
    input_monitor: InputDriftMonitor | None = field(default_factory=InputDriftMonitor)
    no_labels: bool = False     # a stream without labels: unlabelled records are not `skipped`
    input_drifts: list[dict[str, Any]] = field(default_factory=list)
    _events: list[dict[str, Any]] = field(default_factory=list)

    def process(self, item: Record | DeadLetter) -> Prediction | DeadLetter:
        """Run one item along the path; a bad record becomes a dead letter, a model bug raises."""
        self.records += 1
        if isinstance(item, DeadLetter):
            self.dead_letters += 1
            return item
        try:
            check_features(item.x)
            proba = self.model.predict_proba_one(item.x)
            y_pred = top_class(proba)
            label, waiting = (None if self.no_labels else item.y), False
            if label is None and self.joiner is not None and item.id is not None:
                joined = self.joiner.add_record(item.id, item.x, y_pred, item.offset,
                                                item.partition)
                label, waiting = (joined.y, False) if joined is not None else (None, True)
            if label is not None:   # in the record, or its late label came first
                check_label(label)
                self.model.learn_one(item.x, label)
                self.metrics.update(label, y_pred)   # scored only once learning succeeded
            elif not waiting and not self.no_labels:
                self.skipped += 1
        except InputError as exc:
            self.dead_letters += 1
            return DeadLetter(item.offset, f"model could not use the record: {exc}",
                              raw={"x": item.x, "y": item.y}, partition=item.partition)
        self._collect_events(item.offset, item.partition)
        if self.input_monitor is not None:
            self._watch_inputs(item)
        return Prediction(item.offset, item.partition, item.id, item.key, y_pred,
                          float(proba.get(y_pred, 0.0)) if proba else 0.0, item.y,
                          self.model.n_learned)

    def process_many(self, items: Sequence[Record | DeadLetter]) -> list[Prediction | DeadLetter]:
        """``process`` over ``items`` in order, with each run of labelled, valid records learned
        through the model's compiled batch path (``learn_predict_scored``): the same
        predictions, events and counts as record by record; dead letters decided per record."""
        batch = getattr(self.model, "learn_predict_scored", None)
        out: list[Prediction | DeadLetter] = []
        run: list[Record] = []
        for item in items:
            if (batch is not None and isinstance(item, Record) and item.y is not None
                    and not self.no_labels):
                try:
                    check_features(item.x)
                    check_label(item.y)
                    run.append(item)
                    continue
                except InputError:
                    pass   # process() below makes it a dead letter with the reason
            out += self._learn_run(batch, run)
            out.append(self.process(item))
        return out + self._learn_run(batch, run)

    def _learn_run(self, batch: Any, run: list[Record]) -> list[Prediction]:
        """Test-then-train ``run`` (labelled, valid records) in one call of the batch path; each
        model event goes to the record that caused it. Empties ``run``."""
        if not run:
            return []
        first = self.model.n_learned
        predictions, confidences = batch([r.x for r in run], [r.y for r in run])
        events: dict[int, list[dict[str, Any]]] = {}
        for event in self.model.events():
            events.setdefault(event["position"] - first, []).append(event)
        inputs: dict[int, list[dict[str, Any]]] = {}
        if self.input_monitor is not None:   # the whole run through the monitor at once
            for k, event in self.input_monitor.update_many([r.x for r in run]):
                inputs.setdefault(k, []).append(event)
        out = []
        for k, (item, y_pred) in enumerate(zip(run, predictions)):
            self.records += 1
            self.metrics.update(item.y, y_pred)
            for event in events.get(k, ()):
                self._add_event(event, item.offset, item.partition)
            for event in inputs.get(k, ()):
                self._add_input_event(event, item)
            out.append(Prediction(item.offset, item.partition, item.id, item.key, y_pred,
                                  float(confidences[k]), item.y, first + k + 1))
        run.clear()
        return out

    def apply_label(self, id: Hashable, y: Hashable) -> Joined | DeadLetter | None:
        """A late label: learn its waiting record (the `Joined`, or a `DeadLetter` to send when
        the model cannot use the label), else None: the joiner keeps it as an orphan. Needs a
        ``joiner``."""
        assert self.joiner is not None, "apply_label needs a LabelJoiner"
        joined = self.joiner.add_label(id, y)
        if joined is None:
            return None
        dead = self.learn_joined(joined)
        return joined if dead is None else dead

    def learn_joined(self, joined: Joined) -> DeadLetter | None:
        """Learn the record with its late label, then score the prediction made on arrival
        against it; drift events carry the record's offset. A label the model cannot use gives
        a dead letter (returned, for the caller to send), and nothing is learned or scored."""
        try:
            check_label(joined.y)
            self.model.learn_one(joined.x, joined.y)
        except InputError as exc:
            return DeadLetter(joined.offset, f"model could not use the late label: {exc}",
                              raw={"id": joined.id, "x": joined.x, "y": joined.y},
                              partition=joined.partition)
        self.metrics.update(joined.y, joined.y_pred)
        self._collect_events(joined.offset, joined.partition)
        return None

    @property
    def predictions(self) -> int:
        """Predictions sent: every record that did not become a dead letter (skipped ones too)."""
        return self.records - self.dead_letters

    def _collect_events(self, offset: int, partition: int) -> None:
        for event in self.model.events():
            self._add_event(event, offset, partition)

    def _add_event(self, event: dict[str, Any], offset: int, partition: int) -> None:
        event = {**event, "offset": offset, "partition": partition}
        if event["kind"] == "drift":
            self.drift_positions.append(offset)
            event.setdefault("evidence", self._error_evidence())
        self._events.append(event)

    def _error_evidence(self) -> dict[str, Any]:
        """What a concept drift was seen on, from the host's side: the error rate of the last
        `EVIDENCE_RECENT` scored predictions against the rest of the accuracy window before
        them (the model's event names the detector that fired)."""
        hits = list(self.metrics._recent)
        recent, before = hits[-EVIDENCE_RECENT:], hits[:-EVIDENCE_RECENT]

        def error(xs: list[int]) -> float | None:
            return round(1.0 - sum(xs) / len(xs), 4) if xs else None

        return {"error_rate_recent": error(recent), "error_rate_before": error(before),
                "scored_recent": len(recent), "scored_before": len(before)}

    def _watch_inputs(self, item: Record) -> None:
        """Feed the record's features to the input-drift monitor; a model that can adapt to an
        input drift (``adaptive``'s ``input_drift``, opt-in) hears which features moved."""
        for event in self.input_monitor.update(item.x):
            self._add_input_event(event, item)
            heard = getattr(self.model, "input_drift", None)
            if heard is not None:
                heard([f["name"] for f in event["features"]])

    def _add_input_event(self, event: dict[str, Any], item: Record) -> None:
        """Keep an input-drift event, with the record's offset as its position."""
        event.update(position=item.offset, offset=item.offset, partition=item.partition)
        self.input_drifts.append({"position": item.offset, "partition": item.partition,
                                  "detector": event["detector"],
                                  "features": [f["name"] for f in event["features"]]})
        self._events.append(event)

    def take_events(self) -> list[dict[str, Any]]:
        """Events since the last call, each with the offset and partition that caused it."""
        out, self._events = self._events, []
        return out

    def summary(self, seconds: float) -> dict[str, Any]:
        """The ``metrics.json`` fields (DESIGN.md) for a run that took ``seconds``."""
        scores = self.metrics.as_dict()
        accuracy = {} if self.no_labels else {
            "accuracy": scores["accuracy"],
            "kappa": scores["kappa"],
            "kappa_m": scores["kappa_m"],
            "kappa_t": scores["kappa_t"],
            "scored": scores["scored"],
            "unpredicted": scores["unpredicted"],
        }
        monitor = self.input_monitor
        return {
            "model": self.model.name,
            "records": self.records,
            **accuracy,
            "records_per_second": self.records / seconds if seconds > 0 else 0.0,
            "seconds": seconds,
            "drifts": list(self.drift_positions),
            "experts_final": self.model.n_experts,
            "dead_letters": self.dead_letters,
            "skipped": self.skipped,
            "predictions": self.predictions,
            "input_drifts": list(self.input_drifts),
            "input_drift_counts": dict(sorted(monitor.counts.items())) if monitor else {},
            **(self.joiner.counts() if self.joiner is not None else {}),
        }
