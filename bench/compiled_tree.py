"""The compiled Hoeffding tree beside River's and MOA's on the same records.

    python -m bench.compiled_tree [--records 100000] [--streams SEAa LEDa RBFm] [--no-moa]
                                  [--led-drift]

Every tree has the DriftMoE paper's settings (grace period 50, split confidence 1e-7, tie
threshold 0.05, naive-Bayes-adaptive leaves). Per stream: prequential accuracy (%) and CPU
microseconds a record (predict + learn; CPU, not wall, time because the machine is shared) of
- ``compiled batch``: ``tree_predict_learn_many`` over the encoded stream (what a compiled model
  loop pays; encoding timed separately);
- ``compiled record``: ``CompiledHoeffdingTree.predict_proba_one`` + ``learn_one`` (River's API);
- ``River``: ``river.tree.HoeffdingTreeClassifier``;
- ``MOA``: ``moa.classifiers.trees.HoeffdingTree`` from MOA's jar (`bench.moa_peers`'s
  ``moa-ht``, bench/moa/Prequential.java) reading the same records from an ARFF file (LED's
  segments declared nominal, as MOA's own LED generator declares them, and so in our trees);
  CPU time of its predict+learn loop alone.
Writes compiled_tree.json and the table in COMPILED_TREE.md beside this file.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from river import tree

from bench.moa_peers import run_learner, write_arff
from bench.provenance import commit_label
from experts import CompiledHoeffdingTree
from experts._compiled_tree import (
    grow_tree_pool,
    new_tree_pool,
    tree_predict_learn_many,
)
from experts._encoding import RecordEncoder
from pipelines.sources.synthetic import STREAMS, _compose, _led_concept, _named

HERE = Path(__file__).resolve().parent
PAPER = {"grace_period": 50, "delta": 1e-7, "tau": 0.05, "leaf_prediction": "nba"}
_MAX_NODES = 100_000   # above any tree these streams grow: the cap never binds here
_BATCH = 1000          # records a kernel call: a Kafka poll's worth


def _accuracy(hits: float, n: int) -> float:
    return round(100.0 * hits / n, 2)


def compiled_batch(data: list, nominal: tuple) -> dict:
    """Encode everything, then one prequential kernel call (warm: compiled on a short run)."""
    started = time.process_time()
    encoder = RecordEncoder(nominal)
    for x, y in data:
        encoder.encode(x, learn=True)
        encoder.encode_label(y, learn=True)
    X = np.array([encoder.encode(x) for x, _ in data])
    y = np.array([encoder.encode_label(label) for _, label in data])
    encode_us = (time.process_time() - started) / len(data) * 1e6
    pool = new_tree_pool(1, X.shape[1], encoder.n_classes, encoder.nominal_sizes(),
                         max_nodes=_MAX_NODES, **PAPER)
    proba = np.zeros((len(data), encoder.n_classes))
    weights = np.ones(len(y))
    started = time.process_time()
    for i in range(0, len(y), _BATCH):   # grow between batches when a kernel asks, as a model does
        if tree_predict_learn_many(pool, 0, X[i:i + _BATCH], y[i:i + _BATCH],
                                   weights[i:i + _BATCH], proba[i:i + _BATCH]):
            pool = grow_tree_pool(pool)
    us = (time.process_time() - started) / len(data) * 1e6
    return {"accuracy": _accuracy((proba.argmax(axis=1) == y).sum(), len(y)),
            "us_per_record": round(us, 2), "encode_us_per_record": round(encode_us, 2),
            "nodes": int(pool.sizes[0, 0])}


def record_api(model, data: list) -> dict:
    hits = 0
    started = time.process_time()
    for x, y in data:
        proba = model.predict_proba_one(x)
        hits += bool(proba) and max(proba, key=proba.get) == y
        model.learn_one(x, y)
    us = (time.process_time() - started) / len(data) * 1e6
    nodes = model.n_nodes
    return {"accuracy": _accuracy(hits, len(data)), "us_per_record": round(us, 2),
            "nodes": int(nodes)}


def moa_tree(data: list, label: str) -> dict:
    """MOA's HoeffdingTree (the paper's settings, `bench.moa_peers`'s ``moa-ht``) on ``data``;
    ``label`` starting with LED makes the attributes nominal."""
    with tempfile.TemporaryDirectory() as tmp:
        arff = Path(tmp) / "stream.arff"
        classes = write_arff(arff, label, [x for x, _ in data], [y for _, y in data])
        out = run_learner("moa-ht", arff, classes, seed=0)
    return {"accuracy": round(100.0 * out["accuracy"], 2),
            "us_per_record": round(out["cpu_seconds"] / out["records"] * 1e6, 2),
            "nodes": int(out["measurements"]["tree size (nodes)"])}


def led_drift(moa: bool, n: int = 200_000, centre: int = 100_000) -> dict:
    """bench/moa/README.md's LED drift (3 -> 5 swapped segments at ``centre``, river_led.py's
    records): the compiled tree, and MOA's on the very same records."""
    records = _compose([_named(_led_concept(3, 1)), _named(_led_concept(5, 2))], [centre], 50, 7)
    data = [next(records) for _ in range(n)]
    names = [str(i) for i in range(24)]
    result = {"compiled batch": compiled_batch(data, tuple(names))}
    if moa:
        result["MOA"] = moa_tree(data, "LED drift")
    return result


def run_stream(name: str, n: int, seed: int, moa: bool) -> dict:
    stream = STREAMS[name](n, seed)
    data = list(stream)
    nominal = tuple(stream.feature_names) if name.startswith("LED") else ()
    result = {
        "compiled batch": compiled_batch(data, nominal),
        "compiled record": record_api(
            CompiledHoeffdingTree(max_nodes=_MAX_NODES, nominal_features=nominal or None,
                                  **PAPER), data),
        "River": record_api(_RiverTree(tree.HoeffdingTreeClassifier(
            grace_period=50, delta=1e-7, tau=0.05, leaf_prediction="nba")), data),
    }
    if moa:
        result["MOA"] = moa_tree(data, name)
    return result


class _RiverTree:
    """River's tree with ``n_nodes`` and a ``predict_proba_one`` like the others'."""

    def __init__(self, model: tree.HoeffdingTreeClassifier) -> None:
        self.model = model

    def predict_proba_one(self, x: dict) -> dict:
        return self.model.predict_proba_one(x)

    def learn_one(self, x: dict, y: int) -> None:
        self.model.learn_one(x, y)

    @property
    def n_nodes(self) -> int:
        return self.model.n_nodes


def _table(results: dict, n: int, commit: str) -> str:
    lines = [(f"Commit {commit}; {n:,} records a stream (LED drift: 200,000), seed 0; accuracy "
              "% / CPU us a record (predict + learn) / nodes."), "",
             "| stream | compiled batch | compiled record | River | MOA |",
             "|---|---:|---:|---:|---:|"]
    for stream, row in results.items():
        cells = [f"{r['accuracy']:.2f} / {r['us_per_record']:.1f} / {r['nodes']}"
                 if (r := row.get(k)) else "-"
                 for k in ("compiled batch", "compiled record", "River", "MOA")]
        lines.append(f"| {stream} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.compiled_tree",
                                description=__doc__.split("\n")[0])
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--streams", nargs="+", default=["SEAa", "LEDa", "RBFm"])
    p.add_argument("--no-moa", action="store_true",
                   help="skip MOA (needs java, javac and mvn: bench.moa_peers builds on first use)")
    p.add_argument("--led-drift", action="store_true",
                   help="also bench/moa/README.md's 200,000-record LED drift (compiled and MOA)")
    args = p.parse_args(argv)
    compiled_batch(list(STREAMS["SEAa"](500, 0)), ())        # compile (or load the cache)
    commit = commit_label()
    results = {name: run_stream(name, args.records, 0, not args.no_moa) for name in args.streams}
    if args.led_drift:
        results["LED drift 200k (bench/moa)"] = led_drift(not args.no_moa)
    (HERE / "compiled_tree.json").write_text(json.dumps(
        {"commit": commit, "records": args.records, "results": results}, indent=1) + "\n")
    print(_table(results, args.records, commit))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
