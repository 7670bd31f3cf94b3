"""Compiled Hoeffding trees: building, growing and snapshotting a ``TreePool`` (Python side).

The kernels (``tree_predict_proba``, ``tree_learn``, ``tree_reset``, ``tree_predict_learn``,
``tree_predict_learn_many``) are in :mod:`experts._compiled_tree_kernels`, re-exported here. A
pool holds K trees stacked on a leading slot axis; class, feature and nominal-value capacities
grow by doubling between batches, when the encoder met new classes or values
(``ensure_tree_capacity``).

Node and leaf-row capacity: when the whole pool at its node cap (``max_nodes`` nodes and rows
per slot) costs at most ``PRESIZE_MAX_BYTES``, it is allocated at the cap at once and never
grows again (``cap_bytes`` states the figure; e.g. ``adaptive``'s 13 slots x 1,000 nodes on SEA,
3 numeric features, 2 classes: 4.3 MiB). Doubling node arrays grows *every* slot's arrays when
*one* tree passes half of them, so a long run ends at the cap anyway: sizing it once removes the
mid-run steps in resident memory (and the copy) without raising the final footprint. A pool
costlier than that at its cap (many features or classes, a large cap) starts small and doubles
when a kernel returned 1, as before; either way a pool never holds more than ``cap_bytes``
(plus branch slots of multiway nominal splits, which still double).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._compiled_tree_checks import check_pool_arrays
from ._compiled_tree_kernels import (
    tree_learn,
    tree_predict_learn,
    tree_predict_learn_many,
    tree_predict_proba,
    tree_reset,
)
from ._compiled_tree_layout import (
    DELTA,
    GRACE,
    LEAF_MC,
    LEAF_NB,
    LEAF_NBA,
    LEAF_PREDICTION,
    MAX_NODES,
    MIN_BRANCH_FRAC,
    N_SETTINGS,
    NB_THRESHOLD,
    SPLIT_POINTS,
    TAU,
    USED_BRANCHES,
    USED_NODES,
    USED_ROWS,
    TreePool,
)

LEAF_PREDICTIONS = {"mc": LEAF_MC, "nb": LEAF_NB, "nba": LEAF_NBA}
_INITIAL_NODES = 32   # node and row capacity of a pool too costly at its cap: a few splits
# a pool at most this large at its node cap is allocated there at once (a quarter of adaptive's
# default expert-memory budget, max_bytes 64 MiB); bytes, all slots and arrays
PRESIZE_MAX_BYTES = 16 * 2**20
# axes of each array after the slot axis: N nodes, L rows, B branches, C classes, F features,
# Fn numeric, Fm nominal columns, V nominal value slots, or a fixed width
_AXES: dict[str, tuple[str, ...]] = {
    "settings": ("settings",), "nominal_values": ("F",), "feature_col": ("F",),
    "value_offset": ("F",), "sizes": ("sizes",), "node_feature": ("N",),
    "node_threshold": ("N",), "node_branch_start": ("N",), "node_n_branches": ("N",),
    "node_row": ("N",), "node_class_w": ("N", "C"), "branch_child": ("B",),
    "row_seen_at_eval": ("L",), "row_learned": ("L",), "row_mc_correct": ("L",),
    "row_nb_correct": ("L",), "gauss_w": ("L", "C", "Fn"), "gauss_mean": ("L", "C", "Fn"),
    "gauss_m2": ("L", "C", "Fn"), "gauss_min": ("L", "C", "Fn"), "gauss_max": ("L", "C", "Fn"),
    "nom_count": ("L", "C", "V"), "nom_sum": ("L", "C", "Fm"), "nom_len": ("L", "C", "Fm"),
}
_INT_FIELDS = {"nominal_values", "feature_col", "value_offset", "sizes", "node_feature",
               "node_branch_start", "node_n_branches", "node_row", "branch_child", "nom_len"}
_EMPTY = {"node_feature": -1, "node_row": -1, "branch_child": -1}   # fill of unused entries

__all__ = [
    "LEAF_PREDICTIONS",
    "PRESIZE_MAX_BYTES",
    "TreePool",
    "cap_bytes",
    "ensure_tree_capacity",
    "grow_tree_pool",
    "new_tree_pool",
    "tree_learn",
    "tree_pool_arrays",
    "tree_pool_from_arrays",
    "tree_predict_learn",
    "tree_predict_learn_many",
    "tree_predict_proba",
    "tree_reset",
    "tree_slot_copy",
]


def _layout(nominal_values: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Column of each feature in its statistics, value offsets, and the Fn/Fm/V/F sizes."""
    nominal = nominal_values > 0
    col = np.where(nominal, np.cumsum(nominal) - 1, np.cumsum(~nominal) - 1).astype(np.int64)
    offset = (np.cumsum(nominal_values) - nominal_values).astype(np.int64)
    dims = {"F": len(nominal_values), "Fn": int((~nominal).sum()), "Fm": int(nominal.sum()),
            "V": int(nominal_values.sum())}
    return col, np.where(nominal, offset, 0).astype(np.int64), dims


def _check_nominal_values(nominal_values: Any) -> np.ndarray:
    values = np.asarray(nominal_values, dtype=np.int64).reshape(-1)
    if (values < 0).any():
        raise ValueError("nominal_values must be >= 0 (0 numeric, v > 0 nominal capacity)")
    return values


def _allocate(settings: np.ndarray, nominal_values: np.ndarray, dims: dict[str, int]) -> TreePool:
    """A pool of fresh single-leaf trees with the given settings rows and capacities."""
    col, offset, feature_dims = _layout(nominal_values)
    dims = {**dims, **feature_dims, "settings": N_SETTINGS, "sizes": 3}
    n_slots = settings.shape[0]
    arrays = {}
    for name, axes in _AXES.items():
        dtype = np.int64 if name in _INT_FIELDS else np.float64
        arrays[name] = np.full((n_slots, *(dims[a] for a in axes)), _EMPTY.get(name, 0),
                               dtype=dtype)
    arrays["settings"][:] = settings
    arrays["nominal_values"][:] = nominal_values
    arrays["feature_col"][:] = col
    arrays["value_offset"][:] = offset
    arrays["sizes"][:] = (1, 1, 0)     # one node (the root leaf) on statistics row 0
    arrays["node_row"][:, 0] = 0
    return TreePool(**arrays)


def new_tree_pool(
    n_slots: int, n_features: int, n_classes: int, nominal_values: np.ndarray | None = None, *,
    grace_period: float = 200, delta: float = 1e-7, tau: float = 0.05, max_nodes: int = 10_000,
    leaf_prediction: str = "nba", nb_threshold: float = 0, min_branch_frac: float = 0.01,
    split_points: int = 10,
) -> TreePool:
    """``n_slots`` fresh trees over ``n_features`` features and ``n_classes`` classes.

    ``nominal_values[f]``: 0 for a numeric feature, v > 0 for a nominal one with room for v
    value indices (all numeric when None). The defaults are MOA's HoeffdingTree defaults;
    ``max_nodes`` caps each tree's nodes (a full tree stops splitting).
    """
    values = _check_nominal_values(
        np.zeros(n_features, np.int64) if nominal_values is None else nominal_values)
    if len(values) != n_features:
        raise ValueError(f"nominal_values has {len(values)} entries for {n_features} features")
    if leaf_prediction not in LEAF_PREDICTIONS:
        raise ValueError(f"leaf_prediction must be one of {sorted(LEAF_PREDICTIONS)}")
    if not 0.0 < delta < 1.0 or grace_period <= 0 or max_nodes < 1 or n_slots < 1 \
            or n_classes < 0 or split_points < 1 or tau < 0:
        raise ValueError("need 0 < delta < 1, grace_period > 0, max_nodes >= 1, n_slots >= 1, "
                         "n_classes >= 0, split_points >= 1, tau >= 0")
    row = np.zeros(N_SETTINGS)
    row[[GRACE, DELTA, TAU, MAX_NODES, LEAF_PREDICTION, NB_THRESHOLD, MIN_BRANCH_FRAC,
         SPLIT_POINTS]] = (grace_period, delta, tau, max_nodes, LEAF_PREDICTIONS[leaf_prediction],
                           nb_threshold, min_branch_frac, split_points)
    dims = _node_dims(n_slots, max_nodes, n_classes, values, {"N": 1, "L": 1, "B": 0})
    return _allocate(np.tile(row, (n_slots, 1)), values, dims)


def _doubled(capacity: int, used: int, limit: float) -> int:
    """Capacity doubled while more than half is used, up to ``limit`` (at least ``used``)."""
    while 2 * used > capacity and capacity < limit:
        capacity *= 2
    return max(int(min(capacity, max(limit, used))), used)


def cap_bytes(n_slots: int, max_nodes: float, n_classes: int, nominal_values: np.ndarray
              ) -> int:
    """Bytes of a pool of ``n_slots`` trees with ``n_classes`` class slots and these features
    (``nominal_values``) at its node cap: ``max_nodes`` nodes and leaf rows, two branch slots a
    node, every array of the layout (8-byte entries)."""
    _, _, dims = _layout(nominal_values)
    dims = {**dims, "N": max_nodes, "L": max_nodes, "B": 2 * max_nodes, "C": n_classes,
            "settings": N_SETTINGS, "sizes": 3}
    return int(8 * n_slots * sum(math.prod(dims[a] for a in axes) for axes in _AXES.values()))


def _node_dims(n_slots: int, max_nodes: float, n_classes: int, nominal_values: np.ndarray,
               used: dict[str, int], current: dict[str, int] | None = None) -> dict[str, int]:
    """N, L, B and C of a pool with features: the node cap itself when the pool there costs at
    most ``PRESIZE_MAX_BYTES``; else ``_INITIAL_NODES`` doubled while more than half is
    ``used`` (so a pool sized at its cap while it was narrow shrinks back when new features
    make the cap too costly). Branch slots (from ``current``) double past two a node."""
    initial = min(_INITIAL_NODES, int(max_nodes))
    branches = _doubled(max(current["B"] if current else 0, 2 * initial), used["B"], np.inf)
    if len(nominal_values) and cap_bytes(n_slots, max_nodes, n_classes,
                                         nominal_values) <= PRESIZE_MAX_BYTES:
        cap = int(max_nodes)
        return {"N": max(cap, used["N"]), "L": max(cap, used["L"]),
                "B": max(2 * cap, branches), "C": n_classes}
    return {"N": _doubled(initial, used["N"], max_nodes),
            "L": _doubled(initial, used["L"], max_nodes), "B": branches, "C": n_classes}


def grow_tree_pool(
    pool: TreePool, *, n_classes: int | None = None, n_nodes: int | None = None,
    nominal_values: np.ndarray | None = None, n_slots: int | None = None,
) -> TreePool:
    """A resized copy of ``pool`` with every tree's state kept: more classes, node capacity (at
    least ``n_nodes``; else the cap or doubled, see ``_node_dims``), nominal capacities or new
    features appended (``nominal_values``, one entry per feature, old kinds unchanged), or slots
    (fresh trees with slot 0's settings)."""
    old_s, old_c = pool.settings.shape[0], pool.node_class_w.shape[2]
    old_values = pool.nominal_values[0]
    values = old_values if nominal_values is None else _check_nominal_values(nominal_values)
    if len(values) < len(old_values) or ((values[:len(old_values)] > 0) != (old_values > 0)).any():
        raise ValueError("nominal_values must keep every feature and its kind (numeric/nominal)")
    values = values.copy()
    values[:len(old_values)] = np.maximum(values[:len(old_values)], old_values)
    limit = float(pool.settings[:, MAX_NODES].max())
    settings = np.vstack([pool.settings] + [pool.settings[:1]] * max(0, (n_slots or 0) - old_s))
    used = pool.sizes.max(axis=0)
    current = {"N": pool.node_feature.shape[1], "L": pool.row_learned.shape[1],
               "B": pool.branch_child.shape[1]}
    dims = _node_dims(settings.shape[0], limit, max(old_c, n_classes or 0), values,
                      {"N": int(used[USED_NODES]), "L": int(used[USED_ROWS]),
                       "B": int(used[USED_BRANCHES])}, current)
    dims["N"], dims["L"] = max(dims["N"], n_nodes or 0), max(dims["L"], n_nodes or 0)
    new = _allocate(settings, values, dims)
    for name in _AXES:
        old = getattr(pool, name)
        if name in ("settings", "nominal_values", "feature_col", "value_offset"):
            continue
        target = getattr(new, name)
        # node and row arrays may shrink (never below their use): past it they hold fill only
        kept = tuple(slice(0, min(n, m)) for n, m in zip(old.shape, target.shape))
        if name == "nom_count":          # value slots move when capacities grow
            _, new_offset, _ = _layout(values)
            for f in np.flatnonzero(old_values > 0):
                a, k = pool.value_offset[0, f], old_values[f]
                target[(*kept[:3], slice(new_offset[f], new_offset[f] + k))] = \
                    old[(*kept[:3], slice(a, a + k))]
            continue
        target[kept] = old[kept]
    return new


def doubled_capacity(needed: int, current: int) -> int:
    """Room for ``needed`` items (value indices, classes, slots): ``current`` doubled until it
    fits (at least 2), so arrays grow by doubling."""
    capacity = max(current, 2)
    while capacity < needed:
        capacity *= 2
    return capacity


def ensure_tree_capacity(pool: TreePool, n_classes: int, nominal_sizes: np.ndarray) -> TreePool:
    """``pool`` itself when it has room for ``n_classes`` classes and the features of
    ``nominal_sizes`` (0 numeric, else nominal values seen, one entry per feature, old features
    first); otherwise a grown copy (capacities doubled)."""
    sizes = np.asarray(nominal_sizes, dtype=np.int64)
    current = pool.nominal_values[0]
    n_old = len(current)
    if len(sizes) < n_old:
        raise ValueError("nominal_sizes must cover every feature of the pool")
    wanted = current.copy()
    for f in np.flatnonzero(current > 0):
        if sizes[f] > current[f]:
            wanted[f] = doubled_capacity(int(sizes[f]), int(current[f]))
    extra = np.array([doubled_capacity(int(s), 0) if s > 0 else 0 for s in sizes[n_old:]], np.int64)
    wanted = np.concatenate([wanted, extra])
    if n_classes <= pool.node_class_w.shape[2] and np.array_equal(wanted, current):
        return pool
    return grow_tree_pool(pool, n_classes=max(n_classes, pool.node_class_w.shape[2]),
                          nominal_values=wanted)


def tree_slot_copy(pool: TreePool, slot: int) -> TreePool:
    """A one-slot pool holding a copy of tree ``slot``, its node, leaf-row and branch arrays
    cut to what the tree uses (a frozen copy costs what the tree holds, not its capacity)."""
    used = {"N": max(int(pool.sizes[slot, USED_NODES]), 1),
            "L": max(int(pool.sizes[slot, USED_ROWS]), 1),
            "B": int(pool.sizes[slot, USED_BRANCHES])}
    arrays = {}
    for name, axes in _AXES.items():
        cut = tuple(slice(used[a]) if a in used else slice(None) for a in axes)
        arrays[name] = getattr(pool, name)[(slice(slot, slot + 1), *cut)].copy(order="C")
    return TreePool(**arrays)


def tree_pool_arrays(pool: TreePool) -> dict[str, np.ndarray]:
    """The pool as named arrays (copies), for snapshots: no pickle, no code."""
    return {name: np.array(getattr(pool, name), copy=True) for name in _AXES}


def tree_pool_from_arrays(arrays: dict[str, np.ndarray]) -> TreePool:
    """A pool from ``tree_pool_arrays`` output; ValueError on any missing, extra, mistyped,
    misshaped or out-of-range array (the kernels index without bounds checks)."""
    if set(arrays) != set(_AXES):
        raise ValueError(f"tree pool arrays must be exactly {sorted(_AXES)}")
    copies = {}
    for name, axes in _AXES.items():
        a = np.asarray(arrays[name])
        dtype = np.int64 if name in _INT_FIELDS else np.float64
        if a.dtype != dtype or a.ndim != 1 + len(axes):
            raise ValueError(f"tree pool array {name!r}: need {dtype.__name__} with "
                             f"{1 + len(axes)} axes, got {a.dtype} {a.shape}")
        copies[name] = np.ascontiguousarray(a).copy()
    pool = TreePool(**copies)
    dims: dict[str, int] = {}
    for name, axes in _AXES.items():
        shape = copies[name].shape
        for axis, size in zip(("S", *axes), shape):
            if dims.setdefault(axis, size) != size:
                raise ValueError(f"tree pool array {name!r}: axis {axis} is {size}, "
                                 f"elsewhere {dims[axis]}")
    check_pool_arrays(pool, _layout)
    return pool
