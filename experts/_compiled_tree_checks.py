"""Validation of a ``TreePool`` restored from arrays: the kernels index without bounds checks,
so every index a kernel will follow is checked here once, and a crafted snapshot is refused
with ValueError instead of reading or writing outside an array (or looping forever)."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._compiled_tree_layout import (
    DELTA,
    GRACE,
    LEAF_PREDICTION,
    MAX_NODES,
    N_SETTINGS,
    SPLIT_POINTS,
    TAU,
    TreePool,
)

_MAX_SPLIT_POINTS = 1000   # candidate thresholds per numeric feature: MOA uses 10


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(f"invalid tree pool: {what}")


def _check_settings(s: np.ndarray) -> None:
    _require(s.shape[1] == N_SETTINGS and bool(np.isfinite(s).all()), "settings")
    _require(bool((s[:, GRACE] > 0).all() and (s[:, DELTA] > 0).all()
                  and (s[:, DELTA] < 1).all() and (s[:, TAU] >= 0).all()
                  and (s[:, MAX_NODES] >= 1).all()), "settings out of range")
    _require(bool(np.isin(s[:, LEAF_PREDICTION], (0, 1, 2)).all()), "leaf prediction")
    points = s[:, SPLIT_POINTS]
    _require(bool(((points >= 1) & (points <= _MAX_SPLIT_POINTS)
                   & (points == np.floor(points))).all()), "split points")


def _check_tree(pool: TreePool, slot: int) -> None:
    n_features = pool.nominal_values.shape[1]
    nodes, rows, branches = (int(v) for v in pool.sizes[slot])
    _require(1 <= nodes <= pool.node_feature.shape[1] and 1 <= rows <= pool.row_learned.shape[1]
             and 0 <= branches <= pool.branch_child.shape[1], f"slot {slot} sizes")
    feature = pool.node_feature[slot, :nodes]
    row = pool.node_row[slot, :nodes]
    leaf = feature < 0
    _require(bool(((feature >= -1) & (feature < n_features)).all()), f"slot {slot} features")
    _require(bool(((row[leaf] >= 0) & (row[leaf] < rows)).all() and (row[~leaf] == -1).all()),
             f"slot {slot} leaf rows")
    start = pool.node_branch_start[slot, :nodes][~leaf]
    count = pool.node_n_branches[slot, :nodes][~leaf]
    _require(bool(((start >= 0) & (count >= 0) & (start + count <= branches)).all()),
             f"slot {slot} branch blocks")
    # children come after their parent: routing always moves forward, so it ends
    parents = np.repeat(np.flatnonzero(~leaf), count)
    within = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    children = pool.branch_child[slot, np.repeat(start, count) + within]
    _require(bool((((children > parents) & (children < nodes)) | (children == -1)).all()),
             f"slot {slot} children")


def check_pool_arrays(pool: TreePool, layout: Callable) -> None:
    """Raises ValueError unless ``pool`` is internally consistent (see the module docstring)."""
    _check_settings(pool.settings)
    _require(pool.sizes.shape[1] == 3, "sizes width")
    values = pool.nominal_values
    _require(bool((values >= 0).all() and (values == values[:1]).all()), "nominal values")
    col, offset, dims = layout(values[0])
    _require(bool((pool.feature_col == col).all() and (pool.value_offset == offset).all()),
             "feature layout")
    _require(pool.gauss_w.shape[3] == dims["Fn"] and pool.nom_sum.shape[3] == dims["Fm"]
             and pool.nom_count.shape[3] == dims["V"], "statistics widths")
    capacity = values[0][values[0] > 0]   # per nominal column
    _require(bool(((pool.nom_len >= 0) & (pool.nom_len <= capacity)).all()), "nominal lengths")
    for slot in range(pool.settings.shape[0]):
        _check_tree(pool, slot)
