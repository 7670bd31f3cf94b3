"""The compiled ``adaptive`` beside River's HoeffdingTree and ARF(10), and its snapshot cost.

    python -m bench.compiled_core [--records 20000] [--arf-records 5000]
                                  [--snapshot-records 1000000]

Per bench stream (LEDa, LEDg, SEAa, SEAg, RBFm, RBFf, Electricity), in one process, one model
after the other on the same records: prequential accuracy and microseconds a record (predict +
learn) of

- ``adaptive batch``: ``learn_predict_many`` over the stream's dict records in batches of 1,000
  (encoding included): the path every runner takes;
- ``adaptive record``: ``predict_one`` + ``learn_one`` per record (River's API, same predictions);
- ``River HT``: ``river.tree.HoeffdingTreeClassifier()`` (River defaults, as bench/RESULTS.md);
- ``River ARF(10)``: ``river.forest.ARFClassifier(n_models=10)`` on the first ``--arf-records``
  (it runs ~500 records/s: a whole stream would take most of the run).

Time is CPU time of this process (``time.process_time``), so other processes on a shared machine
slow the figures less than wall time would; ratios compare models timed in the same run. Then
``adaptive`` learns ``--snapshot-records`` of SEAa and its snapshot and restore are timed
(median of 5). Writes ``compiled_core.json`` and ``COMPILED.md`` beside this file.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from river import forest, tree

from bench.provenance import code_line, code_version, machine_info
from pipelines import make_model, open_source
from pipelines.models import AdaptiveModel
from pipelines.sources.datasets import electricity_path

HERE = Path(__file__).resolve().parent
STREAMS = ["LEDa", "LEDg", "SEAa", "SEAg", "RBFm", "RBFf", "elec"]
BATCH = 1000   # records a learn_predict_many call: a Kafka poll's or a file row group's worth


def _records(name: str, n: int) -> list[tuple[dict, Any]]:
    spec, extra = ((f"file:{electricity_path()}", {"target": "class"}) if name == "elec"
                   else (f"synthetic:{name}", {"seed": 0}))
    return [(r.x, r.y) for r in open_source(spec, limit=n, **extra)]


def _score(predictions: list, data: list) -> float:
    return round(100.0 * sum(p == y for p, (_, y) in zip(predictions, data)) / len(data), 2)


def _per_record(model: Any, data: list) -> tuple[list, float]:
    predictions = []
    started = time.process_time()
    for x, y in data:
        predictions.append(model.predict_one(x))
        model.learn_one(x, y)
    return predictions, time.process_time() - started


def _batched(data: list) -> tuple[list, float]:
    model = make_model("adaptive", seed=0)
    predictions: list = []
    started = time.process_time()
    for a in range(0, len(data), BATCH):
        chunk = data[a:a + BATCH]
        predictions += model.learn_predict_many([x for x, _ in chunk], [y for _, y in chunk])
    return predictions, time.process_time() - started


def run_stream(name: str, n: int, n_arf: int) -> dict[str, Any]:
    data = _records(name, n)
    out: dict[str, Any] = {"records": len(data), "arf_records": min(n_arf, len(data))}
    runs = {
        "adaptive batch": lambda: _batched(data),
        "adaptive record": lambda: _per_record(make_model("adaptive", seed=0), data),
        "River HT": lambda: _per_record(tree.HoeffdingTreeClassifier(), data),
        "River ARF(10)": lambda: _per_record(forest.ARFClassifier(n_models=10, seed=0),
                                             data[:n_arf]),
    }
    for label, run in runs.items():
        predictions, seconds = run()
        out[label] = {"accuracy": _score(predictions, data[:len(predictions)]),
                      "us_per_record": round(1e6 * seconds / len(predictions), 1)}
        print(f"{name:5s} {label:16s} {out[label]}", flush=True)
    return out


def snapshot_cost(n: int) -> dict[str, Any]:
    """adaptive after ``n`` SEAa records: snapshot and restore times (ms, median of 5)."""
    data = _records("SEAa", n)
    model = make_model("adaptive", seed=0)
    for a in range(0, len(data), 10 * BATCH):
        chunk = data[a:a + 10 * BATCH]
        model.learn_predict_many([x for x, _ in chunk], [y for _, y in chunk])
    snap, rest = [], []
    for _ in range(5):
        started = time.perf_counter()
        blob = model.snapshot(key="bench")
        snap.append(time.perf_counter() - started)
        started = time.perf_counter()
        AdaptiveModel.restore(blob, key="bench")
        rest.append(time.perf_counter() - started)
    return {"records": len(data), "bytes": len(blob),
            "snapshot_ms": round(1e3 * statistics.median(snap), 1),
            "restore_ms": round(1e3 * statistics.median(rest), 1)}


def render(doc: dict[str, Any]) -> str:
    lines = ["# The compiled core: `adaptive` beside River's HoeffdingTree and ARF(10)", "",
             code_line(doc["code"]),
             f"- Command: `python -m bench.compiled_core {doc['args']}`",
             f"- Machine: {doc['machine']['nproc']} usable CPUs, {doc['machine']['cpu_model']}; "
             f"CPU time of one process (other helpers' jobs shared the machine)", "",
             "| stream | records | adaptive batch acc % | us/rec | adaptive record us/rec | "
             "River HT acc % | us/rec | ARF(10) acc % | us/rec | batch x HT speed | "
             "batch x ARF speed |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in doc["streams"].items():
        b, r, h, a = (s[k] for k in ("adaptive batch", "adaptive record", "River HT",
                                     "River ARF(10)"))
        lines.append(
            f"| {name} | {s['records']:,} | {b['accuracy']} | {b['us_per_record']} | "
            f"{r['us_per_record']} | {h['accuracy']} | {h['us_per_record']} | {a['accuracy']} "
            f"(first {s['arf_records']:,}) | {a['us_per_record']} | "
            f"{h['us_per_record'] / b['us_per_record']:.2f} | "
            f"{a['us_per_record'] / b['us_per_record']:.2f} |")
    snap = doc["snapshot"]
    lines += ["", f"Snapshot of `adaptive` after {snap['records']:,} SEAa records: "
              f"{snap['bytes'] / 2**20:.2f} MiB, snapshot {snap['snapshot_ms']} ms, restore "
              f"{snap['restore_ms']} ms (signed envelope, median of 5, wall time).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.compiled_core",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--arf-records", type=int, default=5_000)
    parser.add_argument("--snapshot-records", type=int, default=1_000_000)
    parser.add_argument("--streams", default=",".join(STREAMS))
    args = parser.parse_args(argv)
    _batched(_records("SEAa", 50))   # compile (or load the cache) before any timing
    doc = {"code": code_version(), "machine": machine_info(),
           "args": " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
           "streams": {name: run_stream(name, args.records, args.arf_records)
                       for name in args.streams.split(",")},
           "snapshot": snapshot_cost(args.snapshot_records)}
    (HERE / "compiled_core.json").write_text(json.dumps(doc, indent=1))
    (HERE / "COMPILED.md").write_text(render(doc))
    print(render(doc))


if __name__ == "__main__":
    main()
