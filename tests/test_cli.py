"""`driftflow run` end to end: outputs, any Parquet stream, bad input, determinism."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest


def driftflow(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True,
                          text=True, timeout=300)


def _parquet(path: Path, n: int = 4000, seed: int = 0, **extra_columns) -> Path:
    """Numeric features f0..f4 and an integer y whose rule changes at n/2."""
    rng = np.random.default_rng(seed)
    features = rng.uniform(-1, 1, size=(n, 5))
    first = (features[:, 0] + features[:, 1] > 0)
    second = (features[:, 2] > 0.2)
    y = np.where(np.arange(n) < n // 2, first, second).astype(np.int64)
    columns = {f"f{i}": features[:, i] for i in range(5)} | {"y": y} | extra_columns
    pq.write_table(pa.table(columns), path)
    return path


def test_default_run_writes_every_output(tmp_path):
    result = driftflow("run", "--limit", "6000", "--out", str(tmp_path), "--quiet")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for field in ("records", "accuracy", "kappa", "records_per_second", "drifts",
                  "experts_final", "dead_letters", "skipped"):
        assert field in metrics
    assert metrics["records"] == 6000 and metrics["accuracy"] > 0.80
    predictions = pq.read_table(tmp_path / "predictions.parquet")
    assert predictions.num_rows == 6000
    assert predictions.column("offset").to_pylist() == list(range(6000))
    assert (tmp_path / "report.png").stat().st_size > 10_000
    events = [json.loads(line) for line in (tmp_path / "drift_events.jsonl").read_text().splitlines()]
    assert [e["offset"] for e in events if e["kind"] == "drift"] == metrics["drifts"]
    assert "accuracy" in result.stdout and "records/s" in result.stdout


@pytest.mark.parametrize("model", ["adaptive", "driftmoe-data", "driftmoe-task"])
def test_any_parquet_stream(tmp_path, model):
    data = _parquet(tmp_path / "stream.parquet")
    out = tmp_path / "out"
    result = driftflow("run", "--source", f"file:{data}", "--target", "y", "--model", model,
                       "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["records"] == 4000 and metrics["dead_letters"] == 0
    assert metrics["accuracy"] > 0.70, metrics


def test_same_seed_same_predictions(tmp_path):
    data = _parquet(tmp_path / "stream.parquet", n=2000)
    runs = []
    for name in ("a", "b"):
        assert driftflow("run", "--source", f"file:{data}", "--seed", "3", "--out",
                         str(tmp_path / name), "--quiet").returncode == 0
        runs.append(pq.read_table(tmp_path / name / "predictions.parquet"))
    assert runs[0].equals(runs[1])


def test_bad_records_are_dead_letters_and_the_job_goes_on(tmp_path):
    n = 1000
    bad = np.zeros(n)
    bad[[10, 500]] = [math.nan, math.inf]
    data = _parquet(tmp_path / "bad.parquet", n=n, g=bad)
    csv = tmp_path / "bad.csv"
    csv.write_text("a,b,y\n" + "".join(f"{i % 7},{i % 3},{i % 2}\n" for i in range(300))
                   + "x,1,0\n" + "".join(f"{i % 7},{i % 3},{i % 2}\n" for i in range(300)))
    for path, expected in ((data, 2), (csv, 1)):
        out = tmp_path / f"out-{path.suffix}"
        result = driftflow("run", "--source", f"file:{path}", "--out", str(out), "--quiet")
        assert result.returncode == 0, result.stderr
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["dead_letters"] == expected
        predictions = pq.read_table(out / "predictions.parquet").num_rows
        assert predictions + metrics["dead_letters"] + 0 == metrics["records"]
        reasons = [json.loads(line)["reason"] for line in (out / "dead_letters.jsonl").open()]
        assert len(reasons) == expected and all(reasons)


@pytest.mark.parametrize("case, args, message", [
    ("model", ["--model", "nope"], "unknown model 'nope'"),
    ("target", ["--target", "label"], "label"),
    ("empty", [], "no records"),
    ("missing", [], "not found"),
    ("stream", ["--source", "synthetic:NOPE"], "NOPE"),
])
def test_user_errors_are_one_line_and_exit_2(tmp_path, case, args, message):
    data = _parquet(tmp_path / "ok.parquet", n=100)
    if case == "empty":
        data = tmp_path / "empty.csv"
        data.write_text("a,b,y\n")
    if case == "missing":
        data = tmp_path / "absent.parquet"
    result = driftflow("run", "--source", f"file:{data}", *args, "--quiet")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr


def test_bench_commands_take_their_own_options(tmp_path, capsys) -> None:
    """``driftflow bench --size ci`` as the README writes it: options right after a delegated
    command reach that command's parser, not driftflow's."""
    from pipelines.cli import main

    assert main(["bench", "--models", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown model(s): nope" in capsys.readouterr().err
    assert main(["bench", "--render", "--out", str(tmp_path)]) == 2   # no results.json there
    assert "no results.json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["bench-kafka", "--records", "5"])
    assert exit_info.value.code == 2
    assert "--records must be >= 100" in capsys.readouterr().err


@pytest.mark.parametrize("args, runtime", [
    ([], "local"),
    (["--source", "kafka:t"], "ray"),                     # no --runtime: Kafka runs on Ray
    (["--source", "kafka:t", "--runtime", "ray"], "ray"),
    (["--source", "file:x.csv", "--runtime", "local"], "local"),
])
def test_runtime_defaults_to_ray_for_a_kafka_source(args: list[str], runtime: str) -> None:
    from pipelines.cli import RUNTIMES, _parser, _runtime

    chosen = _runtime(_parser().parse_args(["run", *args]))
    assert chosen == runtime and chosen in RUNTIMES


@pytest.mark.parametrize("args, message", [
    (["--source", "kafka:t", "--runtime", "local"], "kafka:TOPIC runs on --runtime ray"),
    (["--runtime", "ray"], "--runtime ray reads --source kafka:TOPIC"),
])
def test_a_source_the_runtime_cannot_read_is_one_line_and_exit_2(capsys, args, message) -> None:
    from pipelines.cli import main

    assert main(["run", *args, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_bench_defaults_to_a_run_directory_and_says_how_long(tmp_path, monkeypatch,
                                                             capsys) -> None:
    """Without --out, `driftflow bench` writes under runs/ (never the tracked bench/) and says
    up front how long it should take."""
    from bench.harness import expected_minutes
    from pipelines.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--limit", "200", "--streams", "SEAa", "--models", "river-ht",
                 "--jobs", "1", "--quiet", "--mem-records", "0"]) == 0
    err = capsys.readouterr().err
    assert "expected time about a minute" in err
    written = list((tmp_path / "runs").glob("bench-200-*/RESULTS.md"))
    assert len(written) == 1 and str(written[0].parent.relative_to(tmp_path)) in err
    assert not (tmp_path / "bench").exists()
    # the ci size with the default streams and models says ~28-44 min (measured: 28 on 2 cores)
    assert expected_minutes(7 * 100_000, 6, 2) * 1.6 > 40
