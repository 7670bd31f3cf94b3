"""driftflow's numba cache locator: keyed by a digest of every compiled package's sources, so a
change to an inlined kernel in another file cannot leave stale compiled code, and a copy of the
code in another folder (a Ray job's working dir) finds the same cache."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from experts import _jit_cache
from experts._compiled_tree_kernels import tree_predict_proba

ROOT = Path(__file__).resolve().parent.parent


def test_driftflow_kernels_are_cached_under_the_sources_digest() -> None:
    locator = tree_predict_proba._cache._impl.locator
    assert isinstance(locator, _jit_cache.SourcesDigestLocator)
    assert locator.get_source_stamp() == _jit_cache.sources_digest()
    assert _jit_cache.sources_digest() in locator.get_cache_path()


def test_other_code_keeps_numbas_own_locator(tmp_path: Path) -> None:
    outside = tmp_path / "mine.py"
    outside.write_text("def f():\n    return 1\n")
    assert _jit_cache.SourcesDigestLocator.from_function(lambda: 1, str(outside)) is None


def _cache_path_in(root: Path, cache: Path) -> str:
    code = ("from experts._compiled_tree_kernels import tree_predict_proba as f; "
            "print(f._cache._impl.locator.get_cache_path())")
    env = {**os.environ, _jit_cache.CACHE_ENV: str(cache), "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_a_copy_elsewhere_shares_the_cache_and_a_changed_source_does_not(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    for package in ("experts", "detectors", "router", "pipelines"):
        shutil.copytree(ROOT / package, copy / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "cache"
    original = _cache_path_in(ROOT, cache)
    assert _cache_path_in(copy, cache) == original
    with open(copy / "experts" / "_compiled_rng.py", "a") as f:   # a kernel others inline
        f.write("\n# changed\n")
    assert _cache_path_in(copy, cache) != original


def test_is_warm_only_once_compiled_code_is_on_disk(tmp_path: Path) -> None:
    """The first-run notice of `driftflow run` rests on this: an empty cache is cold, importing
    compiles nothing, and the first compiled kernel written under this sources' digest makes it
    warm."""
    code = ("from experts import _jit_cache; print(_jit_cache.is_warm()); "
            "from experts._compiled_rng import new_rng, rng_next; print(_jit_cache.is_warm()); "
            "rng_next(new_rng(1)); print(_jit_cache.is_warm())")
    env = {**os.environ, _jit_cache.CACHE_ENV: str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    assert out == ["False", "False", "True"]


def test_the_compile_helper_compiles_what_the_loop_calls(tmp_path: Path) -> None:
    """From an empty cache, the first model starts a helper process that compiles the loop's
    callees with the argument types `kernel.run` calls them with: after a batch, every one of
    the helper's signatures is one this process compiled or loaded for that kernel (a wrong
    type would only waste the helper's work, so nothing else would notice), the helper ends
    cleanly, and the predictions equal this process's (compiled without a helper or cached).
    """
    code = """
import importlib, json, os
from pipelines import make_model, open_source
from pipelines.models.compiled import parallel_compile
rows = list(open_source("synthetic:SEAa", limit=300, seed=3))
model = make_model("adaptive", seed=3)
preds = model.learn_predict_many([r.x for r in rows], [r.y for r in rows])
helper = parallel_compile.helper
used = []
if helper is not None:
    helper.wait(timeout=600)
    for module, name, sig in parallel_compile.helper_signatures(model):
        used.append(tuple(sig) in getattr(importlib.import_module(module), name).signatures)
print(json.dumps({"helper": None if helper is None else helper.returncode, "used": used,
                  "preds": [str(p) for p in preds]}))
"""
    env = {**os.environ, _jit_cache.CACHE_ENV: str(tmp_path / "cache"),
           "PYTHONPATH": str(ROOT), "DRIFTFLOW_COMPILE_HELPER": "1"}
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True, timeout=900)
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["helper"] == 0 and len(out["used"]) == 8 and all(out["used"])
    from pipelines import make_model, open_source  # this process: its cache, no helper

    rows = list(open_source("synthetic:SEAa", limit=300, seed=3))
    preds = make_model("adaptive", seed=3).learn_predict_many([r.x for r in rows],
                                                              [r.y for r in rows])
    assert out["preds"] == [str(p) for p in preds]
