"""Benchmarks that decide: driftflow's models and River's peers on the same streams, in one run.

``driftflow bench`` / ``python -m bench``. For every stream and seed one worker process (spawned)
generates the stream once into a list, then runs every model on it one after the other, so the
timings within a stream share a process, a CPU and a stream. Per (stream, model):

- **Prequential accuracy** (test-then-train on every record): ``predict_one`` then ``learn_one``.
  Accuracy, kappa, kappa-M, kappa-T and the windowed-accuracy curve come from
  `pipelines.PrequentialMetrics`, computed from the stored predictions *after* the timed loop.
- **Throughput**: ``time.perf_counter`` around the whole loop of ``predict_one`` + ``learn_one``
  over the pre-generated records (stream generation/decoding, scoring and tracemalloc are *not*
  timed; a progress-bar update every ``_CHUNK`` records is). records/s = records / seconds.
- **Memory**: a *second*, separate pass with a fresh model (same seed) over the first
  ``min(N, --mem-records)`` records (default 2,500; 500 for smoke runs) under ``tracemalloc``:
  the peak of traced Python allocations from just before the model is built to the end of that
  pass, minus the traced size at the start. tracemalloc slows Python several-fold, which is why
  the timed run does not use it; the peak includes the transient allocations of predict/learn,
  and, measured at ``mem-records``, it understates a model that keeps growing after that.
  **State** is the pickled size of the model at the end of the timed run (the whole stream), a
  cheap measure of what it retains.
- **Experts** at the end: ``model.n_experts`` (driftflow), ``n_models`` (River ensembles), 1 for
  a single tree. **Detected drifts**: positions of ``events()`` of kind ``"drift"`` (driftflow's
  models only; River's peers expose none).
- **Ratios**: accuracy minus ARF(10)'s (percentage points), throughput / ARF(10)'s and throughput
  / HoeffdingTree's, on the same stream and seed.

Writes ``RESULTS.md``, ``results.json`` (every raw number) and one PNG per stream to ``--out``.
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread per worker; inherited by spawned workers

import argparse  # noqa: E402
import datetime as _dt  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing as mp  # noqa: E402
import pickle  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from river import base, ensemble, forest, tree  # noqa: E402
from tqdm import tqdm  # noqa: E402

from pipelines import DeadLetter, PrequentialMetrics, make_model, open_source  # noqa: E402
from pipelines import STREAMS as SYNTHETIC_STREAMS  # noqa: E402
from pipelines.sources.datasets import electricity_path  # noqa: E402

from bench.provenance import code_line, code_version  # noqa: E402

# -- models ------------------------------------------------------------------------------------

MODEL_REGISTRY: dict[str, Callable[[int], base.Classifier]] = {
    "adaptive": lambda seed: make_model("adaptive", seed),
    "driftmoe-data": lambda seed: make_model("driftmoe-data", seed),
    "driftmoe-task": lambda seed: make_model("driftmoe-task", seed),
    # River's peers, River defaults throughout (SRP's default base model is
    # HoeffdingTreeClassifier(grace_period=50, delta=0.01), River's own choice).
    "river-ht": lambda seed: tree.HoeffdingTreeClassifier(),
    "river-hat": lambda seed: tree.HoeffdingAdaptiveTreeClassifier(seed=seed),
    "river-arf10": lambda seed: forest.ARFClassifier(n_models=10, seed=seed),
    "river-srp10": lambda seed: ensemble.SRPClassifier(n_models=10, seed=seed),
    "river-lb10": lambda seed: ensemble.LeveragingBaggingClassifier(
        model=tree.HoeffdingTreeClassifier(), n_models=10, seed=seed),
}
"""Every benchmarked model by name: ``factory(seed) -> River classifier``."""

MODEL_LABELS = {
    "adaptive": "adaptive (driftflow)", "driftmoe-data": "DriftMoE MoE-Data",
    "driftmoe-task": "DriftMoE MoE-Task", "river-ht": "HoeffdingTree",
    "river-hat": "HoeffdingAdaptiveTree", "river-arf10": "ARF(10)", "river-srp10": "SRP(10)",
    "river-lb10": "LeveragingBagging(10)",
}
ARF, HT, MOE_DATA, ADAPTIVE = "river-arf10", "river-ht", "driftmoe-data", "adaptive"
# SRP(10) and LeveragingBagging(10) run ~40 records/s on LED: at ci size they alone would take
# ~3 h, so they run when asked (``--models``, or ``--models all``), not by default.
SLOW_PEERS = ("river-srp10", "river-lb10")
DEFAULT_MODELS = [name for name in MODEL_REGISTRY if name not in SLOW_PEERS]

# -- streams -----------------------------------------------------------------------------------

ELEC = "elec"
DEFAULT_STREAMS = [*SYNTHETIC_STREAMS, ELEC]
SIZES = {"smoke": 2_000, "ci": 100_000, "full": 1_000_000}
PAPER_MOE_DATA = {  # DriftMoE paper, MoE-Data, mean of 10 seeds, 1,000,000 records (elec: whole)
    "LEDa": 73.77, "LEDg": 73.11, "SEAa": 89.09, "SEAg": 88.74, "RBFm": 79.89, "RBFf": 61.90,
    ELEC: 83.76,
}
# tracemalloc slows a model 3-8x, and the pass runs every model on every stream: 2,500 records
# keep it a fraction of the timed run (5,000 were ~10 % of a ci run's time); the state columns
# cover growth over the whole stream.
DEFAULT_MEM_RECORDS = 2_500
SMOKE_MEM_RECORDS = 500  # a smoke run should stay quick; tracemalloc costs 3-8x the timed run
_CHUNK = 1_000  # records between progress-bar updates inside the timed loop


# Written by hand after a run: what the figures mean, targets met or missed, where time goes.
ANALYSIS = Path(__file__).resolve().parent / "ANALYSIS.md"


def resolve_stream(name: str) -> tuple[str, str]:
    """``(label, source spec)`` for a ``--streams`` entry: a synthetic name (``SEAa``),
    ``synthetic:NAME``, ``elec`` / ``electricity`` or ``file:PATH``."""
    bare = name.removeprefix("synthetic:")
    if bare in SYNTHETIC_STREAMS:
        return bare, f"synthetic:{bare}"
    if name.lower() in (ELEC, "electricity"):
        return ELEC, f"file:{electricity_path()}"
    if name.startswith("file:"):
        return Path(name[len("file:"):]).name.split(".")[0], name
    raise ValueError(
        f"unknown stream {name!r}; use one of {', '.join(DEFAULT_STREAMS)} or file:PATH")


# -- one worker: every model on one (stream, seed) ---------------------------------------------


def _experts(model: Any) -> int:
    n = getattr(model, "n_experts", None)
    if n is None:
        n = getattr(model, "n_models", None)
    return int(n) if n is not None else 1


def _curve_settings(n: int) -> tuple[int, int]:
    """(window, curve_every): about 400 curve points, window 1,000 records once n >= 20,000."""
    return min(1_000, max(50, n // 20)), max(1, n // 400)


def _timed_run(model: base.Classifier, xs: list, ys: list, bar: tqdm, state_every: int
               ) -> tuple[list, float, list[tuple[int, int | None]]]:
    """Predictions, seconds of predict+learn, and (records seen, pickled model bytes) every
    ``state_every`` records over the second half, where the spread is read (the pickling is not
    timed; ARF(10) on LED pickles ~150 MB, seconds each)."""
    preds: list = [None] * len(xs)
    predict, learn = model.predict_one, model.learn_one
    states: list[tuple[int, int | None]] = []
    start = time.perf_counter()
    for lo in range(0, len(xs), _CHUNK):
        hi = min(lo + _CHUNK, len(xs))
        for i in range(lo, hi):
            x, y = xs[i], ys[i]
            preds[i] = predict(x)
            learn(x, y)
        bar.update(hi - lo)
        if hi // state_every > lo // state_every and hi >= len(xs) / 2:
            paused = time.perf_counter()
            states.append((hi, _pickled_size(model)))
            start += time.perf_counter() - paused
    return preds, time.perf_counter() - start, states


def _second_half_spread(states: list[tuple[int, int | None]], n: int) -> float | None:
    """(max - min) / min of the model's pickled size over the samples in the stream's second
    half: 0.1 = it moved within 10 %."""
    sizes = [size for seen, size in states if seen >= n / 2 and size]
    return (max(sizes) - min(sizes)) / min(sizes) if len(sizes) >= 2 else None


def _memory_run(factory: Callable[[int], base.Classifier], seed: int, xs: list, ys: list
                ) -> dict[str, int]:
    gc.collect()
    t0 = time.perf_counter()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        model = factory(seed)
        for x, y in zip(xs, ys):
            model.predict_one(x)
            model.learn_one(x, y)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return {"mem_peak_bytes": peak - start, "mem_end_bytes": current - start,
            "mem_records": len(xs), "mem_seconds": time.perf_counter() - t0}


def run_stream(task: dict[str, Any]) -> dict[str, Any]:
    """Worker body: generate ``task["spec"]`` once, then run every model sequentially."""
    label, spec, seed, limit = task["label"], task["spec"], task["seed"], task["limit"]
    position = _worker_slot()
    out: dict[str, Any] = {"label": label, "spec": spec, "seed": seed, "runs": {}}
    t0 = time.perf_counter()
    try:
        source = open_source(spec, limit=limit, seed=seed)
        xs, ys, dead = [], [], 0
        for item in source:
            if isinstance(item, DeadLetter) or item.y is None:
                dead += 1
                continue
            xs.append(item.x)
            ys.append(item.y)
    except Exception as exc:  # noqa: BLE001 - reported per stream, the run goes on
        out["error"] = f"{type(exc).__name__}: {exc}"
        return out
    n = len(xs)
    out.update(n_records=n, skipped=dead, drift_positions=list(source.drift_positions),
               generate_seconds=time.perf_counter() - t0)
    window, every = _curve_settings(n)
    out.update(window=window, curve_every=every)
    mem_n = min(n, task["mem_records"])
    for name in task["models"]:
        factory = MODEL_REGISTRY[name]
        run: dict[str, Any] = {"model": name, "seed": seed}
        bar = tqdm(total=n, desc=f"{label}/s{seed} {name}", position=position, leave=False,
                   disable=task["quiet"], mininterval=1.0, unit="rec", dynamic_ncols=True)
        try:
            gc.collect()
            model = factory(seed)
            preds, seconds, states = _timed_run(model, xs, ys, bar, max(_CHUNK, n // 20))
            metrics = PrequentialMetrics(window=window, curve_every=every)
            for y, p in zip(ys, preds):
                metrics.update(y, p)
            events = model.events() if hasattr(model, "events") else []
            run.update(metrics.as_dict())
            run.update(
                seconds=seconds, records_per_s=n / seconds if seconds > 0 else math.inf,
                experts=_experts(model), state_bytes=_pickled_size(model),
                drifts_detected=[e["position"] for e in events if e.get("kind") == "drift"],
                event_counts=_count_kinds(events), curve=metrics.curve, state_curve=states,
                state_spread_second_half=_second_half_spread(states, n),
            )
            del model, preds
            if mem_n:
                bar.set_postfix_str(f"tracemalloc pass, {mem_n:,} records", refresh=True)
                run.update(_memory_run(factory, seed, xs[:mem_n], ys[:mem_n]))
        except Exception as exc:  # noqa: BLE001 - one failing model must not sink the others
            run["error"] = f"{type(exc).__name__}: {exc}"
            run["traceback"] = traceback.format_exc()
        finally:
            bar.close()
        out["runs"][name] = run
    return out


def _pickled_size(model: Any) -> int | None:
    try:
        return len(pickle.dumps(model, protocol=5))
    except Exception:  # noqa: BLE001 - an unpicklable model just has no state size
        return None


def _count_kinds(events: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in events:
        counts[e.get("kind", "?")] = counts.get(e.get("kind", "?"), 0) + 1
    return counts


_SLOT: Any = None
_SLOT_ID = 0


def _init_worker(lock: Any, counter: Any) -> None:
    """Pool initializer: a tqdm lock shared by the workers and a bar row per worker."""
    global _SLOT_ID
    tqdm.set_lock(lock)
    with counter.get_lock():
        _SLOT_ID = counter.value
        counter.value += 1


def _worker_slot() -> int:
    return _SLOT_ID


# -- aggregation -------------------------------------------------------------------------------


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.fmean(vals) if vals else None


def _std(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.stdev(vals) if len(vals) > 1 else None


def add_ratios(stream_results: list[dict[str, Any]]) -> None:
    """Per (stream, seed): accuracy - ARF's (points) and throughput / ARF's and / HT's."""
    for res in stream_results:
        runs = res.get("runs", {})
        arf, ht = runs.get(ARF, {}), runs.get(HT, {})
        for run in runs.values():
            if "error" in run:
                continue
            ok_arf = "accuracy" in arf
            run["acc_minus_arf_points"] = (
                100.0 * (run["accuracy"] - arf["accuracy"]) if ok_arf else None)
            run["speed_vs_arf"] = run["records_per_s"] / arf["records_per_s"] if ok_arf else None
            run["speed_vs_ht"] = (run["records_per_s"] / ht["records_per_s"]
                                  if "records_per_s" in ht else None)


_AGG_KEYS = ("accuracy", "kappa", "kappa_m", "kappa_t", "records_per_s", "seconds", "experts",
             "state_bytes", "mem_peak_bytes", "mem_end_bytes", "acc_minus_arf_points",
             "speed_vs_arf", "speed_vs_ht", "state_spread_second_half")


def aggregate(stream_results: list[dict[str, Any]], models: list[str]
              ) -> dict[str, dict[str, Any]]:
    """Per stream label: stream facts and, per model, seed means (and accuracy std)."""
    by_label: dict[str, list[dict[str, Any]]] = {}
    for res in stream_results:
        by_label.setdefault(res["label"], []).append(res)
    out: dict[str, dict[str, Any]] = {}
    for label, results in by_label.items():
        results.sort(key=lambda r: r["seed"])
        ok = [r for r in results if "error" not in r]
        entry: dict[str, Any] = {
            "spec": results[0]["spec"], "seeds": [r["seed"] for r in results],
            "errors": [r["error"] for r in results if "error" in r], "models": {},
        }
        if ok:
            entry.update(n_records=ok[0]["n_records"], skipped=ok[0]["skipped"],
                         drift_positions=ok[0]["drift_positions"], window=ok[0]["window"])
        for name in models:
            runs = [r["runs"][name] for r in ok if name in r["runs"]]
            good = [r for r in runs if "error" not in r]
            agg: dict[str, Any] = {k: _mean([r.get(k) for r in good]) for k in _AGG_KEYS}
            agg["accuracy_std"] = _std([r["accuracy"] for r in good])
            agg["errors"] = [r["error"] for r in runs if "error" in r]
            agg["drifts_detected"] = good[0]["drifts_detected"] if good else []
            agg["n_drifts_mean"] = _mean([len(r["drifts_detected"]) for r in good])
            agg["mem_records"] = good[0].get("mem_records") if good else None
            entry["models"][name] = agg
        out[label] = entry
    return out


def summarise(per_stream: dict[str, dict[str, Any]], models: list[str]) -> dict[str, Any]:
    """Per model, means over streams of the per-stream means."""
    summary: dict[str, Any] = {}
    for name in models:
        rows = [s["models"][name] for s in per_stream.values()
                if name in s["models"] and s["models"][name]["accuracy"] is not None]
        summary[name] = {
            "streams": len(rows),
            **{k: _mean([r[k] for r in rows]) for k in
               ("accuracy", "kappa", "records_per_s", "acc_minus_arf_points", "speed_vs_arf",
                "speed_vs_ht", "mem_peak_bytes")},
        }
    return summary


# -- report ------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    ram = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    import numpy
    import river
    return {
        "nproc": usable, "cpu_count": os.cpu_count(), "cpu_model": cpu, "ram_bytes": ram,
        "platform": platform.platform(), "python": platform.python_version(),
        "river": river.__version__, "numpy": numpy.__version__,
    }


def _fmt(value: float | None, spec: str, scale: float = 1.0) -> str:
    return "—" if value is None else format(value * scale, spec)


def _model_row(name: str, agg: dict[str, Any], label: str, seeds: int) -> str:
    if agg["accuracy"] is None:
        return f"| {name} | failed: {'; '.join(agg['errors'])[:120]} |" + " |" * 13
    acc = _fmt(agg["accuracy"], ".2f", 100)
    if seeds > 1 and agg["accuracy_std"] is not None:
        acc += f" ± {agg['accuracy_std'] * 100:.2f}"
    paper = _fmt(PAPER_MOE_DATA.get(label), ".2f") if name == MOE_DATA else ""
    drifts = agg["drifts_detected"]
    shown = ", ".join(str(p) for p in drifts[:8]) + (" …" if len(drifts) > 8 else "")
    drift_cell = f"{len(drifts)}: {shown}" if drifts else ("0" if name in
                                                            ("adaptive",) else "")
    return (f"| {name} | {acc} | {paper} | {_fmt(agg['kappa'], '.3f')} "
            f"| {_fmt(agg['kappa_m'], '.3f')} | {_fmt(agg['kappa_t'], '.3f')} "
            f"| {_fmt(agg['records_per_s'], ',.0f')} | {_fmt(agg['acc_minus_arf_points'], '+.2f')} "
            f"| {_fmt(agg['speed_vs_arf'], '.2f')} | {_fmt(agg['speed_vs_ht'], '.3f')} "
            f"| {_fmt(agg['mem_peak_bytes'], ',.1f', 1 / 2**20)} "
            f"| {_fmt(agg['state_bytes'], ',.0f', 1 / 2**10)} "
            f"| {_fmt(agg.get('state_spread_second_half'), '.1f', 100)} "
            f"| {_fmt(agg['experts'], '.3g')} | {drift_cell} |")


_STREAM_HEADER = (
    "| model | acc % | paper MoE-Data % (1M) | kappa | kappa-M | kappa-T | records/s "
    "| acc − ARF (pts) | × ARF speed | × HT speed | mem peak MiB | state KiB "
    "| state spread, 2nd half % | experts | detected drifts |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")


def summary_table(summary: dict[str, Any]) -> str:
    lines = ["| model | streams | mean acc % | mean kappa | mean records/s "
             "| mean acc − ARF (pts) | mean × ARF speed | mean × HT speed |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in summary.items():
        lines.append(
            f"| {name} | {s['streams']} | {_fmt(s['accuracy'], '.2f', 100)} "
            f"| {_fmt(s['kappa'], '.3f')} | {_fmt(s['records_per_s'], ',.0f')} "
            f"| {_fmt(s['acc_minus_arf_points'], '+.2f')} | {_fmt(s['speed_vs_arf'], '.2f')} "
            f"| {_fmt(s['speed_vs_ht'], '.3f')} |")
    return "\n".join(lines)


def write_markdown(path: Path, meta: dict[str, Any], per_stream: dict[str, Any],
                   summary: dict[str, Any], figures: dict[str, str]) -> None:
    m = meta["machine"]
    ram = f"{m['ram_bytes'] / 2**30:.1f} GiB" if m["ram_bytes"] else "unknown"
    seeds = meta["seeds"]
    lines = [
        "# driftflow benchmark results", "",
        f"- Date: {meta['date']}",
        f"- Command: `{meta['command']}`",
        code_line(meta.get("code")),
        *([f"- Streams still from this command: {', '.join(meta['own_streams']) or 'none'}"]
          if "own_streams" in meta else []),
        f"- Machine: {m['nproc']} usable CPUs ({m['cpu_count']} online), {m['cpu_model']}, "
        f"{ram} RAM; {m['platform']}",
        f"- Versions: Python {m['python']}, river {m['river']}, numpy {m['numpy']}",
        f"- Size: `{meta['size']}`, records per stream: {meta['limit']:,} (files are capped at "
        f"that, Electricity has 45,312); seeds: {', '.join(map(str, meta['seed_list']))}; "
        f"worker processes: {meta['jobs']}; wall time {meta['wall_seconds']:.1f} s",
        *(f"- Merged in: {', '.join(part['streams'])} from `{part['command']}` ({part['date']}, "
          f"wall time {part['wall_seconds']:.1f} s)" for part in meta.get("merged", [])),
        "",
        "## How to read this", "",
        "- Prequential (test-then-train) on every record: `predict_one`, then `learn_one`. "
        "acc, kappa, kappa-M, kappa-T are over the whole stream" +
        (f", mean of {seeds} seeds (± sample std)." if seeds > 1 else ", one seed."),
        "- records/s: records / wall seconds of the timed predict+learn loop alone "
        "(`time.perf_counter`); the stream is generated into a list first and scoring is done "
        "afterwards, so neither is timed. One process per (stream, seed) runs the models one "
        "after another; other streams may run in parallel worker processes on the other cores.",
        f"- mem peak: `tracemalloc` peak of a separate pass (fresh model, same seed) over the "
        f"first min(N, {meta['mem_records']:,}) records, minus the traced size at its start; "
        "tracemalloc slows Python, so the timed run does not use it. state: pickled size of the "
        "model at the end of the timed run. state spread, 2nd half: the model is pickled every "
        "N/20 records over the stream's second half during the timed run (not timed); "
        "(max - min) / min of those sizes, the figure for \"memory flat within 10 %\".",
        "- acc − ARF: accuracy minus River ARF(10)'s in percentage points; × ARF / × HT speed: "
        "throughput divided by ARF(10)'s / HoeffdingTree's, same stream and seed.",
        "- paper MoE-Data: the DriftMoE paper's MoE-Data accuracy (mean of 10 seeds, 1,000,000 "
        "records, Electricity whole) beside our `driftmoe-data` at this run's size.",
        "- experts: pool size at the end (`n_experts`), `n_models` for River ensembles, 1 for a "
        "tree. detected drifts: positions (record index) of `drift` events, first seed.",
        "- River peers use River defaults (ARF/SRP/LB with 10 models; SRP's base model is "
        "River's default `HoeffdingTreeClassifier(grace_period=50, delta=0.01)`).",
        "", "## Summary (means over streams)", "", summary_table(summary), "",
    ]
    if ANALYSIS.exists():   # the hand-written reading of these figures (targets, profile)
        lines += [ANALYSIS.read_text(encoding="utf-8").strip(), ""]
    for label, entry in per_stream.items():
        lines += [f"## {label}", ""]
        if entry["errors"]:
            lines += [f"Stream failed: {'; '.join(entry['errors'])}", ""]
        if "n_records" not in entry:
            continue
        centres = ", ".join(f"{p:,}" for p in entry["drift_positions"])
        lines.append(f"`{entry['spec']}`: {entry['n_records']:,} records"
                     + (f", {entry['skipped']:,} skipped (dead letters / no label)"
                        if entry["skipped"] else "")
                     + (f"; true drift centres: {centres}" if centres
                        else "; no marked drift points") + ".")
        lines += ["", _STREAM_HEADER]
        lines += [_model_row(name, agg, label, seeds) for name, agg in entry["models"].items()]
        if label in figures:
            lines += ["", f"![{label}: windowed accuracy]({figures[label]})"]
        lines.append("")
    lines += [f"Skipped streams: {', '.join(meta['skipped_streams'])}", ""] \
        if meta["skipped_streams"] else []
    path.write_text("\n".join(lines))


def plot_stream(path: Path, label: str, results: list[dict[str, Any]], models: list[str]) -> None:
    """Windowed accuracy over time per model (mean over seeds), true drifts as grey lines,
    adaptive's detected drifts (first seed) as red ticks."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = sorted((r for r in results if "error" not in r), key=lambda r: r["seed"])
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=110)
    for pos in ok[0]["drift_positions"]:
        ax.axvline(pos, color="grey", alpha=0.6, linewidth=1, linestyle="--")
    for name in models:
        curves = [r["runs"][name]["curve"] for r in ok
                  if name in r["runs"] and "curve" in r["runs"][name]]
        if not curves or not curves[0]:
            continue
        length = min(len(c) for c in curves)
        xs = [p[0] for p in curves[0][:length]]
        ys = [statistics.fmean(c[i][1] for c in curves) * 100 for i in range(length)]
        ax.plot(xs, ys, label=name, linewidth=1.2 if name in (ADAPTIVE, MOE_DATA) else 0.9)
    adaptive = ok[0]["runs"].get(ADAPTIVE, {})
    ticks = adaptive.get("drifts_detected", [])
    if ticks:
        ax.plot(ticks, [0.02] * len(ticks), "|", color="red", markersize=12, markeredgewidth=1.5,
                transform=ax.get_xaxis_transform(), label="adaptive: detected drift")
    ax.set_xlabel("record")
    ax.set_ylabel(f"windowed accuracy % (last {ok[0]['window']:,})")
    ax.set_title(f"{label}: {ok[0]['n_records']:,} records"
                 + (f", mean of {len(ok)} seeds" if len(ok) > 1 else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right", ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# -- CLI ---------------------------------------------------------------------------------------


# Wall seconds per stream record per model on one core, from the ci run in bench/results.json
# (7 streams x 100,000 records x the 6 default models, 2 jobs: 1,664 s); a busy or slower
# machine takes up to `_BUSY_FACTOR` times longer (the ci run then takes ~45 min).
_SECONDS_PER_RECORD_MODEL = 0.79e-3
_BUSY_FACTOR = 1.6


def expected_minutes(records: int, models: int, jobs: int) -> float:
    """Rough wall minutes of a bench run over ``records`` stream records in all (streams x
    seeds x records each), for ``models`` models, in ``jobs`` processes."""
    return records * models * _SECONDS_PER_RECORD_MODEL / jobs / 60


def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def build_parser(prog: str = "driftflow bench") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description="Run driftflow's models and River's peers prequentially on the "
        "same streams; write RESULTS.md, results.json and one accuracy plot per stream.")
    p.add_argument("--streams", type=_csv_list, default=DEFAULT_STREAMS,
                   help=f"comma list (default: {','.join(DEFAULT_STREAMS)}); synthetic names, "
                        "'elec' (Electricity, from $DRIFTFLOW_DATASETS or ../shared/datasets) "
                        "or file:PATH")
    p.add_argument("--models", type=_csv_list, default=DEFAULT_MODELS,
                   help=f"comma list, or 'all' for every one of {', '.join(MODEL_REGISTRY)} "
                        f"(default: all but {' and '.join(SLOW_PEERS)}, ~40 records/s on LED)")
    p.add_argument("--size", choices=list(SIZES), default="ci",
                   help="records per stream: smoke 2,000 (~1 min); ci 100,000 (~30-45 min on 2 "
                        "cores); full 1,000,000 (hours). Files are capped at that; Electricity "
                        "is whole from ci up. Default ci")
    p.add_argument("--limit", type=int, default=None, help="records per stream, overrides --size")
    p.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per stream (default 1)")
    p.add_argument("--out", type=Path, default=None,
                   help="output directory (default: a new runs/bench-SIZE-TIME/; pass "
                        "--out bench/ to replace the tracked results)")
    p.add_argument("--jobs", type=int, default=2,
                   help="worker processes, one (stream, seed) each (default 2; 1 = in-process)")
    p.add_argument("--mem-records", type=int, default=None,
                   help="records of the separate tracemalloc pass (default 2,500; 500 with "
                        "--size smoke; 0 = skip)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--render", action="store_true",
                   help="run nothing: rewrite RESULTS.md in --out (default bench/) from its "
                        "results.json, e.g. after editing bench/ANALYSIS.md")
    p.add_argument("--merge", type=Path, default=None, metavar="DIR",
                   help="with --render: first add the streams of DIR/results.json (another "
                        "run of the same size and seeds) to --out's, replacing same-named ones")
    return p


def _command(argv: list[str]) -> str:
    prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    head = ("driftflow bench" if prog == "driftflow"
            else "python -m bench" if prog in ("__main__.py", "-m", "bench")
            else "bench.harness.main")
    return " ".join([head, *map(shlex.quote, argv)])


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``driftflow bench`` and ``python -m bench``; returns the exit code
    (0 ok, 1 some stream or model failed, 2 bad arguments)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.models == ["all"]:
        args.models = list(MODEL_REGISTRY)
    unknown = [m for m in args.models if m not in MODEL_REGISTRY]
    if unknown:
        parser.print_usage(sys.stderr)
        print(f"unknown model(s): {', '.join(unknown)}; choose from "
              f"{', '.join(MODEL_REGISTRY)}", file=sys.stderr)
        return 2
    if args.seeds < 1 or args.jobs < 1 or (args.limit is not None and args.limit < 1):
        print("--seeds, --jobs and --limit must be >= 1", file=sys.stderr)
        return 2
    if args.mem_records is not None and args.mem_records < 0:
        print("--mem-records must be >= 0", file=sys.stderr)
        return 2
    if args.merge is not None and not args.render:
        print("--merge needs --render", file=sys.stderr)
        return 2
    if args.render:
        return render(args.out or Path(__file__).resolve().parent, args.merge)
    limit = args.limit if args.limit is not None else SIZES[args.size]
    if args.mem_records is None:
        args.mem_records = SMOKE_MEM_RECORDS if args.size == "smoke" else DEFAULT_MEM_RECORDS

    streams: list[tuple[str, str]] = []
    skipped: list[str] = []
    for name in args.streams:
        try:
            label, spec = resolve_stream(name)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        if label == ELEC and not electricity_path().is_file():
            print(f"skipping elec: {electricity_path()} not found (set DRIFTFLOW_DATASETS)",
                  file=sys.stderr)
            skipped.append(f"elec ({electricity_path()} not found)")
            continue
        streams.append((label, spec))

    if args.out is None:   # a run directory; bench/'s tracked results only when asked for
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        args.out = Path("runs") / f"bench-{args.size if args.limit is None else limit}-{stamp}"
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    n_runs = len(streams) * args.seeds
    low = expected_minutes(limit * n_runs, len(args.models), min(args.jobs, max(1, n_runs)))
    expected = (f"~{low:.0f}-{low * _BUSY_FACTOR:.0f} min" if low * _BUSY_FACTOR >= 2
                else "about a minute")
    print(f"driftflow bench: {n_runs} stream run(s) x {len(args.models)} model(s), "
          f"{limit:,} records each; expected time {expected}; results go to {out}",
          file=sys.stderr)

    seeds = list(range(args.seeds))
    tasks = [{"label": label, "spec": spec, "seed": seed, "limit": limit,
              "models": args.models, "mem_records": args.mem_records, "quiet": args.quiet}
             for label, spec in streams for seed in seeds]
    started = time.perf_counter()
    date = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    code = code_version()   # at the start: the code that runs, before any result is written
    results: list[dict[str, Any]] = []
    jobs = min(args.jobs, max(1, len(tasks)))
    if jobs == 1:
        results = [run_stream(t) for t in tasks]
    else:
        ctx = mp.get_context("spawn")
        lock, counter = ctx.RLock(), ctx.Value("i", 0)
        with ctx.Pool(jobs, initializer=_init_worker, initargs=(lock, counter)) as pool:
            for res in pool.imap_unordered(run_stream, tasks):
                results.append(res)
                if not args.quiet:
                    tqdm.write(f"done: {res['label']} seed {res['seed']}", file=sys.stderr)
    wall = time.perf_counter() - started

    add_ratios(results)
    per_stream = aggregate(results, args.models)
    per_stream = {label: per_stream[label] for label, _ in streams if label in per_stream}
    summary = summarise(per_stream, args.models)
    figures: dict[str, str] = {}
    for label in per_stream:
        runs = [r for r in results if r["label"] == label]
        if any("error" not in r for r in runs):
            figures[label] = f"{label}.png"
            plot_stream(out / figures[label], label, runs, args.models)

    meta = {
        "date": date, "command": _command(argv), "argv": argv, "size": args.size,
        "limit": limit, "seeds": args.seeds, "seed_list": seeds, "jobs": jobs,
        "mem_records": args.mem_records, "wall_seconds": wall, "machine": machine_info(),
        "code": code, "models": args.models, "streams": [label for label, _ in streams],
        "skipped_streams": skipped, "paper_moe_data": PAPER_MOE_DATA,
    }
    write_markdown(out / "RESULTS.md", meta, per_stream, summary, figures)
    raw = sorted(results, key=lambda r: (r["label"], r["seed"]))
    (out / "results.json").write_text(json.dumps(
        {"meta": meta, "summary": summary, "streams": per_stream, "runs": raw},
        indent=1, default=_json_default))

    print()
    print(f"driftflow bench: {len(streams)} stream(s) x {len(args.models)} model(s) x "
          f"{args.seeds} seed(s), {limit:,} records per stream, {wall:.1f} s")
    print(summary_table(summary))
    print(f"\nwritten: {out / 'RESULTS.md'}, {out / 'results.json'}, "
          f"{len(figures)} PNG(s) in {out}")
    failed = [f"{r['label']}/s{r['seed']}: {r['error']}" for r in results if "error" in r]
    failed += [f"{r['label']}/s{r['seed']} {name}: {run['error']}" for r in results
               for name, run in r.get("runs", {}).items() if "error" in run]
    for line in failed:
        print(f"FAILED {line}", file=sys.stderr)
    return 1 if failed else 0


def render(out: Path, merge: Path | None = None) -> int:
    """Rewrite ``out/RESULTS.md`` from ``out/results.json`` (with the current ANALYSIS.md),
    without running anything; 2 when a results.json is missing. With ``merge``, the streams of
    ``merge/results.json`` (a run with the same size and seeds) are added to ``out``'s first,
    replacing any stream of the same name, and their plots copied."""
    try:
        data = json.loads((out / "results.json").read_text())
        extra = json.loads((merge / "results.json").read_text()) if merge else None
    except FileNotFoundError as exc:
        print(f"no results.json: {exc.filename}", file=sys.stderr)
        return 2
    if extra is not None:
        if (extra["meta"]["limit"], extra["meta"]["seeds"]) != (data["meta"]["limit"],
                                                                 data["meta"]["seeds"]):
            print("--merge: the two runs differ in records per stream or seeds", file=sys.stderr)
            return 2
        data = _merged(data, extra)
        for label in extra["streams"]:
            if (merge / f"{label}.png").is_file():
                shutil.copyfile(merge / f"{label}.png", out / f"{label}.png")
        (out / "results.json").write_text(json.dumps(data, indent=1, default=_json_default))
    figures = {label: f"{label}.png" for label in data["streams"]
               if (out / f"{label}.png").is_file()}
    write_markdown(out / "RESULTS.md", data["meta"], data["streams"], data["summary"], figures)
    print(f"written: {out / 'RESULTS.md'}")
    return 0


def _merged(data: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a results.json) with ``extra``'s streams added, its runs re-aggregated."""
    meta = dict(data["meta"])
    new = [label for label in extra["meta"]["streams"] if label in extra["streams"]]
    runs = [r for r in data["runs"] if r["label"] not in new] + extra["runs"]
    meta["models"] = list(dict.fromkeys([*meta["models"], *extra["meta"]["models"]]))
    meta["streams"] = [*(s for s in meta["streams"] if s not in new), *new]
    # each stream is credited to the run it now comes from: earlier parts lose replaced streams
    merged_before = {s for part in meta.get("merged", []) for s in part["streams"]}
    own = meta.get("own_streams", [s for s in meta["streams"] if s not in merged_before])
    meta["own_streams"] = [s for s in own if s not in new]
    earlier = [{**part, "streams": [s for s in part["streams"] if s not in new]}
               for part in meta.get("merged", [])]
    meta["merged"] = [*(part for part in earlier if part["streams"]),
                      {key: extra["meta"][key] for key in ("date", "command", "wall_seconds")}
                      | {"streams": new}]
    per_stream = aggregate(runs, meta["models"])
    per_stream = {label: per_stream[label] for label in meta["streams"] if label in per_stream}
    return {"meta": meta, "summary": summarise(per_stream, meta["models"]),
            "streams": per_stream, "runs": sorted(runs, key=lambda r: (r["label"], r["seed"]))}


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    return str(obj)
