"""One BLAS thread per process: the models multiply small matrices once per record or
mini-batch, where BLAS threads cost more than they give (measured: a 256x256 @ 256x128 product
took 1,810 us with 2 threads against 355 us with 1 on a 2-core machine).

``OPENBLAS_NUM_THREADS`` only works if it is set before the BLAS library loads, and numpy (so its
BLAS) is often loaded before driftflow (by the user, by River, by Ray). `limit_blas_threads`
uses threadpoolctl instead, which changes the thread count of BLAS libraries already loaded.
"""
from __future__ import annotations

import os

from threadpoolctl import threadpool_limits


def limit_blas_threads() -> int:
    """Limit every BLAS library loaded in this process to one thread, or to the user's
    ``OPENBLAS_NUM_THREADS`` when set; returns that count. Call it after numpy and scipy are
    imported (`pipelines` does, at import, once its modules are loaded)."""
    try:
        threads = max(1, int(os.environ.get("OPENBLAS_NUM_THREADS", "1")))
    except ValueError:
        threads = 1
    threadpool_limits(threads, user_api="blas")
    return threads
