"""One bench worker: every model, one after the other, on one (stream, seed), timed (no
tracemalloc), then a separate tracemalloc pass; MOA's peers in a JVM on the same records (no
tracemalloc pass); see `bench.harness` for what is measured."""
from __future__ import annotations

import gc
import math
import pickle
import time
import traceback
import tracemalloc
from collections import Counter
from collections.abc import Callable
from typing import Any

from river import base
from tqdm import tqdm

from bench.catalog import MODEL_REGISTRY
from bench.moa_peers import MOA_LEARNERS, MoaStreamFile
from pipelines import DeadLetter, PrequentialMetrics, open_source

# tracemalloc slows a model 3-8x, and the pass runs every model on every stream: 2,500 records
# keep it a fraction of the timed run (5,000 were ~10 % of a ci run's time); the state columns
# cover growth over the whole stream.
DEFAULT_MEM_RECORDS = 2_500
SMOKE_MEM_RECORDS = 500  # a smoke run should stay quick; tracemalloc costs 3-8x the timed run
_CHUNK = 1_000  # records between progress-bar updates inside the timed loop (a batch path's batch)
_WARM_UP_RECORDS = 200  # untimed records through a throw-away model first (`_warm_up`)


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
    many = getattr(model, "learn_predict_many", None)
    states: list[tuple[int, int | None]] = []
    start = time.perf_counter()
    for lo in range(0, len(xs), _CHUNK):
        hi = min(lo + _CHUNK, len(xs))
        if many is not None:   # the batch path every runner feeds: same predictions (tested)
            preds[lo:hi] = many(xs[lo:hi], ys[lo:hi])
        else:
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
    moa_file = MoaStreamFile(label, xs, ys)   # the ARFF export, written if a MOA peer runs
    try:
        for name in task["models"]:
            out["runs"][name] = _run_model(name, task, xs, ys, moa_file, position)
    finally:
        moa_file.close()
    return out


def _run_model(name: str, task: dict[str, Any], xs: list, ys: list, moa_file: MoaStreamFile,
               position: int) -> dict[str, Any]:
    """One model's timed run on the stream, scored, then its tracemalloc pass (Python only);
    a failure is reported in the run, not raised."""
    label, seed, n = task["label"], task["seed"], len(xs)
    window, every = _curve_settings(n)
    mem_n = min(n, task["mem_records"])
    run: dict[str, Any] = {"model": name, "seed": seed}
    bar = tqdm(total=n, desc=f"{label}/s{seed} {name}", position=position, leave=False,
               disable=task["quiet"], mininterval=1.0, unit="rec", dynamic_ncols=True)
    try:
        gc.collect()
        if name in MOA_LEARNERS:
            preds, seconds = _moa_run(moa_file, name, seed, n, run)
            bar.update(n)
        else:
            preds, seconds = _python_run(name, seed, xs, ys, bar, run)
        metrics = PrequentialMetrics(window=window, curve_every=every)
        for y, p in zip(ys, preds):
            metrics.update(y, p)
        run.update(metrics.as_dict())
        run.update(seconds=seconds, records_per_s=n / seconds if seconds > 0 else math.inf,
                   curve=metrics.curve)
        del preds
        if mem_n and name not in MOA_LEARNERS:
            bar.set_postfix_str(f"tracemalloc pass, {mem_n:,} records", refresh=True)
            run.update(_memory_run(MODEL_REGISTRY[name], seed, xs[:mem_n], ys[:mem_n]))
    except Exception as exc:  # noqa: BLE001 - one failing model must not sink the others
        run["error"] = f"{type(exc).__name__}: {exc}"
        run["traceback"] = traceback.format_exc()
    finally:
        bar.close()
    return run


def _warm_up(model: base.Classifier, xs: list, ys: list) -> None:
    """Run a throw-away copy of the model over a few records, untimed: a compiled model's
    kernels are compiled (or loaded from numba's cache) here, once per machine and version of
    the sources, not inside the timed loop. MOA's JVM warms up inside its timed loop instead
    (its JIT is part of every run)."""
    many = getattr(model, "learn_predict_many", None)
    if many is not None:
        many(xs, ys)
        return
    for x, y in zip(xs, ys):
        model.predict_one(x)
        model.learn_one(x, y)


def _python_run(name: str, seed: int, xs: list, ys: list, bar: tqdm, run: dict[str, Any]
                ) -> tuple[list, float]:
    """The timed run of a Python model; its end state, experts and drifts go into ``run``."""
    _warm_up(MODEL_REGISTRY[name](seed), xs[:_WARM_UP_RECORDS], ys[:_WARM_UP_RECORDS])
    model = MODEL_REGISTRY[name](seed)
    preds, seconds, states = _timed_run(model, xs, ys, bar, max(_CHUNK, len(xs) // 20))
    events = model.events() if hasattr(model, "events") else []
    run.update(
        experts=_experts(model), state_bytes=_pickled_size(model),
        drifts_detected=[e["position"] for e in events if e.get("kind") == "drift"],
        event_counts=dict(Counter(e.get("kind", "?") for e in events)), state_curve=states,
        state_spread_second_half=_second_half_spread(states, len(xs)),
    )
    return preds, seconds


def _moa_run(moa_file: MoaStreamFile, name: str, seed: int, n: int, run: dict[str, Any]
             ) -> tuple[list, float]:
    """A MOA peer in its JVM on the stream's records: its predictions and loop seconds."""
    result = moa_file.run(name, seed)
    if result["records"] != n:
        raise RuntimeError(f"MOA read {result['records']:,} records of {n:,}")
    run.update(experts=MOA_LEARNERS[name][1], state_bytes=None, drifts_detected=[],
               event_counts={}, state_curve=[], state_spread_second_half=None,
               cpu_seconds=result["cpu_seconds"], moa_accuracy=result["accuracy"],
               moa_measurements=result["measurements"])
    return result["predictions"], result["seconds"]


def _pickled_size(model: Any) -> int | None:
    try:
        return len(pickle.dumps(model, protocol=5))
    except Exception:  # noqa: BLE001 - an unpicklable model just has no state size
        return None


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
