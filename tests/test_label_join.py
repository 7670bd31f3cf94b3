"""LabelJoiner and ModelHost with delayed labels: no Kafka, no Ray."""
from __future__ import annotations

import pickle

from pipelines.host import ModelHost
from pipelines.labels import LabelJoiner
from pipelines.models import make_model
from pipelines.records import Record


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_labels_join_their_records_in_label_order() -> None:
    j = LabelJoiner()
    for i in range(3):
        assert j.add_record(i, {"a": float(i)}, y_pred=i % 2, offset=i) is None
    got = [j.add_label(i, f"y{i}") for i in (2, 0, 1)]
    assert [(g.id, g.x, g.y, g.y_pred, g.offset) for g in got] == [
        (2, {"a": 2.0}, "y2", 0, 2), (0, {"a": 0.0}, "y0", 0, 0), (1, {"a": 1.0}, "y1", 1, 1)]
    assert j.counts() == {"labels_joined": 3, "labels_expired": 0, "labels_orphaned": 0,
                          "labels_pending": 0, "labels_orphans_held": 0}


def test_label_before_record_waits_as_an_orphan() -> None:
    j = LabelJoiner()
    assert j.add_label("a", 1) is None and j.orphans == 1
    got = j.add_record("a", {"f": 1.0}, y_pred=0, offset=7, partition=1)
    assert (got.y, got.y_pred, got.offset, got.partition) == (1, 0, 7, 1)
    assert j.joined == 1 and j.orphans == 0 and j.pending == 0
    j.hold_orphan("b", 2)
    assert j.take_orphan("b") == 2 and j.take_orphan("b") is None and j.joined == 2


def test_cap_evicts_the_oldest_and_counts_it() -> None:
    j = LabelJoiner(max_size=2)
    for i in range(5):
        j.add_record(i, {}, None)
    assert j.pending == 2 and j.expired == 3 and j.waiting(4) and not j.waiting(0)
    for i in range(10, 14):
        j.add_label(i, 0)
    assert j.orphans == 2 and j.orphaned == 2
    assert j.add_label(0, 1) is None            # its record was evicted: now an orphan
    assert j.orphaned == 3


def test_ttl_expiry_is_counted_with_an_injected_clock() -> None:
    clock = Clock()
    j = LabelJoiner(ttl=10, clock=clock)
    j.add_record(1, {}, None)
    j.add_label(99, 0)
    clock.now += 5
    j.add_record(2, {}, None)
    clock.now += 6                               # 1 and 99 are 11 s old, 2 is 6 s old
    j.expire()
    assert (j.expired, j.orphaned, j.pending, j.orphans) == (1, 1, 1, 0)
    assert j.add_label(2, 1) is not None and j.add_label(1, 1) is None
    clock.now += 11
    j.expire()
    assert j.orphaned == 2 and j.counts()["labels_joined"] == 1


def test_snapshot_and_restore_keep_both_buffers() -> None:
    clock = Clock()
    j = LabelJoiner(max_size=50, ttl=30, clock=clock)
    j.add_record("r", {"f": 2.0}, y_pred="p")
    j.add_label("o", "late")
    back = pickle.loads(pickle.dumps(j))
    assert back.clock is not clock and (back.max_size, back.ttl) == (50, 30)
    back.clock = clock
    assert back.add_label("r", "y").x == {"f": 2.0}
    assert back.add_record("o", {}, None).y == "late"
    assert back.joined == 2


def test_model_host_learns_late_labels_and_scores_the_arrival_prediction() -> None:
    host = ModelHost(make_model("adaptive", seed=1), joiner=LabelJoiner())
    pred = host.process(Record({"a": 1.0}, None, id=1, offset=0))
    assert pred.y_true is None and host.model.n_learned == 0 and host.skipped == 0
    # the model had learned nothing: its prediction (None) is counted, not scored
    assert host.apply_label(1, 1) and host.model.n_learned == 1
    assert (host.metrics.n, host.metrics.unpredicted) == (0, 1)
    assert not host.apply_label(2, 0)            # orphan, held
    host.process(Record({"a": 2.0}, None, id=2, offset=1))
    assert host.model.n_learned == 2 and host.summary(1.0)["labels_joined"] == 2
    assert host.metrics.n == 1 and host.summary(1.0)["unpredicted"] == 1


def test_cli_refuses_delayed_labels_with_exactly_once(tmp_path, capsys) -> None:
    from pipelines.cli import main

    code = main(["run", "--runtime", "ray", "--source", "kafka:t", "--labels-topic", "t.labels",
                 "--exactly-once", "--checkpoint-dir", str(tmp_path)])
    assert code == 2 and "at-least-once" in capsys.readouterr().err
