"""The benchmark harness end to end at smoke size: tables, raw numbers and plots are written."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench import harness
from bench.harness import main
from bench.measure import _experts
from bench.moa_peers import MoaUnavailable, ensure_built, write_arff
from tests.support import unavailable

MODELS = ["adaptive", "driftmoe-data", "river-ht"]


def _need_moa() -> None:
    """MOA's jars and bench/moa's class, fetched and compiled on first use; without java,
    javac or mvn the test fails under CI and skips elsewhere."""
    try:
        ensure_built()
    except MoaUnavailable as exc:
        unavailable(str(exc))


def _elec() -> Path:
    base = os.environ.get("DRIFTFLOW_DATASETS")
    root = Path(base) if base else Path(__file__).resolve().parents[2] / "shared" / "datasets"
    return root / "elecNormNew.arff"


@pytest.mark.timeout(360)   # the suite's first compile of the kernels can land here (~1 min)
def test_smoke_bench_writes_results(tmp_path: Path) -> None:
    have_elec = _elec().is_file()
    streams = "SEAa,elec" if have_elec else "SEAa"
    code = main(["--size", "smoke", "--streams", streams, "--models", ",".join(MODELS),
                 "--out", str(tmp_path), "--jobs", "1", "--quiet", "--mem-records", "500"])
    assert code == 0

    md = (tmp_path / "RESULTS.md").read_text()
    sections = md.split("\n## ")
    for label in ["SEAa"] + (["elec"] if have_elec else []):
        section = next(s for s in sections if s.startswith(label + "\n"))
        for model in MODELS:
            assert f"\n| {model} | " in section, (label, model)
        assert (tmp_path / f"{label}.png").stat().st_size > 1000
    summary = next(s for s in sections if s.startswith("Summary"))
    assert all(f"\n| {m} | " in summary for m in MODELS)
    assert "89.09" in md  # the paper's MoE-Data figure beside driftmoe-data on SEAa

    (tmp_path / "RESULTS.md").unlink()
    assert main(["--render", "--out", str(tmp_path)]) == 0   # from results.json, runs nothing
    assert (tmp_path / "RESULTS.md").read_text() == md
    assert main(["--render", "--out", str(tmp_path / "nowhere")]) == 2

    data = json.loads((tmp_path / "results.json").read_text())
    sea = data["streams"]["SEAa"]
    assert sea["n_records"] == 2_000
    assert sea["drift_positions"] == [500, 1_000, 1_500]
    for model in MODELS:
        agg = sea["models"][model]
        assert 0.5 < agg["accuracy"] <= 1.0, (model, agg["accuracy"])
        assert agg["records_per_s"] > 0
        assert agg["mem_peak_bytes"] > 0
        assert agg["speed_vs_ht"] is not None
        assert agg["acc_minus_arf_points"] is None  # ARF was not run
        # pickled every max(1,000, N/20) records: at 1,000 and 2,000, both in the second half
        assert agg["state_spread_second_half"] >= 0
    assert sea["models"]["driftmoe-data"]["experts"] == 12
    assert sea["models"]["river-ht"]["experts"] == 1
    assert data["meta"]["machine"]["nproc"] >= 1
    if have_elec:
        assert data["streams"]["elec"]["n_records"] == 2_000
    else:
        unavailable(f"SEAa checked; elec not run: {_elec()} not found (set DRIFTFLOW_DATASETS)")


@pytest.mark.timeout(120)
def test_parallel_workers_and_ratios(tmp_path: Path) -> None:
    """Two spawned workers, one per stream; ARF present, so accuracy - ARF is filled in."""
    code = main(["--limit", "300", "--streams", "SEAa,SEAg", "--models", "river-ht,river-arf10",
                 "--out", str(tmp_path), "--jobs", "2", "--quiet", "--mem-records", "100"])
    assert code == 0
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["meta"]["jobs"] == 2
    for label in ("SEAa", "SEAg"):
        arf = data["streams"][label]["models"]["river-arf10"]
        assert arf["acc_minus_arf_points"] == 0.0 and arf["speed_vs_arf"] == 1.0
        assert data["streams"][label]["models"]["river-ht"]["speed_vs_ht"] == 1.0
        assert (tmp_path / f"{label}.png").stat().st_size > 1000


@pytest.mark.timeout(120)
def test_render_merges_another_runs_streams(tmp_path: Path) -> None:
    """Runs of different streams, same size and seed, merge into one results file: the added
    stream replaces its namesake, the summary is recomputed over every stream."""
    first, second = tmp_path / "first", tmp_path / "second"
    args = ["--limit", "300", "--jobs", "1", "--quiet", "--mem-records", "0"]
    assert main([*args, "--streams", "SEAa,SEAg", "--models", "river-ht", "--out",
                 str(first)]) == 0
    assert main([*args, "--streams", "SEAg,LEDa", "--models", "river-ht,river-hat", "--out",
                 str(second)]) == 0
    assert main(["--render", "--out", str(first), "--merge", str(second)]) == 0
    data = json.loads((first / "results.json").read_text())
    added = json.loads((second / "results.json").read_text())
    assert data["meta"]["streams"] == ["SEAa", "SEAg", "LEDa"]
    assert data["meta"]["models"] == ["river-ht", "river-hat"]
    assert data["streams"]["SEAg"] == added["streams"]["SEAg"]        # replaced
    assert data["streams"]["SEAa"]["models"]["river-hat"]["accuracy"] is None   # not run there
    assert data["summary"]["river-hat"]["accuracy"] == pytest.approx(
        (added["streams"]["SEAg"]["models"]["river-hat"]["accuracy"]
         + added["streams"]["LEDa"]["models"]["river-hat"]["accuracy"]) / 2)
    md = (first / "RESULTS.md").read_text()
    assert "\n## LEDa\n" in md and "- Merged in: SEAg, LEDa from `" in md
    assert (first / "LEDa.png").is_file()
    assert "- Streams still from this command: SEAa\n" in md
    # a later merge takes its streams' credit from the earlier runs
    third = tmp_path / "third"
    assert main([*args, "--streams", "SEAa,SEAg", "--models", "river-ht", "--out",
                 str(third)]) == 0
    assert main(["--render", "--out", str(first), "--merge", str(third)]) == 0
    md = (first / "RESULTS.md").read_text()
    assert "- Streams still from this command: none\n" in md
    assert "- Merged in: LEDa from `" in md and "- Merged in: SEAa, SEAg from `" in md
    assert main(["--merge", str(second), "--out", str(first)]) == 2      # needs --render
    assert main([*args, "--limit", "200", "--streams", "SEAa", "--models", "river-ht",
                 "--out", str(second)]) == 0
    assert main(["--render", "--out", str(first), "--merge", str(second)]) == 2  # other size


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    assert main(["--models", "nope", "--out", str(tmp_path)]) == 2
    assert main(["--streams", "NOPE", "--out", str(tmp_path)]) == 2


def test_registry_has_the_peers(tmp_path: Path) -> None:
    assert set(harness.MODEL_REGISTRY) == {
        "adaptive", "driftmoe-data", "driftmoe-task", "river-ht", "river-hat", "river-arf10",
        "river-srp10", "river-lb10"}
    assert set(harness.ALL_MODELS) - set(harness.MODEL_REGISTRY) == {
        "moa-ht", "moa-arf10", "moa-arf100"}
    assert set(harness.ALL_MODELS) - set(harness.DEFAULT_MODELS) == set(harness.SLOW_PEERS)
    _need_moa()
    assert main(["--models", "all", "--limit", "100", "--streams", "SEAa", "--jobs", "1",
                 "--quiet", "--mem-records", "0", "--out", str(tmp_path)]) == 0
    ran = json.loads((tmp_path / "results.json").read_text())["streams"]["SEAa"]["models"]
    assert all(ran[name]["accuracy"] is not None for name in harness.ALL_MODELS)
    assert ran["moa-arf100"]["experts"] == 100
    srp = harness.MODEL_REGISTRY["river-srp10"](0)
    assert type(srp.model).__name__ == "HoeffdingTreeClassifier"
    assert _experts(harness.MODEL_REGISTRY["river-arf10"](0)) == 10


@pytest.mark.timeout(180)
def test_moa_peer_runs_on_the_same_records(tmp_path: Path) -> None:
    """MOA's HoeffdingTree from MOA's jar, in a JVM, on the harness's own 500 SEAa records:
    every record predicted, MOA's own count of hits equals ours of its predictions, accuracy
    above a floor, the ratios against it filled in."""
    _need_moa()
    assert main(["--limit", "500", "--streams", "SEAa", "--models", "river-ht,moa-arf10,moa-ht",
                 "--out", str(tmp_path), "--jobs", "1", "--quiet", "--mem-records", "0"]) == 0
    data = json.loads((tmp_path / "results.json").read_text())
    run = data["runs"][0]["runs"]["moa-ht"]
    assert run["scored"] == 500 and run["unpredicted"] == 0
    assert run["accuracy"] == pytest.approx(run["moa_accuracy"], abs=1e-8)
    assert run["accuracy"] > 0.75, run["accuracy"]
    assert run["records_per_s"] > 0 and run["experts"] == 1
    assert run["moa_measurements"]["tree size (nodes)"] >= 1
    ht = data["streams"]["SEAa"]["models"]["river-ht"]
    assert ht["speed_vs_moa_arf10"] > 0 and ht["acc_minus_moa_arf100_points"] is None
    md = (tmp_path / "RESULTS.md").read_text()
    assert "\n| moa-ht | 1 | " in md and "\n| moa-arf10 | " in md


def test_moa_arff_declares_led_and_strings_nominal(tmp_path: Path) -> None:
    """LED's 0/1 attributes nominal as MOA's LED generator declares them; string features
    nominal with their values; numbers numeric; class labels in ARFF index order."""
    led = tmp_path / "led.arff"
    assert write_arff(led, "LEDa", [{"0": 1.0, "1": 0.0}] * 2, [3, 7]) == [3, 7]
    text = led.read_text()
    assert "@ATTRIBUTE f0_0 {0,1}\n" in text and "\n1,0,3\n1,0,7\n" in text
    mixed = tmp_path / "mixed.arff"
    assert write_arff(mixed, "elec", [{"day": "2", "p": 0.5}, {"day": "7", "p": 1}],
                      ["UP", "DOWN"]) == ["DOWN", "UP"]
    text = mixed.read_text()
    assert "@ATTRIBUTE f0_day {2,7}\n@ATTRIBUTE f1_p NUMERIC\n" in text
    assert text.endswith("@DATA\n2,0.5,UP\n7,1.0,DOWN\n")


def test_moa_peers_without_java_is_a_one_line_error(tmp_path: Path, monkeypatch,
                                                    capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))   # no java, javac or mvn to be found
    assert main(["--limit", "100", "--streams", "SEAa", "--models", "moa-ht", "--quiet",
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "need java, javac, mvn on PATH" in err[0]
