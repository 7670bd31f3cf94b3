"""A first run's compile on two cores: a helper process compiles the kernels only the loop calls
while this process compiles the rest.

With an empty numba cache, ``adaptive``'s first model compiled about 58 s of kernels on one core
(`bench/ANALYSIS.md`). The prequential loop (`kernel.run`) alone took 39 s of it, most of that
its callees: the tree learner, the router's step, the MLP's update and the detectors. Those are
handed, with the exact argument types this process will call them with, to a helper process as
the model is built. The helper compiles them into the shared on-disk cache while this process
compiles the constructor's kernels, and when `run` reaches one of them numba loads it from the
cache instead of compiling it (measured: `driftflow run` from an empty cache 61 s -> 37 s).

The result is the same machine code either way: the helper only fills numba's cache earlier.
If it fails, is slow or is killed, this process compiles what is missing itself. It is started
once per process, only when ``run`` is not cached yet, only with two cores or more, and never
with ``DRIFTFLOW_COMPILE_HELPER=0``. The signatures travel to the helper as a pickle on its
stdin: numba types, between two processes of the same code; nothing outside ever sends one.
"""
from __future__ import annotations

import atexit
import importlib
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

from numba import typeof, types

HELPER_ENV = "DRIFTFLOW_COMPILE_HELPER"
_ROOT = Path(__file__).resolve().parents[3]
helper: subprocess.Popen | None = None   # this process's helper, once started


def helper_signatures(model: Any) -> list[tuple[str, str, tuple[Any, ...]]]:
    """(module, kernel, argument types) of the kernels `kernel.run` calls that nothing compiles
    before it, typed as `kernel.run`'s call sites pass them (scalars int64 / float64, rows
    C-contiguous, the detectors' ``multinomial`` flag a literal); ``model`` an
    `AdaptiveEnsemble` whose arrays are built."""
    i64, f64 = types.int64, types.float64
    row = types.Array(f64, 1, "C")
    rng = typeof(model.rng)
    return [
        ("experts._compiled_tree_kernels", "tree_predict_learn",
         (typeof(model.trees), i64, row, i64, f64, row)),
        ("router._compiled", "router_step", (typeof(model.router), rng, i64, f64, f64)),
        ("experts._compiled_mlp", "mlp_learn",
         (typeof(model.mlp), i64, row, i64, i64, i64, f64, f64, rng, row, row, row)),
        ("detectors._compiled", "rbocpd_update",
         (typeof(model.err_det), i64, types.literal(False), f64)),
        ("detectors._compiled", "rbocpd_update",
         (typeof(model.label_det), i64, types.literal(True), f64)),
        ("detectors._compiled", "adwin_update", (typeof(model.adwin), i64, f64, f64)),
        ("detectors._compiled_shift", "shift_update",
         (typeof(model.event_det), types.boolean, i64, i64)),
        ("detectors._compiled_sentinel", "sentinel_update",
         (typeof(model.sentinel), typeof(model.sentinel_tree), row, i64)),
    ]


def _loop_is_cached() -> bool:
    """Whether `kernel.run` has compiled code in the cache (its index file exists)."""
    from pipelines.models.compiled import kernel

    cache = getattr(kernel.run, "_cache", None)
    index = getattr(getattr(cache, "_cache_file", None), "_index_path", None)
    return index is None or os.path.exists(index)


def start_helper(model: Any) -> subprocess.Popen | None:
    """Start the helper for ``model``'s kernels when this process would compile them cold;
    the helper process, or None when not started (see the module docstring)."""
    global helper
    if (helper is not None or os.environ.get(HELPER_ENV) == "0" or (os.cpu_count() or 1) < 2
            or _loop_is_cached()):
        return None
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    started = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               cwd=_ROOT, env=env)
    assert started.stdin is not None
    started.stdin.write(pickle.dumps(helper_signatures(model)))
    started.stdin.close()
    atexit.register(started.kill)   # a run that ends first leaves nothing behind
    helper = started
    return started


def compile_all(signatures: list[tuple[str, str, tuple[Any, ...]]]) -> None:
    """Compile each kernel for its signature (the helper's work; cached on disk)."""
    for module, name, signature in signatures:
        getattr(importlib.import_module(module), name).compile(signature)


if __name__ == "__main__":
    compile_all(pickle.load(sys.stdin.buffer))
