"""Input drift: the per-feature detectors, the monitor's attribution, ``run --no-labels`` end to
end and the report's heat strip. Delay bounds state the measured worst case in brackets."""
from __future__ import annotations

import itertools
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from detectors import ChiSquareWindow, CorrelationShift, KSWindow
from pipelines.cli import main
from pipelines.host import ModelHost
from pipelines.models import make_model
from pipelines.monitoring import InputDriftMonitor
from pipelines.records import Record
from pipelines.sinks.report import plot_accuracy
from pipelines.sources import open_source

SHIFT_AT = 4000


def _rows(n: int, seed: int, *, mean_shift: tuple[str, ...] = (), spread_shift: tuple[str, ...] = (),
          mix_shift: bool = False, correlate: bool = False) -> list[dict]:
    """Five numeric features of different shapes and one nominal; from ``SHIFT_AT`` on the named
    features move: mean +1 sd, spread x2.5, the nominal mix (.5,.3,.2) -> (.2,.3,.5), or f0 and
    f2 become correlated (0.8) with unchanged marginals."""
    r = np.random.default_rng(seed)
    cols = {"f0": r.normal(size=n), "f1": r.uniform(-1.7, 1.7, n), "f2": r.normal(size=n),
            "f3": r.exponential(1.0, n), "f4": r.poisson(3, n).astype(float)}
    late = slice(SHIFT_AT, n)
    for name in mean_shift:
        cols[name][late] += cols[name][:SHIFT_AT].std()
    for name in spread_shift:
        mid = cols[name][:SHIFT_AT].mean()
        cols[name][late] = mid + 2.5 * (cols[name][late] - mid)
    if correlate:
        cols["f2"][late] = 0.8 * cols["f0"][late] + 0.6 * cols["f2"][late]
    mix = np.where(np.arange(n) < SHIFT_AT if mix_shift else True,
                   r.choice(3, n, p=[0.5, 0.3, 0.2]), r.choice(3, n, p=[0.2, 0.3, 0.5]))
    names = np.array(["red", "green", "blue"])[mix]
    return [{**{k: float(v[i]) for k, v in cols.items()}, "colour": str(names[i])}
            for i in range(n)]


def _events(monitor: InputDriftMonitor, rows: list[dict]) -> list[dict]:
    return [e for row in rows for e in monitor.update(row)]


def test_ks_window_flags_an_abrupt_mean_shift_within_600_records():
    """N(0, 1) -> N(1, 1) after 3,000 records: flagged within 600 records [349 over 10 seeds]."""
    for seed in range(5):
        r = np.random.default_rng(seed)
        xs = np.r_[r.normal(0, 1, 3000), r.normal(1, 1, 1000)].tolist()
        det, hits = KSWindow(), []
        for t, x in enumerate(xs):
            det.update(x)
            if det.drift_detected:
                hits.append(t)
                assert det.evidence()["direction"] == "mean"
        assert hits and 3000 <= hits[0] < 3600, (seed, hits)


def test_monitor_is_silent_on_a_stationary_stream_of_60000_records():
    monitor = InputDriftMonitor()
    assert _events(monitor, _rows(60_000, seed=11)) == []
    assert monitor.features == ["f0", "f1", "f2", "f3", "f4", "colour"]
    assert monitor.skipped_values == 0 and not monitor.counts


def test_attribution_names_exactly_the_shifted_features_and_how_they_moved():
    rows = _rows(8000, seed=3, mean_shift=("f1",), spread_shift=("f3",), mix_shift=True)
    events = _events(InputDriftMonitor(), rows)
    moved = {f["name"]: (e["detector"], f["direction"]) for e in events for f in e["features"]}
    assert moved == {"f1": ("ks-window", "mean"), "f3": ("ks-window", "spread"),
                     "colour": ("chi2-window", "category mix")}
    assert all(SHIFT_AT <= e["position"] < SHIFT_AT + 1000 for e in events)
    f3 = next(f for e in events for f in e["features"] if f["name"] == "f3")
    assert f3["after"]["sd"] > 1.3 * f3["before"]["sd"]
    colour = next(f for e in events for f in e["features"] if f["name"] == "colour")
    assert colour["after"]["blue"] > colour["before"]["blue"]


def test_a_correlation_change_no_single_feature_shows_names_the_pair():
    events = _events(InputDriftMonitor(), _rows(8000, seed=5, correlate=True))
    assert [e["detector"] for e in events] == ["correlation-shift"]
    pair = {(f["name"], f["with"]) for f in events[0]["features"]}
    assert pair == {("f0", "f2"), ("f2", "f0")}
    # "after" is the recent window at detection, still part old regime: it has moved, not arrived
    assert all(f["direction"] == "correlation" and f["after"] > f["before"] + 0.2
               for f in events[0]["features"])


def test_silent_on_pure_concept_drift():
    """SEAa (the bench's 100,000 records, the first 30,000): the label function changes at
    24,998, the inputs never do. The model flags concept drift; the input monitor stays
    silent."""
    host = ModelHost(make_model("adaptive", seed=0))
    for item in itertools.islice(open_source("synthetic:SEAa", limit=100_000, seed=0), 30_000):
        host.process(item)
    kinds = [e["kind"] for e in host.take_events()]
    assert "drift" in kinds and "input_drift" not in kinds
    assert host.input_drifts == [] and host.input_monitor.n == 30_000


def test_snapshot_and_restore_continue_identically_without_pickle():
    rows = _rows(8000, seed=7, mean_shift=("f0", "f4"), mix_shift=True, correlate=False)
    monitor = InputDriftMonitor()
    _events(monitor, rows[:3000])
    state = monitor.to_state()

    def plain(v) -> bool:
        if isinstance(v, dict):
            return all(isinstance(k, str) and plain(x) for k, x in v.items())
        if isinstance(v, (list, tuple)):
            return all(plain(x) for x in v)
        return isinstance(v, (int, float, str, bool, np.ndarray)) or v is None

    assert plain(state)
    restored = InputDriftMonitor.from_state(state)
    expected = _events(monitor, rows[3000:])
    assert expected and _events(restored, rows[3000:]) == expected
    assert restored.counts == monitor.counts


@pytest.mark.parametrize("cls,values", [
    (KSWindow, np.random.default_rng(0).normal(size=4000).tolist()),
    (ChiSquareWindow, [str(v) for v in np.random.default_rng(0).choice(9, 4000)]),
    (CorrelationShift, [tuple(v) for v in np.random.default_rng(0).normal(size=(4000, 3))]),
])
def test_detector_state_round_trip(cls, values):
    det = cls()
    for v in values[:2500]:
        det.update(v)
    twin = cls.from_state(det.to_state())
    for v in values[2500:]:
        det.update(v)
        twin.update(v)
        assert twin.drift_detected == det.drift_detected
    assert twin.to_state().keys() == det.to_state().keys() and twin.n_seen == det.n_seen


def test_memory_stays_bounded():
    chi = ChiSquareWindow(max_categories=8)
    for t in range(5000):
        chi.update(f"v{t}")
    assert len(chi.to_state()["categories"]) == 8 and chi._ring.size == chi.window
    monitor = InputDriftMonitor(max_features=3)
    monitor.update({f"x{i}": 1.0 for i in range(10)})
    assert len(monitor.features) == 3 and len(monitor.unwatched) == 7


def test_host_feeds_unlabelled_records_in_no_labels_mode():
    host = ModelHost(make_model("adaptive", seed=0), no_labels=True)
    for i, row in enumerate(_rows(6000, seed=2, mean_shift=("f2",))):
        assert host.process(Record(x=row, offset=i)).y_pred is None
    summary = host.summary(1.0)
    assert "accuracy" not in summary and summary["skipped"] == 0
    assert summary["predictions"] == 6000 and summary["input_drift_counts"] == {"f2": 1}
    assert summary["input_drifts"][0]["features"] == ["f2"]


def test_no_labels_cli_on_parquet_without_label_column(tmp_path, capsys):
    rows = _rows(8000, seed=9, mean_shift=("f1",), spread_shift=("f4",))
    path = tmp_path / "unlabelled.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    out = tmp_path / "out"
    assert main(["run", "--source", f"file:{path}", "--no-labels", "--out", str(out),
                 "--quiet"]) == 0
    assert "input drifts" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert "accuracy" not in metrics
    assert metrics["records"] == metrics["predictions"] == 8000
    assert metrics["dead_letters"] == 0 and metrics["skipped"] == 0
    assert metrics["input_drift_counts"] == {"f1": 1, "f4": 1}
    events = [json.loads(line) for line in (out / "drift_events.jsonl").read_text().splitlines()]
    named = {f["name"] for e in events if e["kind"] == "input_drift" for f in e["features"]}
    assert named == {"f1", "f4"}
    assert pq.read_table(out / "predictions.parquet").num_rows == 8000
    assert (out / "dead_letters.jsonl").read_text() == ""
    assert os.path.getsize(out / "report.png") > 10_000
    # without --no-labels the same file is one line and exit 2: it has no label column
    assert main(["run", "--source", f"file:{path}", "--quiet"]) == 2


def test_report_heat_strip_with_many_features_and_marks(tmp_path):
    features = [f"x{i}" for i in range(60)]
    rng = np.random.default_rng(0)
    drifts = [{"position": int(p), "features": list(rng.choice(features, 3, replace=False))}
              for p in rng.integers(0, 100_000, 800)]
    path = tmp_path / "report.png"
    plot_accuracy([(1000, 0.8, 0.8), (2000, 0.9, 0.85)], str(path), title="t",
                  detected=list(range(0, 100_000, 500)), features=features, input_drifts=drifts,
                  n_records=100_000)
    assert path.stat().st_size > 10_000


def test_batches_give_the_same_events_and_state_as_record_by_record():
    rows = _rows(9000, seed=4, mean_shift=("f0",), mix_shift=True)
    rows[5] = {k: v for k, v in rows[5].items() if k != "f3"}          # a missing value
    rows[6] = {**rows[6], "f2": "not a number", "late": 1.0}           # a bad one, a new feature
    one, many = InputDriftMonitor(), InputDriftMonitor()
    expected = [(i, e) for i, row in enumerate(rows) for e in one.update(row)]
    got, start = [], 0
    for size in (3, 700, 1, 2500, 5796):
        got += [(start + i, e) for i, e in many.update_many(rows[start:start + size])]
        start += size
    assert expected and got == expected
    assert many.skipped_values == one.skipped_values == 1
    a, b = one.to_state(), many.to_state()
    assert a["bank"]["n"] == b["bank"]["n"] and a["counts"] == b["counts"]
    assert all(np.array_equal(a["bank"][k], b["bank"][k]) for k in ("ref", "win", "win_pos"))


def test_input_drift_bench_scores_delay_false_alarms_and_attribution():
    from bench.input_drift import score
    from bench.input_drift_streams import generate

    runs = score([(50, {"f1"}), (1200, {"f2"}), (1300, {"f1", "f2"}), (5000, {"f3"})],
                 ("f1",), start=1000, end=1000, window=500)
    assert runs == {"delay": 300, "false": 2, "named": 2, "true_named": 1, "shifted": 1}
    assert score([(10, {"f0"})], (), 1000, 1000, 500)["false"] == 1   # nothing moved: all false
    rows, labels, shifted, start, end = generate("spread-2-gradual", 4000, seed=1, ramp=1000)
    again = generate("spread-2-gradual", 4000, seed=1, ramp=1000)[0]
    assert rows == again and shifted == ("f0", "f1") and (start, end) == (2000, 3000)
    assert len(labels) == 4000


def test_partition_checkpoint_keeps_the_monitor():
    """A Kafka partition checkpoint (JSON, no pickle) carries the monitor: the restored host
    raises the same input drifts afterwards, and keeps the ones raised before."""
    from pipelines.checkpoints.partition import PartitionState, load_partition, save_partition
    from pipelines.runners.kafka_job import KafkaJob
    from pipelines.validation import JsonDecoder

    rows = _rows(9000, seed=6, mean_shift=("f3",), mix_shift=True)   # shifts at 4,000
    host = ModelHost(make_model("adaptive", seed=0), no_labels=True)
    for i, row in enumerate(rows[:3000]):
        host.process(Record(x=row, offset=i))
    job = KafkaJob("127.0.0.1:1", "t")
    blob = save_partition(job, 0, PartitionState(host, JsonDecoder(require_label=False), 3000))
    restored = load_partition(blob, "y").host
    assert restored.input_drifts == host.input_drifts
    after = []
    for h in (host, restored):
        for i, row in enumerate(rows[3000:], start=3000):
            h.process(Record(x=row, offset=i))
        after.append([e for e in h.take_events() if e["kind"] == "input_drift"])
    assert after[0] and after[1] == after[0]
    assert {f["name"] for e in after[0] for f in e["features"]} == {"f3", "colour"}


def test_no_labels_ignores_labels_a_record_carries():
    """--no-labels means the same on every runner: a label in a Kafka message is not learned."""
    host = ModelHost(make_model("adaptive", seed=0), no_labels=True)
    records = [Record(x={"a": float(i % 7)}, y=i % 2, offset=i) for i in range(300)]
    out = host.process_many(records[:200]) + [host.process(r) for r in records[200:]]
    assert all(p.y_pred is None for p in out) and host.model.n_learned == 0
    assert host.summary(1.0)["predictions"] == 300 and host.metrics.n == 0
