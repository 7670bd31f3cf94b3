"""BLAS runs single-threaded in every process that imports driftflow, even when numpy (and so
its BLAS) was loaded first, where OPENBLAS_NUM_THREADS no longer has any effect."""
from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import json, numpy, threadpoolctl   # numpy's BLAS is loaded before driftflow
import pipelines
print(json.dumps([(i["internal_api"], i["num_threads"]) for i in threadpoolctl.threadpool_info()
                  if i["user_api"] == "blas"]))
"""


def _blas_threads(env: dict[str, str]) -> list[tuple[str, int]]:
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    return [tuple(pair) for pair in json.loads(out.stdout.strip().splitlines()[-1])]


def test_blas_is_single_threaded_after_numpy_was_imported_first() -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    blas = _blas_threads(env)
    assert blas and all(threads == 1 for _, threads in blas), blas


def test_a_users_blas_thread_setting_wins() -> None:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}
    blas = _blas_threads(env)
    assert blas and all(threads == 2 for _, threads in blas), blas
