"""Smoke test of the drift-detector scoreboard (bench/detectors.py) at tiny sizes."""
from __future__ import annotations

import json

from bench import detector_streams as ds
from bench.detectors import contenders, main, score_run


def test_streams_are_seeded_and_have_known_changes():
    xs, changes = ds.generate("bern-gradual", 4000, seed=3, ramp=200)
    assert xs == ds.generate("bern-gradual", 4000, seed=3, ramp=200)[0]
    assert xs != ds.generate("bern-gradual", 4000, seed=4, ramp=200)[0]
    assert [(c.start, c.end) for c in changes] == [(1000, 1200), (2000, 2200), (3000, 3200)]
    assert ds.generate("gauss-stationary", 100, 0)[1] == []
    labels, _ = ds.generate("multi-new-class", 4000, 0)
    assert set(labels[:1000]) == {"a", "b", "c"} and "f" in labels[3000:]


def test_score_run():
    changes = [ds.Change(100, 100, "up"), ds.Change(300, 350, "down")]
    delays, false = score_run([5, 120, 130, 360, 500], changes, window=50)
    assert delays == [20, 60] and false == 2  # 5 before any change; 500 after 350 + 50


def test_smoke_run_writes_table(tmp_path):
    argv = ["--seeds", "1", "--slow-seeds", "1", "--records", "3000", "--window", "300",
            "--ramp", "200", "--out-dir", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    md = (tmp_path / "DETECTORS.md").read_text()
    for name in contenders():
        assert f"| `{name}` |" in md, name
    assert "Tolerance window: 300 records" in md
    results = json.loads((tmp_path / "detectors.json").read_text())["results"]
    by_stream: dict[str, dict[str, dict]] = {}
    for r in results:
        by_stream.setdefault(r["stream"], {})[r["detector"]] = r
    assert set(by_stream) == set(ds.STREAMS)
    for stream, rows in by_stream.items():
        fa = {n: r["false_alarms_per_10k"] for n, r in rows.items()}
        assert fa["always-fire"] == max(fa.values()) > 0, stream
        assert all(v < fa["always-fire"] for n, v in fa.items() if n != "always-fire"), stream
        never = rows["never-fire"]
        assert never["missed"] == never["changes"] and never["false_alarms"] == 0, stream
        assert rows["always-fire"]["missed"] == 0, stream
        if not ds.STREAMS[stream].stationary:
            assert never["changes"] == 3 and rows["always-fire"]["delay_mean"] == 0
